package file

import (
	"slices"
	"strconv"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/flow"
)

// column is how pmacct's CSV and formatted outputs write one field: its
// header, its place, its width in the formatted table.
type column struct {
	key, title string
	rank       float64 // pmacct's CSV order
	width, gap int     // formatted: the value padded to width, then gap blanks
	titleWidth int     // formatted: the header's, when not width+gap
}

// formatted are the widths of pmacct 1.7.7's formatted table
// (print_plugin.c), by CSV header: value width, blanks after, and the
// header's width where it differs.
var formatted = map[string][3]int{
	"TAG": {10, 2, 0}, "TAG2": {10, 2, 0}, "CLASS": {16, 2, 0},
	"SRC_MAC": {17, 2, 0}, "DST_MAC": {17, 2, 0}, "VLAN": {5, 2, 0}, "COS": {2, 2, 0}, "ETYPE": {5, 2, 0},
	"SRC_AS": {10, 2, 0}, "DST_AS": {10, 2, 0}, "PREF": {7, 2, 0}, "SRC_PREF": {7, 2, 0}, "MED": {6, 2, 0}, "SRC_MED": {6, 2, 0},
	"SRC_ROA": {6, 2, 0}, "DST_ROA": {6, 2, 0}, "PEER_SRC_AS": {10, 2, 0}, "PEER_DST_AS": {10, 2, 0},
	"PEER_SRC_IP": {45, 2, 0}, "PEER_DST_IP": {45, 2, 0}, "IN_IFACE": {10, 2, 0}, "OUT_IFACE": {10, 2, 0},
	"MPLS_VPN_RD": {18, 2, 0}, "MPLS_PW_ID": {10, 2, 0},
	"SRC_IP": {45, 2, 0}, "SRC_NET": {45, 2, 0}, "DST_IP": {45, 2, 0}, "DST_NET": {45, 2, 0},
	"SRC_MASK": {3, 7, 0}, "DST_MASK": {3, 7, 0}, "SRC_PORT": {5, 5, 0}, "DST_PORT": {5, 5, 0},
	"TCP_FLAGS": {3, 8, 0}, "PROTOCOL": {10, 2, 0}, "TOS": {3, 4, 0},
	"SH_COUNTRY": {5, 7, 0}, "DH_COUNTRY": {5, 7, 0}, "SH_POCODE": {12, 2, 0}, "DH_POCODE": {12, 2, 0},
	"SH_LAT": {8, 2, 14}, "SH_LON": {8, 2, 14}, "DH_LAT": {8, 2, 14}, "DH_LON": {8, 2, 14},
	"SAMPLING_RATE": {7, 7, 0}, "SAMPLING_DIRECTION": {1, 19, 19},
	"POST_NAT_SRC_IP": {45, 2, 0}, "POST_NAT_DST_IP": {45, 2, 0}, "POST_NAT_SRC_PORT": {5, 14, 0}, "POST_NAT_DST_PORT": {5, 14, 0},
	"NAT_EVENT": {3, 7, 0}, "MPLS_LABEL_TOP": {7, 9, 0}, "MPLS_LABEL_BOTTOM": {7, 12, 0}, "MPLS_STACK_DEPTH": {2, 16, 0},
	"TUNNEL_SRC_MAC": {17, 2, 0}, "TUNNEL_DST_MAC": {17, 2, 0}, "TUNNEL_SRC_IP": {45, 2, 0}, "TUNNEL_DST_IP": {45, 2, 0},
	"TUNNEL_PROTOCOL": {10, 7, 0}, "TUNNEL_TOS": {3, 9, 0}, "TUNNEL_SRC_PORT": {5, 12, 0}, "TUNNEL_DST_PORT": {5, 12, 0},
	"VXLAN": {8, 2, 0}, "TIMESTAMP_START": {30, 1, 0}, "TIMESTAMP_END": {30, 1, 0}, "TIMESTAMP_ARRIVAL": {30, 1, 0},
	"TIMESTAMP_EXPORT": {30, 1, 0}, "TIMESTAMP_MIN": {30, 1, 0}, "TIMESTAMP_MAX": {30, 1, 0},
	"EXPORT_PROTO_SEQNO": {18, 2, 0}, "EXPORT_PROTO_VERSION": {20, 2, 0}, "EXPORT_PROTO_SYSID": {18, 2, 0},
	"PACKETS": {20, 2, 0}, "FLOWS": {20, 2, 0}, "BYTES": {0, 0, 0},
}

// customWidths are pmacct's formatted widths of custom integers, by length.
var customWidths = map[int]int{1: 3, 2: 5, 4: 10, 8: 20}

// columns returns doc's columns in pmacct's CSV and formatted order: its
// JSON order, but for the GeoIP fields, which come after TOS, and flows,
// between packets and bytes; pmacct's JSON-only fields left out. A field
// flowdex's table does not know (enrichment's) keeps its place after the
// field before it.
func columns(doc *document.Document) []column {
	var cols []column
	last := -1.0
	for i := range doc.Len() {
		key := doc.Key(i)
		if skipped[key] {
			continue
		}
		c := column{key: key, title: key, rank: last + 1e-6}
		if p, ok := flow.ByJSON(key); ok {
			in := p.Info()
			if in.CSV != "" {
				c.title = in.CSV
			}
			c.rank = float64(p)
			switch p {
			case flow.SrcHostCountry, flow.DstHostCountry, flow.SrcHostPocode, flow.DstHostPocode,
				flow.SrcHostCoords, flow.SrcHostLon, flow.DstHostCoords, flow.DstHostLon:
				c.rank = float64(flow.TOS) + 0.5 + float64(p-flow.SrcHostCountry)/100
			case flow.Flows:
				c.rank = float64(flow.Packets) + 0.5
			}
			if w, ok := formatted[c.title]; ok {
				c.width, c.gap, c.titleWidth = w[0], w[1], w[2]
			} else if cf := in.Custom; cf != nil {
				w := cf.Len
				switch cf.Semantics {
				case flow.SemUint, flow.SemHex:
					w = customWidths[cf.Len]
				case flow.SemIP:
					w = 46 // INET6_ADDRSTRLEN
				case flow.SemMAC:
					w = 18 // ETHER_ADDRSTRLEN
				}
				c.width, c.gap = max(w, len(key)), 2
			}
		}
		if c.width == 0 && c.title != "BYTES" {
			c.width, c.gap = len(c.title), 2
		}
		if c.titleWidth == 0 {
			c.titleWidth = c.width + c.gap
		}
		last = c.rank
		cols = append(cols, c)
	}
	slices.SortStableFunc(cols, func(a, b column) int {
		switch {
		case a.rank < b.rank:
			return -1
		case a.rank > b.rank:
			return 1
		}
		return 0
	})
	return cols
}

// value appends the text of field key of doc, as pmacct's CSV writes it: no
// quotes, no escapes, floats as %f.
func value(b []byte, doc *document.Document, key string) []byte {
	v, _ := doc.Get(key)
	switch v.Kind {
	case document.Int:
		return strconv.AppendInt(b, v.Int, 10)
	case document.Float:
		return strconv.AppendFloat(b, v.Float, 'f', 6, 64)
	case document.Null:
		return b
	case document.Bool:
		return strconv.AppendBool(b, v.Int != 0)
	}
	if v.Kind == document.Raw && len(v.Bytes) > 0 && (v.Bytes[0] == '-' || v.Bytes[0] >= '0' && v.Bytes[0] <= '9') {
		// a JSON number kept as text (GeoIP's coordinates): pmacct's %f
		if f, err := strconv.ParseFloat(string(v.Bytes), 64); err == nil {
			return strconv.AppendFloat(b, f, 'f', 6, 64)
		}
	}
	return append(b, v.Bytes...)
}

// pad appends spaces to b from start up to width, then gap more.
func pad(b []byte, start, width, gap int) []byte {
	for n := len(b) - start; n < width; n++ {
		b = append(b, ' ')
	}
	for range gap {
		b = append(b, ' ')
	}
	return b
}
