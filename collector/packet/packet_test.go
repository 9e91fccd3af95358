package packet

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/flowdex/flowdex/aggregate/flow"
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseLinkTypes(t *testing.T) {
	ip := func() *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, TOS: 0x10, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 2}}
	}
	udp := func() *layers.UDP { return &layers.UDP{SrcPort: 5000, DstPort: 53} }
	body := gopacket.Payload(make([]byte, 12))
	src := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, tt := range []struct {
		name    string
		first   gopacket.LayerType
		data    []byte
		mac     bool
		tagged  bool
		want    uint64 // IP length
		wantErr Result
	}{
		{"ethernet", layers.LayerTypeEthernet, serialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: src, EthernetType: layers.EthernetTypeIPv4}, ip(), udp(), body), true, false, 40, OK},
		{"qinq: the outer tag", layers.LayerTypeEthernet, serialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: src, EthernetType: layers.EthernetTypeQinQ},
			&layers.Dot1Q{VLANIdentifier: 100, Priority: 3, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeIPv4}, ip(), udp(), body), true, true, 40, OK},
		{"linux cooked", layers.LayerTypeLinuxSLL, append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 8, 0}, serialize(t, ip(), udp(), body)...), true, false, 40, OK},
		{"bsd loopback", layers.LayerTypeLoopback, serialize(t, &layers.Loopback{Family: layers.ProtocolFamilyIPv4}, ip(), udp(), body), false, false, 40, OK},
		{"raw ip", layers.LayerTypeIPv4, serialize(t, ip(), udp(), body), false, false, 40, OK},
		{"cut before udp", layers.LayerTypeIPv4, serialize(t, ip(), udp(), body)[:22], false, false, 40, Truncated},
		{"unknown first layer", layers.LayerTypeARP, nil, false, false, 0, Unknown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r flow.Record
			info := NewParser().Parse(&r, tt.first, tt.data)
			if info.Result != tt.wantErr {
				t.Fatalf("result %d, want %d", info.Result, tt.wantErr)
			}
			if tt.wantErr == Unknown {
				return
			}
			if r.SrcIP != netip.MustParseAddr("192.0.2.1") || r.DstIP != netip.MustParseAddr("198.51.100.2") || r.Proto != 17 || r.TOS != 0x10 || r.EType != 0x800 || info.IPLength != tt.want {
				t.Errorf("record %+v info %+v", r.Key, info)
			}
			if tt.wantErr == OK && (r.SrcPort != 5000 || r.DstPort != 53) {
				t.Errorf("ports %d %d", r.SrcPort, r.DstPort)
			}
			if tt.mac != (r.SrcMAC == [6]byte(src)) {
				t.Errorf("src mac %x", r.SrcMAC)
			}
			if tt.tagged && (!info.Tagged || info.VLAN != 100 || info.Priority != 3) {
				t.Errorf("tag %+v, want the outer one", info)
			}
		})
	}
}

// A parse allocates nothing.
func TestParseAllocations(t *testing.T) {
	p := NewParser()
	data := serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}},
		&layers.TCP{SrcPort: 1, DstPort: 2, SYN: true}, gopacket.Payload(make([]byte, 10)))
	var r flow.Record
	if n := testing.AllocsPerRun(100, func() { p.Parse(&r, layers.LayerTypeEthernet, data) }); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
}

func BenchmarkParse(b *testing.B) {
	p := NewParser()
	data := serialize(b, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}},
		&layers.TCP{SrcPort: 1, DstPort: 2, ACK: true}, gopacket.Payload(make([]byte, 100)))
	var r flow.Record
	b.ReportAllocs()
	for b.Loop() {
		p.Parse(&r, layers.LayerTypeEthernet, data)
	}
}

// Fragments: the first one has the ports (gopacket stops at an IPv4 fragment,
// so they are read by hand), a later one has none, even when its payload
// looks like a UDP header; both say which datagram they belong to.
func TestParseFragments(t *testing.T) {
	eth := func(typ layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: typ}
	}
	ip4 := func(flags layers.IPv4Flag, off uint16) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 77, Flags: flags, FragOffset: off, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 2}}
	}
	ip6 := func() *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
	}
	// an IPv6 fragment header: next header UDP, offset (8-byte units) and M, id 0x01020304
	frag6 := func(off uint16, more bool) gopacket.Payload {
		v := off << 3
		if more {
			v |= 1
		}
		return gopacket.Payload{17, 0, byte(v >> 8), byte(v), 1, 2, 3, 4}
	}
	udpHeader := gopacket.Payload{0x13, 0x88, 0x00, 0x35, 0, 16, 0, 0} // 5000 -> 53
	for _, tt := range []struct {
		name         string
		data         []byte
		first        bool
		id           uint32
		sport, dport uint16
	}{
		{"ipv4 first", serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPv4MoreFragments, 0), udpHeader, gopacket.Payload(make([]byte, 16))), true, 77, 5000, 53},
		{"ipv4 later", serialize(t, eth(layers.EthernetTypeIPv4), ip4(0, 3), udpHeader), false, 77, 0, 0},
		{"ipv6 first", serialize(t, eth(layers.EthernetTypeIPv6), ip6(), frag6(0, true), udpHeader, gopacket.Payload(make([]byte, 16))), true, 0x01020304, 5000, 53},
		{"ipv6 later", serialize(t, eth(layers.EthernetTypeIPv6), ip6(), frag6(3, false), udpHeader), false, 0x01020304, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r flow.Record
			info := NewParser().Parse(&r, layers.LayerTypeEthernet, tt.data)
			if info.Result != OK || !info.Fragment || info.FragFirst != tt.first || info.FragID != tt.id {
				t.Fatalf("info %+v", info)
			}
			if r.Proto != 17 || r.SrcPort != tt.sport || r.DstPort != tt.dport || !r.SrcIP.IsValid() {
				t.Errorf("record %+v", r.Key)
			}
		})
	}
}

// An MPLS stack: top, bottom and depth, then the IP packet under it; the
// ethertype is the IP one, as pmacctd reports it.
func TestParseMPLS(t *testing.T) {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 2}}
	data := serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeMPLSUnicast},
		&layers.MPLS{Label: 1000, TTL: 64}, &layers.MPLS{Label: 2000, TTL: 64}, &layers.MPLS{Label: 3000, TTL: 64, StackBottom: true},
		ip, &layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true}, gopacket.Payload(make([]byte, 10)))
	var r flow.Record
	info := NewParser().Parse(&r, layers.LayerTypeEthernet, data)
	if info.Result != OK || r.MPLSLabelTop != 1000 || r.MPLSLabelBottom != 3000 || r.MPLSStackDepth != 3 {
		t.Fatalf("info %+v labels %d %d depth %d", info, r.MPLSLabelTop, r.MPLSLabelBottom, r.MPLSStackDepth)
	}
	if r.EType != 0x800 || r.SrcIP != netip.MustParseAddr("192.0.2.1") || r.DstPort != 443 || r.TCPFlags != 0x02 || info.IPLength != 50 {
		t.Errorf("record %+v length %d", r.Key, info.IPLength)
	}
	if r.SrcMAC != [6]byte{2, 0, 0, 0, 0, 1} {
		t.Errorf("outer mac lost: %x", r.SrcMAC)
	}
}

// A VXLAN packet: the outer primitives are the tunnel's endpoints, the
// tunnel_* ones the inner frame's, vxlan its VNI.
func TestParseVXLAN(t *testing.T) {
	inner := serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 1, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 1, 2}, EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, HopLimit: 64, TrafficClass: 0xb8, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")},
		&layers.UDP{SrcPort: 5004, DstPort: 5006}, gopacket.Payload(make([]byte, 20)))
	data := serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}},
		&layers.UDP{SrcPort: 40000, DstPort: 4789}, gopacket.Payload{0x08, 0, 0, 0, 0, 0x12, 0x34, 0}, gopacket.Payload(inner))
	var r flow.Record
	p := NewParser()
	info := p.Parse(&r, layers.LayerTypeEthernet, data)
	if info.Result != OK || r.SrcIP != netip.MustParseAddr("192.0.2.1") || r.DstPort != 4789 || r.VXLAN != 0x1234 {
		t.Fatalf("outer %+v", r.Key)
	}
	if r.TunnelSrcMAC != [6]byte{2, 0, 0, 0, 1, 1} || r.TunnelDstIP != netip.MustParseAddr("2001:db8::2") || r.TunnelProto != 17 ||
		r.TunnelTOS != 0xb8 || r.TunnelSrcPort != 5004 || r.TunnelDstPort != 5006 {
		t.Errorf("tunnel %+v", r.Key)
	}
	if n := testing.AllocsPerRun(100, func() { p.Parse(&r, layers.LayerTypeEthernet, data) }); n != 0 {
		t.Errorf("%v allocations per VXLAN packet", n)
	}
}

// Any bytes, after any first layer: no panic, and what a parse reports stays
// within the frame (an IP length is only claimed for an IP packet).
func FuzzParse(f *testing.F) {
	f.Add(uint8(0), serialize(f, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}},
		&layers.UDP{SrcPort: 1, DstPort: 4789}, gopacket.Payload{0x08, 0, 0, 0, 0, 0, 1, 0}))
	f.Add(uint8(0), serialize(f, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeMPLSUnicast}, &layers.MPLS{Label: 3, StackBottom: true}, gopacket.Payload{0x45}))
	f.Add(uint8(4), []byte{0x60, 0, 0, 0, 0, 8, 44, 64})
	firsts := []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6}
	p := NewParser()
	f.Fuzz(func(t *testing.T, first uint8, data []byte) {
		var r flow.Record
		info := p.Parse(&r, firsts[int(first)%len(firsts)], data)
		if info.IPLength > 0 && !r.SrcIP.IsValid() && !r.DstIP.IsValid() {
			t.Errorf("IP length %d without addresses", info.IPLength)
		}
		if r.MPLSStackDepth > 0 && r.MPLSStackDepth > uint8(min(len(data)/4, 255)) {
			t.Errorf("%d labels in %d bytes", r.MPLSStackDepth, len(data))
		}
	})
}
