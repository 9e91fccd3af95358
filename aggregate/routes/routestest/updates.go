package routestest

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/flowdex/flowdex/aggregate/routes"
)

// Updates serializes the table as a BGP speaker sends it: UPDATE messages
// of four-octet AS paths, one attribute set each with as many of its
// prefixes as fit (IPv6 in MP_REACH_NLRI), then End-of-RIB for IPv4 and
// IPv6. Every path goes through upstream first, and the next hops are
// nh4 and nh6: speakers given different ones share no attribute set.
// Standard communities go out in reverse order, so that receivers sort
// them as pmacct does.
func (t *Table) Updates(upstream uint32, nh4, nh6 netip.Addr) ([]byte, error) {
	by4 := make([][]netip.Prefix, len(t.Attrs))
	by6 := make([][]netip.Prefix, len(t.Attrs))
	for _, r := range t.Routes {
		if r.Prefix.Addr().Is4() {
			by4[r.Attrs] = append(by4[r.Attrs], r.Prefix)
		} else {
			by6[r.Attrs] = append(by6[r.Attrs], r.Prefix)
		}
	}
	var out []byte
	for a := range t.Attrs {
		attrs, err := pathAttrs(&t.Attrs[a], upstream)
		if err != nil {
			return nil, err
		}
		attrs = slices.Clip(attrs) // each message appends its own next hop
		for chunk := range chunks(by4[a]) {
			nlri := make([]*bgp.IPAddrPrefix, len(chunk))
			for j, p := range chunk {
				nlri[j] = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
			}
			m := bgp.NewBGPUpdateMessage(nil, append(attrs, bgp.NewPathAttributeNextHop(nh4.String())), nlri)
			if out, err = appendMessage(out, m); err != nil {
				return nil, err
			}
		}
		for chunk := range chunks(by6[a]) {
			nlri := make([]bgp.AddrPrefixInterface, len(chunk))
			for j, p := range chunk {
				nlri[j] = bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
			}
			m := bgp.NewBGPUpdateMessage(nil, append(attrs, bgp.NewPathAttributeMpReachNLRI(nh6.String(), nlri)), nil)
			if out, err = appendMessage(out, m); err != nil {
				return nil, err
			}
		}
	}
	var err error
	for _, rf := range []bgp.RouteFamily{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		if out, err = appendMessage(out, bgp.NewEndOfRib(rf)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// chunks splits prefixes into runs that fit an UPDATE of 4096 bytes
// beside their attributes (at most a few hundred bytes here).
func chunks(ps []netip.Prefix) func(func([]netip.Prefix) bool) {
	return func(yield func([]netip.Prefix) bool) {
		start, size := 0, 0
		for i, p := range ps {
			n := 1 + (p.Bits()+7)/8
			if size+n > 3000 {
				if !yield(ps[start:i]) {
					return
				}
				start, size = i, 0
			}
			size += n
		}
		if start < len(ps) {
			yield(ps[start:])
		}
	}
}

func appendMessage(b []byte, m *bgp.BGPMessage) ([]byte, error) {
	w, err := m.Serialize()
	if err != nil {
		return b, err
	}
	if len(w) > 4096 {
		return b, fmt.Errorf("an UPDATE of %d bytes", len(w))
	}
	return append(b, w...), nil
}

// pathAttrs are a route's attributes from Generate's texts, behind
// upstream.
func pathAttrs(a *routes.Attrs, upstream uint32) ([]bgp.PathAttributeInterface, error) {
	path := []uint32{upstream}
	for _, s := range strings.Split(a.ASPath, "_") {
		as, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("as path %q: %w", a.ASPath, err)
		}
		path = append(path, uint32(as))
	}
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, path)}),
		bgp.NewPathAttributeMultiExitDisc(a.MED),
		bgp.NewPathAttributeLocalPref(a.LocalPref),
	}
	if a.StdComm != "" {
		var cs []uint32
		for _, s := range strings.Split(a.StdComm, "_") {
			hi, lo, _ := strings.Cut(s, ":")
			h, err1 := strconv.ParseUint(hi, 10, 16)
			l, err2 := strconv.ParseUint(lo, 10, 16)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("community %q", s)
			}
			cs = append(cs, uint32(h)<<16|uint32(l))
		}
		slices.Reverse(cs)
		attrs = append(attrs, bgp.NewPathAttributeCommunities(cs))
	}
	if a.LrgComm != "" {
		var cs []*bgp.LargeCommunity
		for _, s := range strings.Split(a.LrgComm, "_") {
			f := strings.Split(s, ":")
			if len(f) != 3 {
				return nil, fmt.Errorf("large community %q", s)
			}
			var v [3]uint32
			for j := range v {
				n, err := strconv.ParseUint(f[j], 10, 32)
				if err != nil {
					return nil, fmt.Errorf("large community %q", s)
				}
				v[j] = uint32(n)
			}
			cs = append(cs, bgp.NewLargeCommunity(v[0], v[1], v[2]))
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(cs))
	}
	return attrs, nil
}
