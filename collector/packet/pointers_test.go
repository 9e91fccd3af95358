package packet

import (
	"net"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/flow"
)

// Packet pointers at the edges pmacctd's golden does not reach: a value
// ending at the capture's last octet (which pmacct 1.7.7 cannot read), IPv6
// extension headers before l4, a later IPv4 fragment (no l4), protocols
// that do not match, a string longer than a record keeps (cut, counted),
// a raw value of variable length.
func TestPointers(t *testing.T) {
	defs := []flow.CustomField{
		{Name: "tail", Len: 2, Semantics: flow.SemHex, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerPayload, Offset: 2}}},
		{Name: "l4b", Len: 1, Semantics: flow.SemUint, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerL4}}},
		{Name: "tcponly", Len: 2, Semantics: flow.SemUint, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerL4, Proto: 6, Offset: 0}}},
		{Name: "v6only", Len: 1, Semantics: flow.SemUint, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerL3, Proto: 0x86dd, Offset: 7}}},
		{Name: "text", Len: flow.VarLen, Semantics: flow.SemStr, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerPayload}}},
		{Name: "rawv", Len: flow.VarLen, Semantics: flow.SemRaw, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerPayload, Offset: 1}}},
	}
	if err := flow.DefineCustom(defs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flow.DefineCustom(nil) })
	names := []string{"src_host"}
	for _, d := range defs {
		names = append(names, d.Name)
	}
	agg, err := flow.ParseAggregate(names)
	if err != nil {
		t.Fatal(err)
	}
	ps := NewPointers()
	udp := &layers.UDP{SrcPort: 0x0102, DstPort: 53}
	ip4 := func(frag uint16) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 9, Protocol: layers.IPProtocolUDP, FragOffset: frag,
			SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 2}}
	}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 7, NextHeader: layers.IPProtocolIPv6Destination, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
	dest := &layers.IPv6Destination{}
	dest.NextHeader = layers.IPProtocolUDP
	dest.Options = []*layers.IPv6DestinationOption{{OptionType: 1, OptionData: make([]byte, 4)}}
	long := strings.Repeat("y", 60)
	for _, tt := range []struct {
		name  string
		first gopacket.LayerType
		data  []byte
		want  string
		cut   int
	}{
		{"IPv4 UDP, values to the last octet", layers.LayerTypeIPv4, serialize(t, ip4(0), udp, gopacket.Payload("abcd")),
			`"tail": "6364", "l4b": "1", "tcponly": "0", "v6only": "0", "text": "abcd", "rawv": "62-63-64"`, 0},
		{"a later fragment: no l4, no payload", layers.LayerTypeIPv4, serialize(t, ip4(8), gopacket.Payload("abcdefgh")),
			`"tail": "0", "l4b": "0", "tcponly": "0", "v6only": "0", "text": "", "rawv": ""`, 0},
		{"IPv6 after a destination options header", layers.LayerTypeIPv6, serialize(t, ip6, dest, udp, gopacket.Payload(long)),
			`"tail": "7979", "l4b": "1", "tcponly": "0", "v6only": "7", "text": "` + long[:flow.VarLenCap] + `", "rawv": "` + strings.Repeat("79-", flow.VarLenCap-1) + `79"`, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r flow.Record
			p := NewParser()
			ps.Track(p)
			p.Parse(&r, tt.first, tt.data)
			if cut := ps.Fill(&r, p); cut != tt.cut {
				t.Errorf("cut %d, want %d", cut, tt.cut)
			}
			var f flow.Format
			var doc document.Document
			f.Document(&doc, agg, &r.Key, flow.Counters{}, flow.Stamps{})
			got := string(doc.AppendJSON(nil, document.Pmacct))
			if !strings.Contains(got, tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// Parse and Fill with 5 custom primitives read from packets, against
// BenchmarkParse's parse alone.
func BenchmarkParsePointers(b *testing.B) {
	defs := []flow.CustomField{
		{Name: "ttl", Len: 1, Semantics: flow.SemUint, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerL3, Proto: 0x800, Offset: 8}, {Layer: flow.LayerL3, Proto: 0x86dd, Offset: 7}}},
		{Name: "tcp_win", Len: 2, Semantics: flow.SemUint, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerL4, Proto: 6, Offset: 14}}},
		{Name: "smac", Len: 6, Semantics: flow.SemMAC, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerMAC, Offset: 6}}},
		{Name: "pl4", Len: 4, Semantics: flow.SemRaw, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerPayload}}},
		{Name: "plstr", Len: flow.VarLen, Semantics: flow.SemStr, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerPayload}}},
	}
	if err := flow.DefineCustom(defs); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = flow.DefineCustom(nil) })
	ps := NewPointers()
	p := NewParser()
	ps.Track(p)
	data := serialize(b, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}},
		&layers.TCP{SrcPort: 1, DstPort: 2, ACK: true}, gopacket.Payload("GET / HTTP/1.1\r\n\x00"))
	var r flow.Record
	b.ReportAllocs()
	for b.Loop() {
		p.Parse(&r, layers.LayerTypeEthernet, data)
		ps.Fill(&r, p)
	}
}
