package pcap

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// writePcap writes Ethernet frames to a pcap file, one per second from 2024-01-01.
func writePcap(t *testing.T, frames ...[]gopacket.SerializableLayer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, ls := range frames {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1704067200+int64(i), 0), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func testFrames() [][]gopacket.SerializableLayer {
	a, b := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	eth := func(t layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: a, DstMAC: b, EthernetType: t}
	}
	ip4 := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: p, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 1}}
	}
	return [][]gopacket.SerializableLayer{
		{eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true}, gopacket.Payload(make([]byte, 100))},
		{eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: 1, SourceHwAddress: a, SourceProtAddress: []byte{192, 0, 2, 1}, DstHwAddress: b, DstProtAddress: []byte{192, 0, 2, 2}}},
		{eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 10, Priority: 5, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, gopacket.Payload(make([]byte, 56))},
		{eth(layers.EthernetTypeIPv6), &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")},
			&layers.UDP{SrcPort: 53, DstPort: 5353}, gopacket.Payload(make([]byte, 30))},
	}
}

func run(t *testing.T, cfg Configuration) ([]flow.Record, Stats) {
	t.Helper()
	c, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs []flow.Record
	if err := c.Run(context.Background(), func(r *flow.Record) { recs = append(recs, *r) }); err != nil {
		t.Fatal(err)
	}
	return recs, c.Stats()
}

// Each IP packet of a file is a record as pmacctd counts it: one packet, the IP
// length as bytes, the capture time as arrival, VLAN and CoS from the tag; a
// packet that is not IP is counted, not emitted.
func TestFile(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.File = writePcap(t, testFrames()...)
	recs, st := run(t, cfg)
	if len(recs) != 3 || st.Packets != 4 || st.NotIP != 1 || st.Records != 3 {
		t.Fatalf("%d records, stats %+v", len(recs), st)
	}
	tcp, icmp, udp6 := recs[0], recs[1], recs[2]
	if tcp.Bytes != 20+20+100 || tcp.Packets != 1 || tcp.TCPFlags != 0x02 || tcp.DstPort != 80 || tcp.TimestampArrival != 1704067200e6 {
		t.Errorf("tcp %+v", tcp)
	}
	if icmp.VLAN != 10 || icmp.CoS != 5 || icmp.EType != 0x800 || icmp.Bytes != 20+8+56 || icmp.SrcPort != 0 {
		t.Errorf("icmp %+v", icmp)
	}
	if udp6.SrcIP != netip.MustParseAddr("2001:db8::1") || udp6.Bytes != 40+8+30 || udp6.SrcPort != 53 {
		t.Errorf("ipv6 %+v", udp6)
	}
	cfg.Filter = "tcp or (vlan and icmp)"
	if recs, _ := run(t, cfg); len(recs) != 2 {
		t.Errorf("filter %q: %d records, want 2", cfg.Filter, len(recs))
	}
}

// Open refuses a bad configuration, naming the key.
func TestOpenErrors(t *testing.T) {
	file := writePcap(t, testFrames()...)
	for _, tt := range []struct {
		set  func(*Configuration)
		want string
	}{
		{func(c *Configuration) { c.File, c.Filter = file, "tcp port nonsense" }, `filter: `},
		{func(c *Configuration) { c.File = filepath.Join(t.TempDir(), "missing.pcap") }, "missing.pcap"},
		{func(c *Configuration) {}, "interface: give interface"},
		{func(c *Configuration) { c.File, c.Interface = file, "lo" }, "one of them"},
		{func(c *Configuration) { c.File, c.Snaplen = file, 10 }, "snaplen: 10 is too small"},
		{func(c *Configuration) { c.Interface, c.Direction = "lo", "sideways" }, `direction: unknown direction "sideways"`},
		{func(c *Configuration) { c.File, c.Speed = file, -1 }, "replay_speed: -1 is negative"},
	} {
		cfg := DefaultConfiguration()
		tt.set(&cfg)
		if _, err := Open(cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want one with %q", cfg, err, tt.want)
		}
	}
}

// At recorded speed a file takes as long as it was captured in.
func TestRecordedSpeed(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.File = writePcap(t, testFrames()[:2]...) // 1 s apart
	cfg.Speed = 4
	start := time.Now()
	run(t, cfg)
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("took %v, want at least 250 ms at 4x", d)
	}
}
