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
