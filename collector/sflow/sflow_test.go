package sflow

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/collector/exporter"
)

// xdr builds sFlow's big-endian 32-bit words.
type xdr []byte

func (b xdr) u32(v ...uint32) xdr {
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// opaque appends data padded to 4 bytes.
func (b xdr) opaque(data []byte) xdr {
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// record wraps a flow record's body with its format and length.
func record(format uint32, body xdr) xdr { return xdr{}.u32(format, uint32(len(body))).opaque(body) }

// flowSample is a compact flow sample (format 1) with the given records.
func flowSample(seq, rate, in, out uint32, records ...xdr) xdr {
	body := xdr{}.u32(seq, 0x00000003, rate, rate*100, 0, in, out, uint32(len(records)))
	for _, r := range records {
		body = append(body, r...)
	}
	return xdr{}.u32(1, uint32(len(body))).opaque(body)
}

// datagram is an sFlow v5 datagram from an IPv4 agent.
func datagram(agent [4]byte, subAgent, seq uint32, samples ...xdr) []byte {
	b := xdr{}.u32(5, 1)
	b = append(b, agent[:]...)
	b = b.u32(subAgent, seq, 123456, uint32(len(samples)))
	for _, s := range samples {
		b = append(b, s...)
	}
	return b
}

// rawHeader is a sampled_header record (format 1) holding frame.
func rawHeader(protocol, frameLength uint32, frame []byte) xdr {
	return record(1, xdr{}.u32(protocol, frameLength, 4, uint32(len(frame))).opaque(frame))
}

func frame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 0x0b}
)

func tcpFrame(t testing.TB, vlan uint16) []byte {
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, TOS: 0xb8, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IP{192, 0, 2, 10}, DstIP: net.IP{198, 51, 100, 20}}
	tcp := &layers.TCP{SrcPort: 49152, DstPort: 443, SYN: true, ACK: true, Window: 1000}
	if vlan == 0 {
		return frame(t, eth, ip, tcp, gopacket.Payload(make([]byte, 20)))
	}
	eth.EthernetType = layers.EthernetTypeDot1Q
	return frame(t, eth, &layers.Dot1Q{Priority: 5, VLANIdentifier: vlan, Type: layers.EthernetTypeIPv4}, ip, tcp, gopacket.Payload(make([]byte, 20)))
}

func decodeAll(t *testing.T, d *Decoder, dg []byte) ([]flow.Record, error) {
	t.Helper()
	var recs []flow.Record
	err := d.Decode(dg, netip.MustParseAddr("127.0.0.1"), time.Unix(1704067200, 500000), func(r *flow.Record) { recs = append(recs, *r) })
	return recs, err
}

func TestDecodeFlowSamples(t *testing.T) {
	agent := [4]byte{192, 0, 2, 254}
	hbh := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 1, OptionData: []byte{0, 0, 0, 0}}}}
	hbh.NextHeader = layers.IPProtocolUDP
	// tos is the whole traffic class, 0x20 (CS1); sfacctd 1.7.7 to 1.7.9
	// report 2, the low nibble of the header's first byte (fixed upstream
	// after 1.7.9; cmd/flowdex's golden test shows it on a real sfacctd)
	ip6 := frame(t,
		&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, TrafficClass: 0x20, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")},
		hbh,
		&layers.UDP{SrcPort: 5353, DstPort: 53}, gopacket.Payload([]byte("query")))
	icmp := frame(t,
		&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{203, 0, 113, 1}, DstIP: net.IP{203, 0, 113, 2}},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, gopacket.Payload(make([]byte, 8)))
	tagged := tcpFrame(t, 10)
	tests := []struct {
		name    string
		records []xdr
		check   func(t *testing.T, r flow.Record)
	}{
		{"ethernet tcp", []xdr{rawHeader(protoEthernet, 1518, tcpFrame(t, 0))}, func(t *testing.T, r flow.Record) {
			want := flow.Record{Key: flow.Key{Fixed: flow.Fixed{SrcMAC: [6]byte(macA), DstMAC: [6]byte(macB), EType: 0x800,
				SrcIP: netip.MustParseAddr("192.0.2.10"), DstIP: netip.MustParseAddr("198.51.100.20"),
				SrcPort: 49152, DstPort: 443, Proto: 6, TOS: 0xb8}}, TCPFlags: 0x12, Bytes: 1518}
			if r.Key.SrcMAC != want.SrcMAC || r.DstMAC != want.DstMAC || r.EType != want.EType || r.SrcIP != want.SrcIP ||
				r.DstIP != want.DstIP || r.SrcPort != want.SrcPort || r.DstPort != want.DstPort || r.Proto != 6 ||
				r.TOS != 0xb8 || r.TCPFlags != 0x12 || r.Bytes != 1518 || r.Packets != 1 {
				t.Errorf("got %+v", r)
			}
		}},
		{"802.1Q tag gives vlan, cos and the inner ethertype", []xdr{rawHeader(protoEthernet, 100, tagged)}, func(t *testing.T, r flow.Record) {
			if r.VLAN != 10 || r.CoS != 5 || r.EType != 0x800 || r.SrcPort != 49152 {
				t.Errorf("vlan %d cos %d etype %#x port %d", r.VLAN, r.CoS, r.EType, r.SrcPort)
			}
		}},
		{"extended switch wins over the tag", []xdr{
			record(1001, xdr{}.u32(20, 3, 30, 4)), rawHeader(protoEthernet, 100, tagged)}, func(t *testing.T, r flow.Record) {
			if r.VLAN != 20 || r.CoS != 3 {
				t.Errorf("vlan %d cos %d, want 20 3", r.VLAN, r.CoS)
			}
		}},
		{"out vlan when in is 0", []xdr{record(1001, xdr{}.u32(0, 0, 30, 4))}, func(t *testing.T, r flow.Record) {
			if r.VLAN != 30 || r.CoS != 4 {
				t.Errorf("vlan %d cos %d, want 30 4", r.VLAN, r.CoS)
			}
		}},
		{"ipv6 with an extension header", []xdr{rawHeader(protoEthernet, 200, ip6)}, func(t *testing.T, r flow.Record) {
			if r.SrcIP != netip.MustParseAddr("2001:db8::1") || r.Proto != 17 || r.SrcPort != 5353 || r.DstPort != 53 || r.TOS != 0x20 || r.EType != 0x86dd {
				t.Errorf("got %+v", r.Key)
			}
		}},
		{"icmp has no ports", []xdr{rawHeader(protoEthernet, 64, icmp)}, func(t *testing.T, r flow.Record) {
			if r.Proto != 1 || r.SrcPort != 0 || r.DstPort != 0 || r.SrcIP != netip.MustParseAddr("203.0.113.1") {
				t.Errorf("got %+v", r.Key)
			}
		}},
		{"ip header without ethernet", []xdr{rawHeader(protoIPv4, 80, tcpFrame(t, 0)[14:])}, func(t *testing.T, r flow.Record) {
			if r.EType != 0x800 || r.SrcIP != netip.MustParseAddr("192.0.2.10") || r.DstPort != 443 || r.SrcMAC != [6]byte{} {
				t.Errorf("got %+v", r.Key)
			}
		}},
		{"header cut inside tcp keeps addresses", []xdr{rawHeader(protoEthernet, 1500, tcpFrame(t, 0)[:14+20+6])}, func(t *testing.T, r flow.Record) {
			if r.SrcIP != netip.MustParseAddr("192.0.2.10") || r.Proto != 6 || r.Bytes != 1500 {
				t.Errorf("got %+v", r.Key)
			}
		}},
		{"router and gateway", []xdr{
			record(1002, xdr{}.u32(1, 0xc0000201, 24, 16)),
			record(1003, xdr{}.u32(1, 0xc0000202, 64496, 64500, 64501, 1, 2, 3, 64501, 64510, 64511, 0, 100)),
		}, func(t *testing.T, r flow.Record) {
			if r.SrcMask != 24 || r.DstMask != 16 || r.SrcAS != 64500 || r.DstAS != 64511 || r.PeerDstAS != 64501 || r.PeerSrcAS != 64501 ||
				r.PeerDstIP != netip.MustParseAddr("192.0.2.2") {
				t.Errorf("masks %d/%d as %d/%d peer as %d/%d next hop %v", r.SrcMask, r.DstMask, r.SrcAS, r.DstAS, r.PeerSrcAS, r.PeerDstAS, r.PeerDstIP)
			}
		}},
		{"ip next hop without gateway", []xdr{record(1002, xdr{}.u32(1, 0xc0000201, 24, 16))}, func(t *testing.T, r flow.Record) {
			if r.PeerDstIP != netip.MustParseAddr("192.0.2.1") {
				t.Errorf("next hop %v", r.PeerDstIP)
			}
		}},
	}
	d, err := New(DefaultConfiguration(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := decodeAll(t, d, datagram(agent, 7, 42, flowSample(1, 512, 3, 0x3fffffff, tt.records...)))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			r := recs[0]
			if r.PeerSrcIP != netip.MustParseAddr("192.0.2.254") || r.ExportProtoSysID != 7 || r.ExportProtoSeqno != 42 ||
				r.ExportProtoVersion != 5 || r.SamplingRate != 512 || r.InIface != 3 || r.OutIface != 0x3fffffff ||
				r.TimestampArrival != 1704067200000500 || r.Packets != 1 {
				t.Errorf("sample fields: %+v", r)
			}
			tt.check(t, r)
		})
	}
}

func TestSamplingOverride(t *testing.T) {
	d, err := New(Configuration{Sampling: exporter.SamplingOverrides{{Exporters: prefix("192.0.2.0/24"), Rate: 1000}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		agent [4]byte
		want  uint32
	}{{[4]byte{192, 0, 2, 1}, 1000}, {[4]byte{198, 51, 100, 1}, 64}} {
		recs, err := decodeAll(t, d, datagram(tt.agent, 0, 1, flowSample(1, 64, 1, 2, rawHeader(protoEthernet, 100, tcpFrame(t, 0)))))
		if err != nil || len(recs) != 1 || recs[0].SamplingRate != tt.want {
			t.Errorf("agent %v: %v %+v, want rate %d", tt.agent, err, recs, tt.want)
		}
	}
	if _, err := New(Configuration{Sampling: exporter.SamplingOverrides{{Exporters: prefix("192.0.2.0/24"), Rate: 0}}}, nil); err == nil {
		t.Error("a zero rate was accepted")
	}
}

func TestMalformedAndCounted(t *testing.T) {
	d, _ := New(DefaultConfiguration(), nil)
	good := flowSample(1, 10, 1, 2, rawHeader(protoEthernet, 100, tcpFrame(t, 0)))
	counter := xdr{}.u32(2, 12).u32(1, 0, 0)
	dg := datagram([4]byte{192, 0, 2, 1}, 0, 1, good, counter, good)
	recs, err := decodeAll(t, d, dg)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%v, %d records, want 2", err, len(recs))
	}
	if s := d.Stats(); s.CounterSamples != 1 || s.FlowSamples != 2 || s.Records != 2 {
		t.Errorf("stats %+v", s)
	}
	// cut inside the second flow sample: the first is still emitted, the error says where from
	recs, err = decodeAll(t, d, dg[:len(dg)-30])
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error %v, want one naming the source", err)
	}
	if len(recs) != 1 {
		t.Errorf("%d records before the damage, want 1", len(recs))
	}
	for _, bad := range [][]byte{nil, {0, 0, 0, 4}, {0, 0, 0, 5, 0, 0, 0, 9}} {
		if _, err := decodeAll(t, d, bad); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
	if s := d.Stats(); s.Malformed != 4 {
		t.Errorf("malformed %d, want 4", s.Malformed)
	}
}

func FuzzDecodeSFlow(f *testing.F) {
	f.Add(datagram([4]byte{192, 0, 2, 1}, 0, 1, flowSample(1, 10, 1, 2, rawHeader(protoEthernet, 100, tcpFrame(f, 10)),
		record(1001, xdr{}.u32(20, 3, 30, 4)), record(1003, xdr{}.u32(1, 0xc0000202, 1, 2, 3, 1, 2, 1, 4)))))
	d, _ := New(DefaultConfiguration(), nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = d.Decode(data, netip.MustParseAddr("192.0.2.1"), time.Unix(1, 0), func(*flow.Record) {})
	})
}

func BenchmarkDecode(b *testing.B) {
	var samples []xdr
	for i := range 8 {
		samples = append(samples, flowSample(uint32(i), 1000, 1, 2, rawHeader(protoEthernet, 1518, tcpFrame(b, 10)), record(1001, xdr{}.u32(10, 0, 0, 0))))
	}
	dg := datagram([4]byte{192, 0, 2, 1}, 0, 1, samples...)
	d, _ := New(DefaultConfiguration(), nil)
	src := netip.MustParseAddr("192.0.2.1")
	now := time.Now()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Decode(dg, src, now, func(*flow.Record) { n++ })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
}

// goflow2 v2.2.6 does not cap the record count of expanded flow samples and
// allocates what the datagram claims: such a datagram is refused first.
func TestExpandedSampleRecordCountGuard(t *testing.T) {
	d, _ := New(DefaultConfiguration(), nil)
	expanded := func(count uint32, records ...xdr) xdr {
		body := xdr{}.u32(1, 0, 3, 100, 10000, 0, 0, 5, 0, 6, count)
		for _, r := range records {
			body = append(body, r...)
		}
		return xdr{}.u32(3, uint32(len(body))).opaque(body)
	}
	recs, err := decodeAll(t, d, datagram([4]byte{192, 0, 2, 1}, 0, 1, expanded(1, rawHeader(protoEthernet, 100, tcpFrame(t, 0)))))
	if err != nil || len(recs) != 1 || recs[0].InIface != 5 || recs[0].OutIface != 6 || recs[0].SamplingRate != 100 {
		t.Fatalf("expanded sample: %v %+v", err, recs)
	}
	start := time.Now()
	_, err = decodeAll(t, d, datagram([4]byte{192, 0, 2, 1}, 0, 1, expanded(0x7fffffff)))
	if err == nil || !strings.Contains(err.Error(), "claims 2147483647 records") {
		t.Errorf("error %v, want the record count refused", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("refusing took %v", time.Since(start))
	}
}

// prefix reads an address or a prefix as the configuration does.
func prefix(s string) setting.Prefix {
	p, err := setting.ParsePrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}
