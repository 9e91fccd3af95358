package sflow

import (
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// sFlow header protocols (sFlow v5, sampled_header).
const (
	protoEthernet = 1
	protoIPv4     = 11
	protoIPv6     = 12
)

type headerResult uint8

const (
	headerOK headerResult = iota
	headerTruncated
	headerUnknown
)

// headerParser parses sampled headers into a record. Its layers are reused, so
// a parse allocates nothing; one parser serves one goroutine at a time.
type headerParser struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	ip6ext  layers.IPv6ExtensionSkipper
	tcp     layers.TCP
	udp     layers.UDP
	icmp4   layers.ICMPv4
	icmp6   layers.ICMPv6
	sctp    layers.SCTP
	payload gopacket.Payload

	fromEth, fromIP4, fromIP6 *gopacket.DecodingLayerParser
	decoded                   []gopacket.LayerType
}

func newHeaderParser() *headerParser {
	p := &headerParser{decoded: make([]gopacket.LayerType, 0, 16)}
	all := []gopacket.DecodingLayer{&p.eth, &p.dot1q, &p.ip4, &p.ip6, &p.ip6ext, &p.tcp, &p.udp, &p.icmp4, &p.icmp6, &p.sctp, &p.payload}
	mk := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		dlp := gopacket.NewDecodingLayerParser(first, all...)
		dlp.IgnoreUnsupported = true // a protocol we do not parse ends the walk, not the record
		return dlp
	}
	p.fromEth, p.fromIP4, p.fromIP6 = mk(layers.LayerTypeEthernet), mk(layers.LayerTypeIPv4), mk(layers.LayerTypeIPv6)
	return p
}

// parse fills r from a sampled header: MACs and ethertype (the inner one after
// 802.1Q tags), VLAN and priority when no extended switch record gave them,
// addresses, ToS, protocol, and TCP/UDP ports and TCP flags, as sfacctd does.
// A header cut short keeps what was read before the cut.
func (p *headerParser) parse(r *flow.Record, protocol uint32, data []byte, sw *switchData) headerResult {
	var dlp *gopacket.DecodingLayerParser
	switch protocol {
	case protoEthernet:
		dlp = p.fromEth
	case protoIPv4:
		dlp = p.fromIP4
		r.EType = 0x0800
	case protoIPv6:
		dlp = p.fromIP6
		r.EType = 0x86dd
	default:
		return headerUnknown
	}
	err := dlp.DecodeLayers(data, &p.decoded)
	sawL4 := false
	for _, lt := range p.decoded {
		switch lt {
		case layers.LayerTypeEthernet:
			copy(r.SrcMAC[:], p.eth.SrcMAC)
			copy(r.DstMAC[:], p.eth.DstMAC)
			r.EType = uint16(p.eth.EthernetType)
		case layers.LayerTypeDot1Q:
			// the outer tag is the frame's VLAN; the ethertype is the inner one
			if sw.inVLAN == 0 && sw.outVLAN == 0 {
				sw.inVLAN = uint32(p.dot1q.VLANIdentifier)
			}
			if sw.inPrio == 0 && sw.outPrio == 0 {
				sw.inPrio = uint32(p.dot1q.Priority)
			}
			r.EType = uint16(p.dot1q.Type)
		case layers.LayerTypeIPv4:
			r.SrcIP = addr4(p.ip4.SrcIP)
			r.DstIP = addr4(p.ip4.DstIP)
			r.TOS = p.ip4.TOS
			r.Proto = uint8(p.ip4.Protocol)
		case layers.LayerTypeIPv6:
			r.SrcIP = addr16(p.ip6.SrcIP)
			r.DstIP = addr16(p.ip6.DstIP)
			r.TOS = p.ip6.TrafficClass
			r.Proto = uint8(p.ip6.NextHeader)
			if p.ip6.HopByHop != nil { // gopacket reads a hop-by-hop header with the IPv6 one
				r.Proto = uint8(p.ip6.HopByHop.NextHeader)
			}
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
			// sfacctd reports ports for TCP and UDP only
			sawL4 = true
		}
	}
	if err != nil && !sawL4 && (r.Proto == 6 || r.Proto == 17) {
		return headerTruncated
	}
	return headerOK
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
