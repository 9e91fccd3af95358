package filter

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/flowdex/flowdex/aggregate/flow"
)

var records = map[string]*flow.Record{
	"tcp4": {Key: flow.Key{Fixed: flow.Fixed{
		SrcMAC: [6]byte{0xaa, 0xbb, 0xcc, 0, 0, 1}, DstMAC: [6]byte{0xaa, 0xbb, 0xcc, 0, 0, 2},
		SrcIP: addr("192.0.2.10"), DstIP: addr("198.51.100.1"), SrcPort: 1234, DstPort: 80, Proto: 6, TOS: 184,
	}}, TCPFlags: 0x12},
	"dns4": {Key: flow.Key{Fixed: flow.Fixed{
		SrcIP: addr("203.0.113.5"), DstIP: addr("192.0.2.53"), SrcPort: 53333, DstPort: 53, Proto: 17,
	}}},
	"reply4": {Key: flow.Key{Fixed: flow.Fixed{
		SrcIP: addr("192.0.2.53"), DstIP: addr("203.0.113.5"), SrcPort: 53, DstPort: 53333, Proto: 17,
	}}},
	"vlan4": {Key: flow.Key{Fixed: flow.Fixed{
		VLAN: 10, CoS: 5,
		SrcIP: addr("192.0.2.10"), DstIP: addr("198.51.100.1"), SrcPort: 1234, DstPort: 80, Proto: 6,
	}}, TCPFlags: 0x10},
	"tcp6": {Key: flow.Key{Fixed: flow.Fixed{
		SrcIP: addr("2001:db8::1"), DstIP: addr("2001:db8::2"), SrcPort: 40000, DstPort: 443, Proto: 6, TOS: 0x28,
	}}, TCPFlags: 0x02},
	"icmp4": {Key: flow.Key{Fixed: flow.Fixed{
		SrcIP: addr("198.51.100.1"), DstIP: addr("192.0.2.10"), DstPort: 2048, Proto: 1,
	}}},
	"lldp": {Key: flow.Key{Fixed: flow.Fixed{
		SrcMAC: [6]byte{0xaa, 0xbb, 0xcc, 0, 0, 3}, EType: 0x88cc,
	}}},
	"mpls3": {Key: flow.Key{Fixed: flow.Fixed{
		MPLSLabelTop: 16001, MPLSLabelBottom: 17, MPLSStackDepth: 3, EType: 0x0800,
		SrcIP: addr("192.0.2.20"), DstIP: addr("198.51.100.1"), SrcPort: 40000, DstPort: 80, Proto: 6,
	}}, TCPFlags: 0x02},
}

func TestMatch(t *testing.T) {
	cases := []struct {
		expr string
		want []string // names of the records that match
	}{
		{"", []string{"dns4", "icmp4", "lldp", "mpls3", "reply4", "tcp4", "tcp6", "vlan4"}},
		{"mpls", []string{"mpls3"}},
		{"mpls 16001 and mpls and mpls 17 and tcp dst port 80", []string{"mpls3"}}, // top, the one between (0), bottom
		{"mpls 16002", nil},
		{"src net 192.0.2.0/24", []string{"reply4", "tcp4"}}, // vlan4 too, but only after "vlan"
		{"vlan and src net 192.0.2.0/24", []string{"vlan4"}},
		{"tcp", []string{"tcp4", "tcp6"}},
		{"udp port 53", []string{"dns4", "reply4"}},
		{"vlan 10", []string{"vlan4"}},
		{"vlan 11", nil},
		{"vlan 10 and tcp dst port 80", []string{"vlan4"}},
		{"ip6", []string{"tcp6"}},
		{"ip", []string{"dns4", "icmp4", "reply4", "tcp4"}},
		{"not icmp", []string{"dns4", "lldp", "mpls3", "reply4", "tcp4", "tcp6", "vlan4"}},
		{"src portrange 0-1023", []string{"reply4"}}, // not icmp4: libpcap checks for TCP/UDP/SCTP
		{"dst portrange 0-1023", []string{"dns4", "tcp4", "tcp6"}},
		{"ether src aa:bb:cc:00:00:01", []string{"tcp4"}},
		{"ether dst aa:bb:cc:00:00:02 and ip", []string{"tcp4"}},
		{"ether proto 0x88cc", []string{"lldp"}},
		{"tcp[tcpflags] & tcp-syn != 0", []string{"tcp4"}},
		{"ip6[53] & 0x02 != 0", []string{"tcp6"}}, // TCP flags of the IPv6 frame, at 40+13
		{"ip[1] = 184", []string{"tcp4"}},
		{"ip6[0:2] & 0x0ff0 = 0x0280", []string{"tcp6"}}, // traffic class 0x28
		{"dst host 2001:db8::2", []string{"tcp6"}},
		{"src host 192.0.2.10 or src host 203.0.113.5", []string{"dns4", "tcp4"}},
		{"icmp[icmptype] = 0", []string{"icmp4"}}, // pmacct puts the source port there, 0
		{"less 100", []string{"dns4", "icmp4", "lldp", "mpls3", "reply4", "tcp4", "tcp6", "vlan4"}},
		{"greater 101", nil},
		{"vlan and ether[14:2] & 0xe000 = 0xa000", []string{"vlan4"}}, // CoS 5 in the tag
		{"-ip[9] & 0xff = 250", []string{"tcp4"}},                     // unary minus: -6
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			f, err := Compile(c.expr)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := pcap.NewBPF(layers.LinkTypeEthernet, snapLen, c.expr)
			if err != nil {
				t.Fatal(err)
			}
			var got, libpcap []string
			for name, r := range records {
				if f.Match(r) {
					got = append(got, name)
				}
				var buf [frameMax]byte
				n := frame(&buf, r)
				ci := gopacket.CaptureInfo{Length: wireLen, CaptureLength: n}
				if ref.Matches(ci, buf[:n]) {
					libpcap = append(libpcap, name)
				}
			}
			slices.Sort(got)
			slices.Sort(libpcap)
			if !slices.Equal(got, c.want) {
				t.Errorf("matched %v, want %v", got, c.want)
			}
			if !slices.Equal(got, libpcap) {
				t.Errorf("matched %v, libpcap's bpf_filter on the same frames %v", got, libpcap)
			}
		})
	}
}

func TestFrameLengths(t *testing.T) {
	// pmacct's capture lengths: 55 (IPv4), 59 (tagged IPv4), 77 (IPv6), 81 (tagged IPv6).
	cases := []struct {
		r    flow.Record
		want int
	}{
		{flow.Record{Key: flow.Key{Fixed: flow.Fixed{SrcIP: addr("192.0.2.1")}}}, 55},
		{flow.Record{Key: flow.Key{Fixed: flow.Fixed{DstIP: addr("192.0.2.1"), VLAN: 1}}}, 59},
		{flow.Record{Key: flow.Key{Fixed: flow.Fixed{SrcIP: addr("2001:db8::1")}}}, 77},
		{flow.Record{Key: flow.Key{Fixed: flow.Fixed{SrcIP: addr("2001:db8::1"), VLAN: 4095}}}, 81},
		{flow.Record{Key: flow.Key{Fixed: flow.Fixed{EType: 0x0806}}}, 14},
		{flow.Record{Key: flow.Key{Fixed: flow.Fixed{EType: 0x0806, VLAN: 2}}}, 18},
		{flow.Record{Key: flow.Key{Fixed: flow.Fixed{SrcIP: addr("192.0.2.1"), MPLSStackDepth: 2}}}, 63},
		{flow.Record{Key: flow.Key{Fixed: flow.Fixed{SrcIP: addr("192.0.2.1"), MPLSStackDepth: 9}}}, 71},
	}
	for _, c := range cases {
		var buf [frameMax]byte
		if n := frame(&buf, &c.r); n != c.want {
			t.Errorf("frame(%+v) = %d bytes, want %d", c.r.Key, n, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, expr := range []string{"tcp port foo", "src net 300.0.0.0/8", "bogus", "ip and"} {
		_, err := Compile(expr)
		if err == nil {
			t.Errorf("Compile(%q): no error", expr)
			continue
		}
		// The message must carry the expression and libpcap's own words.
		if msg := err.Error(); !strings.Contains(msg, expr) || !strings.Contains(msg, "libpcap: ") || len(msg) < len(expr)+30 {
			t.Errorf("Compile(%q) error %q", expr, msg)
		}
	}
}

func TestNil(t *testing.T) {
	var f *Filter
	if !f.Match(records["tcp4"]) {
		t.Error("nil filter rejected a record")
	}
}

func TestConcurrent(t *testing.T) {
	f, err := Compile("tcp and src net 192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				if !f.Match(records["tcp4"]) || f.Match(records["dns4"]) {
					t.Error("wrong result under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNoAllocs(t *testing.T) {
	f, err := Compile("tcp and src net 192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { f.Match(records["tcp6"]) }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	for _, c := range []struct{ name, expr, rec string }{
		{"tcp", "tcp", "tcp4"},
		{"src_net", "src net 192.0.2.0/24", "tcp4"},
		{"portrange_v6", "src portrange 0-1023", "tcp6"},
		{"tcpflags", "tcp[tcpflags] & tcp-syn != 0", "tcp4"},
		{"vlan_net_port", "vlan 10 and src net 192.0.2.0/24 and tcp dst port 80", "vlan4"},
	} {
		f, err := Compile(c.expr)
		if err != nil {
			b.Fatal(err)
		}
		r := records[c.rec]
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Match(r)
			}
		})
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// Any expression libpcap compiles, on any record: Match does not panic and
// agrees with libpcap's own bpf_filter on the same frame.
func FuzzMatch(f *testing.F) {
	for _, c := range []string{"tcp", "vlan 10 and tcp dst port 80", "mpls 16001 and tcp", "ip6[53] & 0x02 != 0", "less 60", "ether[0:4] = 0"} {
		f.Add(c, []byte{6, 0, 80, 1, 0xc0, 0, 2, 1, 0x10, 0, 10, 3, 16})
	}
	f.Fuzz(func(t *testing.T, expr string, raw []byte) {
		flt, err := Compile(expr)
		if err != nil {
			return
		}
		ref, err := pcap.NewBPF(layers.LinkTypeEthernet, snapLen, expr)
		if err != nil {
			t.Fatalf("compiles for flowdex, not for libpcap: %v", err)
		}
		// a record from the bytes: proto, ports, an address, a VLAN, labels, flags
		at := func(i int) byte {
			if i < len(raw) {
				return raw[i]
			}
			return 0
		}
		r := &flow.Record{Key: flow.Key{Fixed: flow.Fixed{
			Proto: at(0), SrcPort: uint16(at(1))<<8 | uint16(at(2)), DstPort: uint16(at(3)),
			SrcIP: netip.AddrFrom4([4]byte{at(4), at(5), at(6), at(7)}), TOS: at(8), VLAN: uint16(at(10)) & 0xfff,
			CoS: at(11) & 7, MPLSStackDepth: at(12) % 6, MPLSLabelTop: uint32(at(1)) << 8, MPLSLabelBottom: uint32(at(2)),
		}}, TCPFlags: at(9)}
		if at(13)&1 == 1 {
			r.SrcIP = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: at(4)})
		}
		var buf [frameMax]byte
		n := frame(&buf, r)
		want := ref.Matches(gopacket.CaptureInfo{Length: wireLen, CaptureLength: n}, buf[:n])
		if got := flt.Match(r); got != want {
			t.Errorf("%q on %+v: flowdex %v, libpcap %v", expr, r.Key, got, want)
		}
	})
}
