// Package packet parses captured frames (a sampled sFlow header, a libpcap
// packet) into the primitives of a flow record, with gopacket's
// DecodingLayerParser and reused layers: a parse allocates nothing.
package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// Result says how far a parse got.
type Result uint8

const (
	OK        Result = iota
	Truncated        // cut before the TCP/UDP header of a TCP or UDP packet
	Unknown          // a first layer this parser does not read
)

// Info is what a parse found besides the record's primitives.
type Info struct {
	Result   Result
	Tagged   bool   // an 802.1Q tag was seen (the outer one is reported)
	VLAN     uint16 // outer VLAN id
	Priority uint8  // outer 802.1p priority
	IPLength uint64 // IPv4 total length, IPv6 payload length + 40: pmacctd's bytes

	// An IP fragment: IPv4 with more-fragments or an offset, IPv6 with a
	// fragment header. Only a first fragment (offset 0) carries the TCP/UDP
	// ports; the record of a later one has none.
	Fragment  bool
	FragFirst bool   // offset 0
	FragID    uint32 // IPv4 identification or IPv6 fragment identification
}

// vxlanPort is the IANA port of VXLAN, on which pmacct reads the inner frame.
const vxlanPort = 4789

// Parser parses frames. One parser serves one goroutine at a time.
type Parser struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	loop    layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	ip6ext  layers.IPv6ExtensionSkipper
	tcp     layers.TCP
	udp     layers.UDP
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	sctp    layers.SCTP
	frag6   ip6Fragment
	payload gopacket.Payload

	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	inner   *Parser // the frame inside a VXLAN tunnel, made on first use

	// the last frame parsed and where its layers start, for packet
	// pointers (pointers.go), when track is set: offset+1, 0 for none; l3
	// and l4's protocols
	track            bool
	frame            []byte
	layers           [flow.NumLayers + 1]int32
	l3Proto, l4Proto uint16
}

// ip6Fragment reads the IPv6 fragment header (gopacket's skipper drops its
// fields) and ends the walk on a non-first fragment, whose payload does not
// start with a TCP/UDP header.
type ip6Fragment struct {
	layers.BaseLayer
	next   layers.IPProtocol
	offset uint16
	id     uint32
}

func (f *ip6Fragment) LayerType() gopacket.LayerType  { return layers.LayerTypeIPv6Fragment }
func (f *ip6Fragment) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6Fragment }
func (f *ip6Fragment) NextLayerType() gopacket.LayerType {
	if f.offset != 0 {
		return gopacket.LayerTypeFragment
	}
	return f.next.LayerType()
}

func (f *ip6Fragment) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		df.SetTruncated()
		return errShortFragment
	}
	f.next = layers.IPProtocol(data[0])
	f.offset = binary.BigEndian.Uint16(data[2:4]) >> 3
	f.id = binary.BigEndian.Uint32(data[4:8])
	f.BaseLayer = layers.BaseLayer{Contents: data[:8], Payload: data[8:]}
	return nil
}

var errShortFragment = errors.New("IPv6 fragment header cut short")

// NewParser returns a parser.
func NewParser() *Parser {
	p := &Parser{decoded: make([]gopacket.LayerType, 0, 16), parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}}
	// frag6 after ip6ext: it takes the fragment header from the skipper
	all := []gopacket.DecodingLayer{&p.eth, &p.dot1q, &p.sll, &p.loop, &p.ip4, &p.ip6, &p.ip6ext, &p.frag6, &p.tcp, &p.udp, &p.icmp4, &p.icmp6, &p.sctp, &p.payload}
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6} {
		dlp := gopacket.NewDecodingLayerParser(first, all...)
		dlp.IgnoreUnsupported = true // a protocol we do not parse ends the walk, not the record
		p.parsers[first] = dlp
	}
	return p
}

// Parse fills r from a frame whose first layer is first (LayerTypeEthernet,
// LayerTypeLinuxSLL, LayerTypeLoopback, LayerTypeIPv4 or LayerTypeIPv6): MACs
// and ethertype (the inner one after 802.1Q tags), the MPLS label stack,
// addresses, ToS, protocol, TCP/UDP ports and TCP flags, and the tunnel_*
// primitives of a VXLAN frame. VLAN and priority are reported in Info for the
// caller to apply with its own rules. A frame cut short keeps what was read.
func (p *Parser) Parse(r *flow.Record, first gopacket.LayerType, data []byte) Info {
	if p.track {
		p.frame, p.layers = data, [flow.NumLayers + 1]int32{flow.LayerPacket: 1}
	}
	return p.parse(r, first, data)
}

// at notes that layer l starts at b's first byte, unless it was seen before
// (the outer of two headers counts).
func (p *Parser) at(l flow.Layer, b []byte) {
	if p.track && p.layers[l] == 0 {
		p.layers[l] = int32(cap(p.frame)-cap(b)) + 1
	}
}

func (p *Parser) parse(r *flow.Record, first gopacket.LayerType, data []byte) Info {
	var info Info
	dlp := p.parsers[first]
	switch first {
	case layers.LayerTypeIPv4:
		r.EType = 0x0800
	case layers.LayerTypeIPv6:
		r.EType = 0x86dd
	case layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLoopback:
	default:
		info.Result = Unknown
		return info
	}
	err := dlp.DecodeLayers(data, &p.decoded)
	sawL4 := false
	l6 := false          // this walk's IPv6 header is the frame's l3
	var l2Payload []byte // what follows the link layer and its tags
	for _, lt := range p.decoded {
		switch lt {
		case layers.LayerTypeEthernet:
			p.at(flow.LayerMAC, p.eth.Contents)
			copy(r.SrcMAC[:], p.eth.SrcMAC)
			copy(r.DstMAC[:], p.eth.DstMAC)
			r.EType = uint16(p.eth.EthernetType)
			l2Payload = p.eth.Payload
		case layers.LayerTypeLinuxSLL:
			if p.sll.AddrLen == 6 {
				copy(r.SrcMAC[:], p.sll.Addr)
			}
			r.EType = uint16(p.sll.EthernetType)
			l2Payload = p.sll.Payload
		case layers.LayerTypeLoopback:
			switch p.loop.Family {
			case layers.ProtocolFamilyIPv4:
				r.EType = 0x0800
			default:
				r.EType = 0x86dd
			}
		case layers.LayerTypeDot1Q:
			// the ethertype is the innermost one; the VLAN the outer tag's,
			// read from the frame below since the Dot1Q layer is reused for
			// every tag of a QinQ frame
			r.EType = uint16(p.dot1q.Type)
			l2Payload = p.dot1q.Payload
			p.at(flow.LayerVLAN, p.dot1q.Contents)
			if !info.Tagged {
				info.Tagged = true
				l2 := 14 // Ethernet
				if first == layers.LayerTypeLinuxSLL {
					l2 = 16
				}
				if len(data) >= l2+2 {
					tci := uint16(data[l2])<<8 | uint16(data[l2+1])
					info.VLAN, info.Priority = tci&0x0fff, uint8(tci>>13)
				}
			}
		case layers.LayerTypeIPv4:
			r.SrcIP = addr4(p.ip4.SrcIP)
			r.DstIP = addr4(p.ip4.DstIP)
			r.TOS = p.ip4.TOS
			r.Proto = uint8(p.ip4.Protocol)
			info.IPLength = uint64(p.ip4.Length)
			l3 := p.track && p.layers[flow.LayerL3] == 0
			if l3 {
				p.at(flow.LayerL3, p.ip4.Contents)
				p.l3Proto, p.l4Proto = 0x0800, uint16(p.ip4.Protocol)
			}
			if p.ip4.FragOffset == 0 && l3 {
				p.at(flow.LayerL4, p.ip4.Payload)
			}
			if p.ip4.Flags&layers.IPv4MoreFragments != 0 || p.ip4.FragOffset != 0 {
				// gopacket stops at a fragment: a first one's ports are read here
				info.Fragment, info.FragFirst, info.FragID = true, p.ip4.FragOffset == 0, uint32(p.ip4.Id)
				if info.FragFirst {
					sawL4 = transportHeader(r, p.ip4.Payload)
					if n := payloadStart(r.Proto, p.ip4.Payload); sawL4 && n > 0 && l3 {
						p.at(flow.LayerPayload, p.ip4.Payload[n:])
					}
				}
			}
		case layers.LayerTypeIPv6:
			r.SrcIP = addr16(p.ip6.SrcIP)
			r.DstIP = addr16(p.ip6.DstIP)
			r.TOS = p.ip6.TrafficClass
			r.Proto = uint8(p.ip6.NextHeader)
			if p.ip6.HopByHop != nil { // gopacket reads a hop-by-hop header with the IPv6 one
				r.Proto = uint8(p.ip6.HopByHop.NextHeader)
			}
			info.IPLength = uint64(p.ip6.Length) + 40
			if p.track && p.layers[flow.LayerL3] == 0 {
				p.at(flow.LayerL3, p.ip6.Contents)
				p.at(flow.LayerL4, p.ip6.Payload) // past a hop-by-hop header, which gopacket reads with this one
				p.l3Proto, p.l4Proto = 0x86dd, uint16(r.Proto)
				l6 = true
			}
		case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing,
			layers.LayerTypeIPv6Destination, layers.LayerTypeIPSecAH:
			r.Proto = uint8(p.ip6ext.NextHeader)
			if l6 {
				p.layers[flow.LayerL4] = 0
				p.at(flow.LayerL4, p.ip6ext.Payload)
				p.l4Proto = uint16(r.Proto)
			}
		case layers.LayerTypeIPv6Fragment:
			r.Proto = uint8(p.frag6.next)
			info.Fragment, info.FragFirst, info.FragID = true, p.frag6.offset == 0, p.frag6.id
			if l6 {
				p.layers[flow.LayerL4] = 0
				if p.frag6.offset == 0 {
					p.at(flow.LayerL4, p.frag6.Payload)
				}
				p.l4Proto = uint16(r.Proto)
			}
		case layers.LayerTypeTCP:
			r.SrcPort, r.DstPort = uint16(p.tcp.SrcPort), uint16(p.tcp.DstPort)
			r.TCPFlags = tcpFlags(&p.tcp)
			sawL4 = true
			p.at(flow.LayerPayload, p.tcp.Payload)
		case layers.LayerTypeUDP:
			r.SrcPort, r.DstPort = uint16(p.udp.SrcPort), uint16(p.udp.DstPort)
			sawL4 = true
			p.at(flow.LayerPayload, p.udp.Payload)
			if r.DstPort == vxlanPort {
				p.vxlan(r, p.udp.Payload)
			}
		case layers.LayerTypeICMPv4, layers.LayerTypeICMPv6, layers.LayerTypeSCTP:
			// pmacct reports ports for TCP and UDP only
			sawL4 = true
		}
	}
	if r.EType == 0x8847 || r.EType == 0x8848 {
		return p.mpls(r, info, l2Payload)
	}
	if err != nil && !sawL4 && (r.Proto == 6 || r.Proto == 17) && !(info.Fragment && !info.FragFirst) {
		info.Result = Truncated
	}
	return info
}

// transportHeader reads the ports (and TCP flags) at the start of a first
// fragment's payload; false when it is cut before them.
func transportHeader(r *flow.Record, b []byte) bool {
	if r.Proto != 6 && r.Proto != 17 {
		return true
	}
	if len(b) < 4 {
		return false
	}
	r.SrcPort, r.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
	if r.Proto == 6 && len(b) > 13 {
		r.TCPFlags = b[13]
	}
	return true
}

// mpls reads a label stack (from the link layer's payload) and the IP packet
// under it, as pmacctd: the ethertype becomes the IP one; the stack's top,
// bottom and depth are primitives.
func (p *Parser) mpls(r *flow.Record, outer Info, b []byte) Info {
	stack := b
	depth := 0
	var label uint32
	for len(b) >= 4 {
		label = binary.BigEndian.Uint32(b)
		b = b[4:]
		if depth == 0 {
			r.MPLSLabelTop = label >> 12
		}
		depth++
		if label&0x100 != 0 { // bottom of stack
			break
		}
	}
	if depth == 0 {
		outer.Result = Truncated
		return outer
	}
	p.at(flow.LayerMPLS, stack)
	r.MPLSLabelBottom, r.MPLSStackDepth = label>>12, uint8(min(depth, 255))
	if len(b) == 0 {
		outer.Result = Truncated
		return outer
	}
	var first gopacket.LayerType
	switch {
	case label>>12 == 2 || b[0]>>4 == 6: // IPv6 explicit null, or the version
		first = layers.LayerTypeIPv6
	case label>>12 == 0 || label>>12 == 3 || b[0]>>4 == 4:
		first = layers.LayerTypeIPv4
	default:
		return outer // not IP under the stack
	}
	inner := p.parse(r, first, b)
	inner.Tagged, inner.VLAN, inner.Priority = outer.Tagged, outer.VLAN, outer.Priority
	return inner
}

// vxlan reads the VNI and the inner frame of a VXLAN packet into the tunnel
// primitives.
func (p *Parser) vxlan(r *flow.Record, b []byte) {
	if len(b) < 8 {
		return
	}
	if b[0]&0x08 != 0 { // the VNI is valid
		r.VXLAN = uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
	}
	if p.inner == nil {
		p.inner = NewParser()
	}
	var in flow.Record
	p.inner.Parse(&in, layers.LayerTypeEthernet, b[8:])
	r.TunnelSrcMAC, r.TunnelDstMAC = in.SrcMAC, in.DstMAC
	r.TunnelSrcIP, r.TunnelDstIP = in.SrcIP, in.DstIP
	r.TunnelProto, r.TunnelTOS = in.Proto, in.TOS
	r.TunnelSrcPort, r.TunnelDstPort = in.SrcPort, in.DstPort
}

func addr4(b []byte) netip.Addr {
	if len(b) != 4 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(b))
}

func addr16(b []byte) netip.Addr {
	if len(b) != 16 {
		return netip.Addr{}
	}
	return netip.AddrFrom16([16]byte(b)).Unmap()
}

func tcpFlags(t *layers.TCP) uint8 {
	var f uint8
	for _, b := range [...]struct {
		set bool
		bit uint8
	}{{t.FIN, 0x01}, {t.SYN, 0x02}, {t.RST, 0x04}, {t.PSH, 0x08}, {t.ACK, 0x10}, {t.URG, 0x20}, {t.ECE, 0x40}, {t.CWR, 0x80}} {
		if b.set {
			f |= b.bit
		}
	}
	return f
}

// payloadStart is where a first fragment's TCP or UDP payload starts; 0 when
// the header is cut.
func payloadStart(proto uint8, b []byte) int {
	switch {
	case proto == 6 && len(b) > 12:
		if n := int(b[12]>>4) * 4; n >= 20 && n <= len(b) {
			return n
		}
	case proto == 17 && len(b) >= 8:
		return 8
	}
	return 0
}
