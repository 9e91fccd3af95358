package datagram

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// got is what a handler saw of one datagram.
type got struct {
	src      string
	payload  string
	received time.Time
}

func collect(out *[]got) Handler {
	return func(d *Datagram) {
		*out = append(*out, got{d.Source.String(), string(d.Payload), d.Received})
	}
}

// pmacctTests is where pmacct's regression pcaps are, relative to this
// package; /work/shared is a sibling of the repository.
const pmacctTests = "../../../shared/pmacct-tests"

func TestReplayPmacct(t *testing.T) {
	if _, err := os.Stat(pmacctTests); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pmacct test pcaps missing: %v", err)
		}
		t.Skipf("pmacct test pcaps missing: %v", err)
	}
	// Expectations read with tshark 4.x from each file:
	//   tshark -r FILE -Y udp | wc -l                                   (datagrams; also the packet count)
	//   tshark -r FILE -Y udp -T fields -e ip.src -e ipv6.src -e udp.srcport | sort | uniq -c   (sources)
	//   tshark -r FILE -Y udp -T fields -e udp.length   summed minus 8 per packet               (bytes)
	//   tshark -r FILE -Y udp -T fields -e data.data | cut -c1-4 | sort | uniq -c              (version)
	//   tshark -r FILE -T fields -e frame.time_epoch -c 1                                      (first stamp)
	// None holds IP fragments: tshark -Y 'ip.flags.mf==1 || ip.frag_offset>0 || ipv6.fragment' is empty.
	ipfixA := map[string]int{"138.187.0.13:50109": 3, "138.187.0.13:50111": 3}
	nfv9A := map[string]int{"138.187.57.55:43853": 40}
	nfv9B := map[string]int{"10.10.0.33:24920": 8, "10.10.0.33:6512": 17}
	cases := []struct {
		file      string
		datagrams uint64
		bytes     uint64
		version   uint16
		sources   map[string]int
		first     string // epoch seconds of the first packet
	}{
		{"100-IPFIXv10-CISCO/traffic-00.pcap", 6, 1832, 10, ipfixA, "1672534805.000000000"},
		{"101-NFv9-CISCO-cust_primitives/traffic-00.pcap", 40, 7780, 9, nfv9A, "1672534805.000000000"},
		{"102-NFv9-CISCO-f2rd-pretag-sampling-reload/traffic-00.pcap", 25, 3716, 9, nfv9B, "1672534805.000000000"},
		{"103-IPFIXv10-CISCO-pretag-JSON_encoding/traffic-00.pcap", 6, 1832, 10, ipfixA, "1672534805.000000000"},
		{"104-IPFIXv10-IPv6-CISCO-sampling_option/traffic-00.pcap", 5, 1228, 10,
			map[string]int{"[2a02:a90:4007:700::54]:50399": 5}, "1672534805.000000000"},
		{"106-IPFIXv10-HUAWEI-vrf_name/traffic-00.pcap", 6, 1188, 10,
			map[string]int{"[2001:db8:54::1]:40000": 6}, "946734488.562554000"},
		{"110-IPFIXv10-NFv9-multiple-sources/traffic-00.pcap", 6, 1832, 10, ipfixA, "1672534805.000000000"},
		{"110-IPFIXv10-NFv9-multiple-sources/traffic-01.pcap", 40, 7780, 9, nfv9A, "1672534805.000000000"},
		{"110-IPFIXv10-NFv9-multiple-sources/traffic-02.pcap", 25, 3716, 9, nfv9B, "1672534805.000000000"},
		{"111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources/traffic-00.pcap", 11, 1844, 9,
			map[string]int{"138.187.57.55:43853": 11}, "1672534805.000000000"},
		{"111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources/traffic-01.pcap", 11, 2680, 10,
			map[string]int{"[2001:4d98:a100:303:0:931:f:1]:52925": 11}, "1672534805.000000000"},
		{"112-IPFIXv10-CISCO-options-map-reassignment/traffic-00.pcap", 21, 11124, 10,
			map[string]int{"[2001:db8:90::1]:65156": 11, "[2001:db8:90::1]:61853": 10}, "1783600495.690577000"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			sources := map[string]int{}
			// Not asserted: 106's capture has timestamps that go back 20 s.
			var first time.Time
			var badVersion, badLength int
			st, err := Replay(context.Background(), filepath.Join(pmacctTests, tc.file), 0, func(d *Datagram) {
				sources[d.Source.String()]++
				if first.IsZero() {
					first = d.Received
				}
				if len(d.Payload) < 4 || binary.BigEndian.Uint16(d.Payload) != tc.version {
					badVersion++
				}
				// IPFIX carries its own length: the payload must end where the message does.
				if tc.version == 10 && int(binary.BigEndian.Uint16(d.Payload[2:])) != len(d.Payload) {
					badLength++
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			want := ReplayStats{Packets: tc.datagrams, Datagrams: tc.datagrams, Bytes: tc.bytes}
			if st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
			if fmt.Sprint(sources) != fmt.Sprint(tc.sources) {
				t.Errorf("sources %v, want %v", sources, tc.sources)
			}
			if badVersion+badLength > 0 {
				t.Errorf("%d payloads without version %d, %d with an IPFIX length not their own", badVersion, tc.version, badLength)
			}
			if s := epoch(first); s != tc.first {
				t.Errorf("first timestamp %s, want %s", s, tc.first)
			}
		})
	}
}

func epoch(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// TestReplayCaptures replays captures made by real tools (testdata/README.md):
// tcpdump on "any" (cooked v1 and v2) and on lo with nanosecond stamps,
// dumpcap on lo and any at once (pcapng, two interfaces, two link types),
// editcap's pcapng conversion.
func TestReplayCaptures(t *testing.T) {
	once := []got{
		{src: "127.0.0.1:40001", payload: "flowdex-v4-0"},
		{src: "127.0.0.1:40001", payload: "flowdex-v4-1"},
		{src: "127.0.0.1:40001", payload: "flowdex-v4-2"},
		{src: "[::1]:40002", payload: "flowdex-v6-0"},
		{src: "[::1]:40002", payload: "flowdex-v6-1"},
	}
	cases := []struct {
		file   string
		want   []got
		notUDP uint64 // a TCP SYN and its RST
		first  string // tshark -r FILE -T fields -e frame.time_epoch -c 1
	}{
		{"any-sll.pcap", once, 2, "1795473222.124012000"},
		{"any-sll2.pcap", once, 2, "1795473222.124012000"},
		{"any-sll2.pcapng", once, 2, "1795473222.124012000"}, // no if_tsresol: microseconds
		{"lo-nano.pcap", once, 2, "1795473222.124012646"},
		{"multi.pcapng", append(append([]got(nil), once...), once...), 4, "1795473222.124012646"},
		{"multi.pcapng.gz", append(append([]got(nil), once...), once...), 4, "1795473222.124012646"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			var out []got
			st, err := Replay(context.Background(), filepath.Join("testdata", tc.file), 0, collect(&out))
			if err != nil {
				t.Fatal(err)
			}
			if len(out) == 0 {
				t.Fatal("nothing delivered")
			}
			if s := epoch(out[0].received); s != tc.first {
				t.Errorf("first timestamp %s, want %s", s, tc.first)
			}
			for i := range out {
				out[i].received = time.Time{}
			}
			if fmt.Sprint(out) != fmt.Sprint(tc.want) {
				t.Errorf("delivered\n%v\nwant\n%v", out, tc.want)
			}
			want := ReplayStats{Packets: uint64(len(tc.want)) + tc.notUDP, Datagrams: uint64(len(tc.want)),
				Bytes: 12 * uint64(len(tc.want)), SkippedNotUDP: tc.notUDP}
			if st != want {
				t.Errorf("stats %+v, want %+v", st, want)
			}
		})
	}
}

// linkCase is one handmade frame and what replaying it must give.
type linkCase struct {
	name    string
	link    uint32
	frame   []byte
	snaplen uint32 // 0: whole frame
	src     string // delivered datagram's source, "" when skipped
	payload string
	skip    func(*ReplayStats) *uint64 // the counter a skipped frame lands in
}

func linkCases(t testing.TB) []linkCase {
	pl := func(s string) gopacket.Payload { return gopacket.Payload(s) }
	v4 := func(src string, sport uint16, p string) []byte {
		return serialize(t, ip4(src, layers.IPProtocolUDP), udpLayer(sport), pl(p))
	}
	v6 := func(src string, sport uint16, p string) []byte {
		return serialize(t, ip6(src, layers.IPProtocolUDP), udpLayer(sport), pl(p))
	}
	family := func(order binary.ByteOrder, f uint32) []byte {
		b := make([]byte, 4)
		order.PutUint32(b, f)
		return b
	}
	notIP := func(s *ReplayStats) *uint64 { return &s.SkippedNotIP }
	notUDP := func(s *ReplayStats) *uint64 { return &s.SkippedNotUDP }
	frag := func(s *ReplayStats) *uint64 { return &s.SkippedFragment }
	bad := func(s *ReplayStats) *uint64 { return &s.SkippedMalformed }
	linkType := func(s *ReplayStats) *uint64 { return &s.SkippedLinkType }

	mf := ip4("192.0.2.30", layers.IPProtocolUDP)
	mf.Flags = layers.IPv4MoreFragments
	later := ip4("192.0.2.31", layers.IPProtocolUDP)
	later.FragOffset = 185
	// IPv6 fragment header: next header UDP, offset 0, M flag, identification.
	fragHdr := []byte{17, 0, 0, 1, 0, 0, 0, 42}
	hop := &layers.IPv6HopByHop{}
	hop.NextHeader = layers.IPProtocolUDP
	hop.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}

	return []linkCase{
		{name: "ethernet ipv4, padded to 60 bytes", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeIPv4), ip4("192.0.2.1", layers.IPProtocolUDP), udpLayer(2055), pl("pad")),
			src:   "192.0.2.1:2055", payload: "pad"},
		{name: "ethernet ipv6", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeIPv6), ip6("2001:db8::1", layers.IPProtocolUDP), udpLayer(4739), pl("ipfix over ipv6")),
			src:   "[2001:db8::1]:4739", payload: "ipfix over ipv6"},
		{name: "ethernet 802.1Q", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4},
				ip4("192.0.2.2", layers.IPProtocolUDP), udpLayer(9995), pl("tagged")),
			src: "192.0.2.2:9995", payload: "tagged"},
		{name: "ethernet QinQ", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv6},
				ip6("2001:db8::2", layers.IPProtocolUDP), udpLayer(6343), pl("double tagged")),
			src: "[2001:db8::2]:6343", payload: "double tagged"},
		{name: "ethernet ipv6 hop-by-hop", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeIPv6), ip6("2001:db8::3", layers.IPProtocolIPv6HopByHop), hop, udpLayer(2056), pl("after extension")),
			src:   "[2001:db8::3]:2056", payload: "after extension"},
		{name: "ethernet ipv4-mapped ipv6 source", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeIPv6), ip6("::ffff:192.0.2.9", layers.IPProtocolUDP), udpLayer(2057), pl("mapped")),
			src:   "192.0.2.9:2057", payload: "mapped"},
		{name: "ethernet arp", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
				HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: []byte{2, 0, 0, 0, 0, 1},
				SourceProtAddress: []byte{192, 0, 2, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 2}}),
			skip: notIP},
		{name: "ethernet tcp", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeIPv4), ip4("192.0.2.3", layers.IPProtocolTCP), &layers.TCP{SrcPort: 179, DstPort: 40000, SYN: true, Window: 1024}),
			skip:  notUDP},
		{name: "ethernet ipv4 first fragment", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeIPv4), mf, udpLayer(2055), pl("first part")),
			skip:  frag},
		{name: "ethernet ipv4 later fragment", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeIPv4), later, pl("the rest of a datagram")),
			skip:  frag},
		{name: "ethernet ipv6 fragment", link: 1,
			frame: serialize(t, ether(layers.EthernetTypeIPv6), ip6("2001:db8::4", layers.IPProtocolIPv6Fragment), pl(string(fragHdr)+"\x08\x07\x08\x07\x00\x20\x00\x00more")),
			skip:  frag},
		{name: "ethernet udp cut by snaplen", link: 1, snaplen: 50,
			frame: serialize(t, ether(layers.EthernetTypeIPv4), ip4("192.0.2.4", layers.IPProtocolUDP), udpLayer(2055), pl(strings.Repeat("x", 100))),
			skip:  bad},
		{name: "sll ipv4", link: 113,
			frame: cat(sllHeader(0x0800), v4("192.0.2.5", 2055, "cooked")),
			src:   "192.0.2.5:2055", payload: "cooked"},
		{name: "sll 802.1Q ipv6", link: 113,
			frame: cat(sllHeader(0x8100), []byte{0, 7, 0x86, 0xdd}, v6("2001:db8::5", 2055, "cooked tagged")),
			src:   "[2001:db8::5]:2055", payload: "cooked tagged"},
		{name: "sll2 ipv6", link: 276,
			frame: cat(sll2Header(0x86dd), v6("2001:db8::6", 4739, "cooked v2")),
			src:   "[2001:db8::6]:4739", payload: "cooked v2"},
		{name: "sll2 ipv4", link: 276,
			frame: cat(sll2Header(0x0800), v4("192.0.2.6", 4739, "cooked v2 v4")),
			src:   "192.0.2.6:4739", payload: "cooked v2 v4"},
		{name: "raw 101 ipv4", link: 101, frame: v4("192.0.2.7", 2055, "raw"), src: "192.0.2.7:2055", payload: "raw"},
		{name: "raw 101 ipv6", link: 101, frame: v6("2001:db8::7", 2055, "raw6"), src: "[2001:db8::7]:2055", payload: "raw6"},
		{name: "raw 12 ipv4", link: 12, frame: v4("192.0.2.8", 2055, "dlt raw"), src: "192.0.2.8:2055", payload: "dlt raw"},
		{name: "raw 14 ipv6", link: 14, frame: v6("2001:db8::8", 2055, "dlt raw 14"), src: "[2001:db8::8]:2055", payload: "dlt raw 14"},
		{name: "ipv4 228", link: 228, frame: v4("192.0.2.10", 2055, "linktype ipv4"), src: "192.0.2.10:2055", payload: "linktype ipv4"},
		{name: "ipv6 229", link: 229, frame: v6("2001:db8::10", 2055, "linktype ipv6"), src: "[2001:db8::10]:2055", payload: "linktype ipv6"},
		{name: "null ipv4 little-endian", link: 0,
			frame: cat(family(binary.LittleEndian, 2), v4("192.0.2.11", 2055, "bsd loopback")),
			src:   "192.0.2.11:2055", payload: "bsd loopback"},
		{name: "null ipv6 darwin big-endian", link: 0,
			frame: cat(family(binary.BigEndian, 30), v6("2001:db8::11", 2055, "darwin")),
			src:   "[2001:db8::11]:2055", payload: "darwin"},
		{name: "null ipv6 netbsd", link: 0,
			frame: cat(family(binary.LittleEndian, 24), v6("2001:db8::12", 2055, "netbsd")),
			src:   "[2001:db8::12]:2055", payload: "netbsd"},
		{name: "null unknown family", link: 0,
			frame: cat(family(binary.LittleEndian, 7), v4("192.0.2.12", 2055, "family 7")),
			skip:  notIP},
		{name: "loop ipv4", link: 108,
			frame: cat(family(binary.BigEndian, 2), v4("192.0.2.13", 2055, "openbsd loop")),
			src:   "192.0.2.13:2055", payload: "openbsd loop"},
		{name: "802.11 not supported", link: 105, frame: v4("192.0.2.14", 2055, "wifi"), skip: linkType},
	}
}

func TestReplayLinkTypes(t *testing.T) {
	cases := linkCases(t)
	tshark, _ := exec.LookPath("tshark")
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// One file per link type, as pcap allows.
	var order []uint32
	byLink := map[uint32][]linkCase{}
	for _, c := range cases {
		if _, ok := byLink[c.link]; !ok {
			order = append(order, c.link)
		}
		byLink[c.link] = append(byLink[c.link], c)
	}
	for _, link := range order {
		cs := byLink[link]
		t.Run(strconv.Itoa(int(link)), func(t *testing.T) {
			var frames [][]byte
			var stamps []time.Time
			var want []got
			var wantStats ReplayStats
			for i, c := range cs {
				f := c.frame
				if c.snaplen > 0 {
					f = f[:c.snaplen]
				}
				frames = append(frames, f)
				stamps = append(stamps, base.Add(time.Duration(i)*time.Millisecond))
				wantStats.Packets++
				if c.skip != nil {
					*c.skip(&wantStats)++
					continue
				}
				want = append(want, got{c.src, c.payload, stamps[i]})
				wantStats.Datagrams++
				wantStats.Bytes += uint64(len(c.payload))
			}
			path := writeTemp(t, "link.pcap", pcapFile(binary.LittleEndian, false, link, 65535, frames, stamps))
			var out []got
			st, err := Replay(context.Background(), path, 0, collect(&out))
			if err != nil {
				t.Fatal(err)
			}
			if st != wantStats {
				t.Errorf("stats %+v, want %+v", st, wantStats)
			}
			if len(out) != len(want) {
				t.Fatalf("delivered %v, want %v", out, want)
			}
			for i := range want {
				if out[i].src != want[i].src || out[i].payload != want[i].payload || !out[i].received.Equal(want[i].received) {
					t.Errorf("datagram %d: %+v, want %+v", i, out[i], want[i])
				}
			}
			if tshark != "" {
				checkTshark(t, tshark, path, cs)
			}
		})
	}
}

// checkTshark makes sure the handmade frames are what they claim to be: tshark
// must find the same UDP source and payload length in delivered frames, and no
// UDP in those skipped as not IP, not UDP or of an unknown link type.
func checkTshark(t *testing.T, tshark, path string, cs []linkCase) {
	t.Helper()
	out, err := exec.Command(tshark, "-r", path, "-T", "fields", "-E", "separator=;",
		"-e", "ip.src", "-e", "ipv6.src", "-e", "udp.srcport", "-e", "udp.length").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(cs) {
		t.Fatalf("tshark printed %d lines for %d frames:\n%s", len(lines), len(cs), out)
	}
	for i, c := range cs {
		f := strings.Split(lines[i], ";")
		var st ReplayStats
		switch {
		case c.skip == nil:
			// Take the innermost address tshark prints (it shows mapped IPv6 as is).
			addr := f[0]
			if f[1] != "" {
				addr = f[1]
			}
			n, _ := strconv.Atoi(f[3])
			src := mustAddrPort(c.src)
			if a, err := netip.ParseAddr(addr); err != nil || a.Unmap() != src.Addr() || f[2] != strconv.Itoa(int(src.Port())) || n-8 != len(c.payload) {
				t.Errorf("%s: tshark sees %q", c.name, lines[i])
			}
		case c.skip(&st) == &st.SkippedNotIP, c.skip(&st) == &st.SkippedNotUDP, c.skip(&st) == &st.SkippedLinkType:
			if f[2] != "" {
				t.Errorf("%s: tshark sees UDP: %q", c.name, lines[i])
			}
		}
	}
}

func TestReplayByteOrderAndResolution(t *testing.T) {
	frame := serialize(t, ether(layers.EthernetTypeIPv4), ip4("192.0.2.20", layers.IPProtocolUDP), udpLayer(2055), gopacket.Payload("order"))
	stamp := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	for _, tc := range []struct {
		name  string
		order binary.ByteOrder
		nanos bool
		want  time.Time
	}{
		{"little micro", binary.LittleEndian, false, stamp.Truncate(time.Microsecond)},
		{"big micro", binary.BigEndian, false, stamp.Truncate(time.Microsecond)},
		{"little nano", binary.LittleEndian, true, stamp},
		{"big nano", binary.BigEndian, true, stamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := pcapFile(tc.order, tc.nanos, 1, 65535, [][]byte{frame}, []time.Time{stamp})
			var out []got
			if _, err := ReplayReader(context.Background(), bytes.NewReader(data), 0, collect(&out)); err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || out[0].payload != "order" || !out[0].received.Equal(tc.want) {
				t.Errorf("got %+v, want payload order at %v", out, tc.want)
			}
		})
	}
}

func TestReplayGzipPcap(t *testing.T) {
	frame := serialize(t, ether(layers.EthernetTypeIPv4), ip4("192.0.2.21", layers.IPProtocolUDP), udpLayer(2055), gopacket.Payload("zipped"))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(pcapFile(binary.LittleEndian, false, 1, 65535, [][]byte{frame, frame}, []time.Time{time.Unix(1, 0), time.Unix(2, 0)}))
	zw.Close()
	var out []got
	st, err := ReplayReader(context.Background(), &z, 0, collect(&out))
	if err != nil {
		t.Fatal(err)
	}
	if st.Datagrams != 2 || len(out) != 2 || out[1].payload != "zipped" || out[1].src != "192.0.2.21:2055" {
		t.Errorf("stats %+v, got %+v", st, out)
	}
}

func TestReplayErrors(t *testing.T) {
	frame := serialize(t, ether(layers.EthernetTypeIPv4), ip4("192.0.2.22", layers.IPProtocolUDP), udpLayer(2055), gopacket.Payload("whole"))
	good := pcapFile(binary.LittleEndian, false, 1, 65535, [][]byte{frame, frame}, []time.Time{time.Unix(1, 0), time.Unix(2, 0)})
	ng, err := os.ReadFile("testdata/multi.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		data      []byte
		speed     float64
		datagrams uint64
		want      error  // errors.Is target, or nil
		contains  string // in the error text
	}{
		{"not a capture", []byte("this is not a pcap file at all"), 0, 0, nil, "not a pcap"},
		{"empty", nil, 0, 0, io.EOF, "capture header"},
		{"cut in the last packet", good[:len(good)-3], 0, 1, io.ErrUnexpectedEOF, "packet 2"},
		{"cut in a packet header", good[:len(good)-len(frame)-8], 0, 1, io.ErrUnexpectedEOF, "packet 2"},
		// head -c 1000 multi.pcapng | tshark -r - -Y udp | wc -l: 5 (of 6 whole packets).
		{"pcapng cut in a block", ng[:1000], 0, 5, io.ErrUnexpectedEOF, "packet 7"},
		{"pcapng corrupt block length", corruptNg(ng), 0, 0, nil, "corrupt"},
		{"negative speed", good, -1, 0, nil, "speed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, "bad.pcap", tc.data)
			var n uint64
			st, err := Replay(context.Background(), path, tc.speed, func(*Datagram) { n++ })
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.contains) || (tc.speed >= 0 && !strings.Contains(err.Error(), path)) {
				t.Errorf("error %q should name the file and say %q", err, tc.contains)
			}
			if n != tc.datagrams || st.Datagrams != tc.datagrams {
				t.Errorf("delivered %d (stats %d), want %d", n, st.Datagrams, tc.datagrams)
			}
		})
	}
	if _, err := Replay(context.Background(), "testdata/does-not-exist.pcap", 0, func(*Datagram) {}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// corruptNg sets the length of the block after the section header to a
// value that is not a multiple of 4.
func corruptNg(ng []byte) []byte {
	out := append([]byte(nil), ng...)
	shbLen := binary.LittleEndian.Uint32(out[4:])
	binary.LittleEndian.PutUint32(out[shbLen+4:], 13)
	return out
}

// pacedFile is three UDP frames gap apart.
func pacedFile(t *testing.T, gap time.Duration) []byte {
	frame := serialize(t, ether(layers.EthernetTypeIPv4), ip4("192.0.2.23", layers.IPProtocolUDP), udpLayer(2055), gopacket.Payload("paced"))
	base := time.Unix(1_700_000_000, 0)
	return pcapFile(binary.LittleEndian, false, 1, 65535, [][]byte{frame, frame, frame},
		[]time.Time{base, base.Add(gap), base.Add(2 * gap)})
}

func TestReplaySpeed(t *testing.T) {
	// Bounds are one-sided: a slow machine can only make replays longer, so
	// only "at least" is asserted where pacing applies, and the as-fast-as-
	// possible case gets a gap so long that no machine reaches it.
	cases := []struct {
		name    string
		gap     time.Duration
		speed   float64
		atLeast time.Duration
		below   time.Duration
	}{
		{"recorded pace", 100 * time.Millisecond, 1, 190 * time.Millisecond, 0},
		{"twice as fast", 100 * time.Millisecond, 2, 95 * time.Millisecond, 0},
		{"as fast as possible", 10 * time.Second, 0, 0, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := pacedFile(t, tc.gap)
			var stamps []time.Time
			start := time.Now()
			st, err := ReplayReader(context.Background(), bytes.NewReader(data), tc.speed, func(*Datagram) {
				stamps = append(stamps, time.Now())
			})
			elapsed := time.Since(start)
			if err != nil || st.Datagrams != 3 {
				t.Fatalf("stats %+v, error %v", st, err)
			}
			if elapsed < tc.atLeast {
				t.Errorf("took %v, want at least %v", elapsed, tc.atLeast)
			}
			if tc.below > 0 && elapsed >= tc.below {
				t.Errorf("took %v, want less than %v", elapsed, tc.below)
			}
			if tc.speed > 0 {
				// The second datagram too must wait for its time.
				if d := stamps[1].Sub(stamps[0]); d < time.Duration(float64(tc.gap)/tc.speed)-5*time.Millisecond {
					t.Errorf("second datagram %v after the first", d)
				}
			}
		})
	}
}

func TestReplayCancel(t *testing.T) {
	data := pacedFile(t, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var n int
	done := make(chan struct{})
	first := make(chan struct{}) // the first datagram is delivered: the replay waits 10 s for the second
	var st ReplayStats
	var err error
	start := time.Now()
	go func() {
		defer close(done)
		st, err = ReplayReader(ctx, bytes.NewReader(data), 1, func(*Datagram) {
			if n++; n == 1 {
				close(first)
			}
		})
	}()
	select {
	case <-first:
	case <-done:
		t.Fatalf("the replay ended before its first datagram: %v", err)
	}
	cancel()
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if n != 1 || st.Datagrams != 1 {
		t.Errorf("delivered %d (stats %+v), want only the first", n, st)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("cancel took %v: the sleep did not honour ctx", elapsed)
	}
}
