package flow

import (
	"bytes"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/setting"
)

// Format says how values are written, with pmacct's knobs of the same names.
type Format struct {
	UTC           bool `toml:"timestamps_utc,omitempty"`           // naive times in UTC instead of local time
	RFC3339       bool `toml:"timestamps_rfc3339,omitempty"`       // 2024-01-01T00:00:00.100000Z, or the local offset
	SinceEpoch    bool `toml:"timestamps_since_epoch,omitempty"`   // "1704067200.100000"
	Secs          bool `toml:"timestamps_secs,omitempty"`          // microseconds zeroed (still printed)
	NumProtos     bool `toml:"num_protos,omitempty"`               // print_num_protos: ip_proto always as a decimal string
	TCPFlagsArray bool `toml:"tcpflags_encode_as_array,omitempty"` // ["ACK","SYN"] instead of "18"
	// LabelMap is pmacct 1.7.8's pre_tag_label_encode_as_map: label
	// "k1%v1,k2%v2" written as {"k1": "v1", "k2": "v2"}
	LabelMap bool `toml:"pre_tag_label_encode_as_map,omitempty"`

	// Location is the zone of naive local times; nil means time.Local.
	Location *time.Location `toml:"-"`
}

// Validate reports settings that exclude each other, naming the key.
func (f Format) Validate() error {
	if f.RFC3339 && f.SinceEpoch {
		return setting.Errorf("timestamps_rfc3339", "timestamps_rfc3339 and timestamps_since_epoch exclude each other")
	}
	return nil
}

// Counters are the summed values of an aggregate.
type Counters struct {
	TCPFlags              uint8
	Packets, Bytes, Flows uint64
	// Events: the aggregate is of events only (Record.Event), whose
	// documents nfacctd writes without flows, packets and bytes
	Events bool
}

// Stamps are the time-bin fields of an aggregate, Unix seconds; 0 leaves them out.
type Stamps struct{ Inserted, Updated int64 }

// Document fills doc (after resetting it) with an aggregate as pmacct's print and
// Kafka plugins write it: event_type "purge", the primitives of agg in pmacct's
// order and formats (the table's), stamps when given, then flows (when
// aggregated), packets and bytes, unless the aggregate is of events only.
func (f *Format) Document(doc *document.Document, agg Aggregate, k *Key, c Counters, s Stamps) {
	doc.Reset()
	doc.AppendString(EventType.JSONKey(), "purge")
	var buf [3 * CustomBytes]byte // a raw custom primitive's text at most
	for i, w := range agg.Set.w {
		for ; w != 0; w &= w - 1 {
			in := &writers[i<<6+bits.TrailingZeros64(w)]
			switch in.op {
			case writeUint8:
				doc.AppendInt(in.json, int64(in.slot.u8(k)))
			case writeUint16:
				doc.AppendInt(in.json, int64(in.slot.u16(k)))
			case writeUint32:
				doc.AppendInt(in.json, int64(in.slot.u32(k)))
			case writeUint64:
				doc.AppendInt(in.json, int64(in.slot.u64(k)))
			case writeHex:
				doc.AppendStringBytes(in.json, strconv.AppendUint(buf[:0], in.slot.uint(k), 16))
			case writeIP:
				doc.AppendStringBytes(in.json, appendAddr(buf[:0], in.slot.addr(k)))
			case writeIPOrEmpty:
				if a := in.slot.addr(k); a.IsValid() {
					doc.AppendStringBytes(in.json, a.AppendTo(buf[:0]))
				} else {
					doc.AppendString(in.json, "")
				}
			case writeNet:
				doc.AppendStringBytes(in.json, appendNet(buf[:0], in.slot.addr(k), in.host.addr(k)))
			case writeMAC:
				doc.AppendStringBytes(in.json, appendMAC(buf[:0], in.slot.mac(k)))
			case writeProto:
				doc.AppendStringBytes(in.json, f.appendProto(buf[:0], in.slot.u8(k)))
			case writeTCPFlags:
				if f.TCPFlagsArray {
					doc.AppendRaw(in.json, AppendTCPFlagsArray(buf[:0], c.TCPFlags))
				} else {
					doc.AppendStringBytes(in.json, strconv.AppendUint(buf[:0], uint64(c.TCPFlags), 10))
				}
			case writeTime:
				doc.AppendStringBytes(in.json, f.AppendTime(buf[:0], in.slot.i64(k), true))
			case writeClass:
				if id := in.slot.u32(k); id != 0 {
					doc.AppendString(in.json, LabelText(id))
				} else {
					doc.AppendString(in.json, "unknown")
				}
			case writeInterned:
				doc.AppendString(in.json, LabelText(in.slot.u32(k)))
			case writeLabel:
				if f.LabelMap {
					doc.AppendRaw(in.json, AppendLabelMap(buf[:0], LabelText(in.slot.u32(k))))
				} else {
					doc.AppendString(in.json, LabelText(in.slot.u32(k)))
				}
			case writeDecimal:
				doc.AppendStringBytes(in.json, strconv.AppendUint(buf[:0], in.slot.uint(k), 10))
			case writeIPBytes:
				doc.AppendStringBytes(in.json, appendIPBytes(buf[:0], in.slot.bytes(k)))
			case writeString:
				b := in.slot.bytes(k)
				if i := bytes.IndexByte(b, 0); i >= 0 {
					b = b[:i]
				}
				doc.AppendStringBytes(in.json, b)
			case writeCoords:
				c := in.slot.coords(k)
				doc.AppendRaw(in.json, appendJanssonReal(buf[:0], c.Lat))
				doc.AppendRaw(in.json2, appendJanssonReal(buf[:0], c.Lon))
			case writeRD:
				doc.AppendStringBytes(in.json, AppendRD(buf[:0], in.slot.u64(k)))
			case writeDirection:
				doc.AppendString(in.json, directions[min(in.slot.u8(k), DirectionEgress+1)])
			case writeRaw:
				b := in.slot.bytes(k)
				doc.AppendStringBytes(in.json, appendRaw(buf[:0], b[1:1+b[0]]))
			}
		}
	}
	if s.Inserted != 0 {
		doc.AppendStringBytes(StampInserted.JSONKey(), f.AppendTime(buf[:0], s.Inserted*1e6, false))
	}
	if s.Updated != 0 {
		doc.AppendStringBytes(StampUpdated.JSONKey(), f.AppendTime(buf[:0], s.Updated*1e6, false))
	}
	if c.Events {
		return
	}
	if agg.Set.Has(Flows) {
		doc.AppendInt(Flows.JSONKey(), int64(c.Flows))
	}
	doc.AppendInt(Packets.JSONKey(), int64(c.Packets))
	doc.AppendInt(Bytes.JSONKey(), int64(c.Bytes))
}

// appendNet writes a network address; an unknown one is the zero address of the
// host's family, as pmacct prints 0.0.0.0 or ::.
func appendNet(b []byte, net, host netip.Addr) []byte {
	if net.IsValid() {
		return net.AppendTo(b)
	}
	if host.Is6() {
		return append(b, "::"...)
	}
	return append(b, "0.0.0.0"...)
}

// appendAddr writes an address; an unknown one as 0.0.0.0, as pmacct does.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "0.0.0.0"...)
	}
	return a.AppendTo(b)
}

// AppendLabelMap writes labels as pmacct 1.7.8's pre_tag_label_encode_as_map
// does: '%' and ',' both separate tokens (empty ones skipped), which pair
// up as key and value, a last one alone dropped; a key twice keeps its
// first place and takes its last value; a token of 128 bytes or more is
// cut to 126 and '$'. "k1%v1,k2%v2" is {"k1": "v1", "k2": "v2"}.
func AppendLabelMap(b []byte, labels string) []byte {
	var toks [256]string // pmacct's bound
	n := 0
	for rest := labels; rest != "" && n < len(toks); {
		i := strings.IndexAny(rest, "%,")
		tok := rest
		if i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if tok == "" {
			continue
		}
		if len(tok) >= 128 {
			tok = tok[:126] + "$"
		}
		toks[n] = tok
		n++
	}
	b = append(b, '{')
	first := true
pairs:
	for i := 0; i+1 < n; i += 2 {
		key, value := toks[i], toks[i+1]
		for j := 0; j < i; j += 2 {
			if toks[j] == key {
				continue pairs // written at its first place
			}
		}
		for j := i + 2; j+1 < n; j += 2 {
			if toks[j] == key {
				value = toks[j+1]
			}
		}
		if !first {
			b = append(b, ", "...)
		}
		first = false
		b = document.AppendString(b, key)
		b = append(b, ": "...)
		b = document.AppendString(b, value)
	}
	return append(b, '}')
}

// appendJanssonReal writes a number as pmacct's jansson does (json_real):
// 17 significant digits, an exponent without '+' nor leading zeros, ".0"
// after an integer: 51.5142 is 51.514200000000002, 10 is 10.0.
func appendJanssonReal(b []byte, v float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'g', 17, 64)
	if e := bytes.IndexByte(b[start:], 'e'); e >= 0 {
		e += start
		neg := b[e+1] == '-'
		digits := bytes.TrimLeft(b[e+2:], "0")
		b = b[:e+1]
		if neg {
			b = append(b, '-')
		}
		return append(b, digits...)
	}
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, ".0"...)
	}
	return b
}

// Sampling directions (Key.SamplingDirection).
const (
	DirectionUnknown uint8 = iota
	DirectionIngress
	DirectionEgress
)

// directions are pmacct's texts of the sampling directions.
var directions = [...]string{DirectionUnknown: "u", DirectionIngress: "i", DirectionEgress: "e", DirectionEgress + 1: "u"}

// RDVRFID is the type pmacct gives a route distinguisher made of a VRF id
// (NetFlow's ingressVRFID, egressVRFID), written "vrfid:N".
const RDVRFID = 0x1000

// AppendRD writes a route distinguisher (Key.MPLSVPNRD) as pmacct's
// bgp_rd2str: by its type (the first 2 bytes, the origin bits of later
// pmacct versions off), "0:ASN:N", "1:IPv4:N", "2:ASN4:N", "vrfid:N", or
// "unknown".
func AppendRD(b []byte, rd uint64) []byte {
	switch typ := rd >> 48 & 0x1fff; typ {
	case 0, 2:
		b = strconv.AppendUint(b, typ, 10)
		admin, val := rd>>16&0xffffffff, rd&0xffff
		if typ == 0 {
			admin, val = rd>>32&0xffff, rd&0xffffffff
		}
		b = append(b, ':')
		b = strconv.AppendUint(b, admin, 10)
		b = append(b, ':')
		return strconv.AppendUint(b, val, 10)
	case 1:
		b = append(b, "1:"...)
		b = netip.AddrFrom4([4]byte{byte(rd >> 40), byte(rd >> 32), byte(rd >> 24), byte(rd >> 16)}).AppendTo(b)
		b = append(b, ':')
		return strconv.AppendUint(b, rd&0xffff, 10)
	case RDVRFID:
		b = append(b, "vrfid:"...)
		return strconv.AppendUint(b, rd&0xffffffff, 10)
	}
	return append(b, "unknown"...)
}

// appendRaw writes bytes as pmacct writes raw custom primitives: upper-case
// hex digits, a '-' between bytes.
func appendRaw(b, raw []byte) []byte {
	const digits = "0123456789ABCDEF"
	for i, x := range raw {
		if i > 0 {
			b = append(b, '-')
		}
		b = append(b, digits[x>>4], digits[x&15])
	}
	return b
}

// appendIPBytes writes an address of 4 or 16 bytes.
func appendIPBytes(b, a []byte) []byte {
	if len(a) == 4 {
		return netip.AddrFrom4([4]byte(a)).AppendTo(b)
	}
	return netip.AddrFrom16([16]byte(a)).AppendTo(b)
}

const hexDigits = "0123456789abcdef"

func appendMAC(b []byte, m [6]byte) []byte {
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexDigits[x>>4], hexDigits[x&15])
	}
	return b
}

// tcpFlagNames in the order pmacct's tcpflags_encode_as_array writes them.
var tcpFlagNames = [...]struct {
	bit  uint8
	name string
}{{0x20, "URG"}, {0x10, "ACK"}, {0x08, "PSH"}, {0x04, "RST"}, {0x02, "SYN"}, {0x01, "FIN"}}

// AppendTCPFlagsArray writes flags as pmacct's JSON array; values with ECE or CWR
// set give an empty array, as in pmacct.
func AppendTCPFlagsArray(b []byte, flags uint8) []byte {
	b = append(b, '[')
	if flags < 64 {
		first := true
		for _, f := range tcpFlagNames {
			if flags&f.bit == 0 {
				continue
			}
			if !first {
				b = append(b, ", "...)
			}
			first = false
			b = append(b, '"')
			b = append(b, f.name...)
			b = append(b, '"')
		}
	}
	return append(b, ']')
}

// protoNames is pmacct 1.7.7's own protocol table (not /etc/protocols); other
// numbers are written in decimal.
var protoNames = [...]string{1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 6: "tcp", 8: "egp", 9: "igp",
	17: "udp", 18: "mux", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag", 46: "rsvp", 47: "gre", 50: "esp",
	51: "ah", 55: "mobile", 56: "tlsp", 58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts", 80: "iso-ip",
	83: "vines", 88: "eigrp", 89: "ospf", 91: "larp", 93: "ax.25", 94: "ipip", 98: "encap", 102: "pnni",
	103: "pim", 108: "IPcomp", 111: "ipx-in-ip", 112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp", 133: "fc"}

// ProtoName returns pmacct's name for an IP protocol, "" when it has none.
func ProtoName(p uint8) string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return ""
}

func (f *Format) appendProto(b []byte, p uint8) []byte {
	if !f.NumProtos {
		if n := ProtoName(p); n != "" {
			return append(b, n...)
		}
	}
	return strconv.AppendUint(b, uint64(p), 10)
}

// AppendTime writes a time given in Unix microseconds as pmacct's
// compose_timestamp does: usec adds the microseconds (timestamp_* fields), the
// stamp_* fields go without. Zero is pmacct's "0000-00-00 00:00:00".
func (f *Format) AppendTime(b []byte, micros int64, usec bool) []byte {
	sec, us := micros/1e6, micros%1e6
	if micros < 0 && us != 0 {
		sec, us = sec-1, us+1e6
	}
	if f.Secs {
		us = 0
	}
	if f.SinceEpoch {
		b = strconv.AppendInt(b, sec, 10)
		if usec {
			b = appendMicros(b, us)
		}
		return b
	}
	sep := byte(' ')
	if f.RFC3339 {
		sep = 'T'
	}
	var t time.Time
	if micros == 0 {
		b = append(b, "0000-00-00"...)
		b = append(b, sep)
		b = append(b, "00:00:00"...)
	} else {
		loc := time.UTC
		if !f.UTC {
			loc = f.Location
			if loc == nil {
				loc = time.Local
			}
		}
		t = time.Unix(sec, 0).In(loc)
		b = t.AppendFormat(b, "2006-01-02")
		b = append(b, sep)
		b = t.AppendFormat(b, "15:04:05")
	}
	if usec {
		b = appendMicros(b, us)
	}
	if f.RFC3339 {
		if _, off := t.Zone(); off == 0 {
			b = append(b, 'Z')
		} else {
			b = t.AppendFormat(b, "-07:00")
		}
	}
	return b
}

func appendMicros(b []byte, us int64) []byte {
	b = append(b, '.')
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + us%10)
		us /= 10
	}
	return append(b, d[:]...)
}
