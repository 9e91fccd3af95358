// Package packet parses captured frames (a sampled sFlow header, a libpcap
// packet) into the primitives of a flow record, with gopacket's
// DecodingLayerParser and reused layers: a parse allocates nothing.
package packet

import (
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
}

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
	payload gopacket.Payload

	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

// NewParser returns a parser.
func NewParser() *Parser {
	p := &Parser{decoded: make([]gopacket.LayerType, 0, 16), parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}}
	all := []gopacket.DecodingLayer{&p.eth, &p.dot1q, &p.sll, &p.loop, &p.ip4, &p.ip6, &p.ip6ext, &p.tcp, &p.udp, &p.icmp4, &p.icmp6, &p.sctp, &p.payload}
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6} {
		dlp := gopacket.NewDecodingLayerParser(first, all...)
		dlp.IgnoreUnsupported = true // a protocol we do not parse ends the walk, not the record
		p.parsers[first] = dlp
	}
	return p
}

// Parse fills r from a frame whose first layer is first (LayerTypeEthernet,
// LayerTypeLinuxSLL, LayerTypeLoopback, LayerTypeIPv4 or LayerTypeIPv6): MACs
// and ethertype (the inner one after 802.1Q tags), addresses, ToS, protocol,
// TCP/UDP ports and TCP flags. VLAN and priority are reported in Info for the
// caller to apply with its own rules. A frame cut short keeps what was read.
func (p *Parser) Parse(r *flow.Record, first gopacket.LayerType, data []byte) Info {
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
	for _, lt := range p.decoded {
		switch lt {
		case layers.LayerTypeEthernet:
			copy(r.SrcMAC[:], p.eth.SrcMAC)
			copy(r.DstMAC[:], p.eth.DstMAC)
			r.EType = uint16(p.eth.EthernetType)
		case layers.LayerTypeLinuxSLL:
			if p.sll.AddrLen == 6 {
				copy(r.SrcMAC[:], p.sll.Addr)
			}
			r.EType = uint16(p.sll.EthernetType)
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
		case layers.LayerTypeIPv6:
			r.SrcIP = addr16(p.ip6.SrcIP)
			r.DstIP = addr16(p.ip6.DstIP)
			r.TOS = p.ip6.TrafficClass
			r.Proto = uint8(p.ip6.NextHeader)
			if p.ip6.HopByHop != nil { // gopacket reads a hop-by-hop header with the IPv6 one
				r.Proto = uint8(p.ip6.HopByHop.NextHeader)
			}
			info.IPLength = uint64(p.ip6.Length) + 40
		case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Fragment,
			layers.LayerTypeIPv6Destination, layers.LayerTypeIPSecAH:
			r.Proto = uint8(p.ip6ext.NextHeader)
		case layers.LayerTypeTCP:
			r.SrcPort, r.DstPort = uint16(p.tcp.SrcPort), uint16(p.tcp.DstPort)
			r.TCPFlags = tcpFlags(&p.tcp)
			sawL4 = true
		case layers.LayerTypeUDP:
			r.SrcPort, r.DstPort = uint16(p.udp.SrcPort), uint16(p.udp.DstPort)
			sawL4 = true
		case layers.LayerTypeICMPv4, layers.LayerTypeICMPv6, layers.LayerTypeSCTP:
			// pmacct reports ports for TCP and UDP only
			sawL4 = true
		}
	}
	if err != nil && !sawL4 && (r.Proto == 6 || r.Proto == 17) {
		info.Result = Truncated
	}
	return info
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
