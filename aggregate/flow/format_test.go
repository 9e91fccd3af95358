package flow

import (
	"bufio"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
)

// realLine returns line n (1-based) of a file pmacct 1.7.7 wrote (TZ=Europe/Berlin).
func realLine(t *testing.T, name string, n int) string {
	t.Helper()
	f, err := os.Open("../../collector/pmacct/testdata/out/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for i := 1; s.Scan(); i++ {
		if i == n {
			return s.Text()
		}
	}
	t.Fatalf("%s has no line %d", name, n)
	return ""
}

func micros(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestDocumentMatchesPmacct(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tcp := Key{Fixed: Fixed{
		SrcIP: netip.MustParseAddr("192.0.2.10"), DstIP: netip.MustParseAddr("198.51.100.20"),
		SrcPort: 49152, DstPort: 80, Proto: 6,
	}}
	withArrival := tcp
	withArrival.TimestampArrival = micros("2024-01-01T00:00:00.1Z")
	l2 := tcp
	l2.SrcMAC = [6]byte{2, 0, 0, 0, 0, 0x0a}
	l2.DstMAC = [6]byte{2, 0, 0, 0, 0, 0x0b}
	l2.EType = 0x800
	nf := tcp
	nf.PeerSrcIP = netip.MustParseAddr("192.0.2.1")
	nf.SrcAS, nf.DstAS = 64496, 64511
	nf.InIface, nf.OutIface = 10, 20
	nf.SrcNet, nf.DstNet = netip.MustParseAddr("192.0.2.0"), netip.MustParseAddr("198.51.100.0")
	nf.SrcMask, nf.DstMask = 24, 24
	nf.TimestampStart = micros("2024-01-01T00:00:01Z")
	nf.TimestampEnd = nf.TimestampStart
	nf.TimestampExport = micros("2024-01-01T00:01:00Z")
	nf.ExportProtoSeqno, nf.ExportProtoVersion, nf.ExportProtoSysID = 1000, 5, 7

	bin := micros("2023-12-31T23:59:00Z") / 1e6
	updated := micros("2026-11-23T20:54:46Z") / 1e6
	tests := []struct {
		file   string
		line   int
		format Format
		agg    []string
		key    Key
		c      Counters
		s      Stamps
	}{
		{"pair-nfacctd.json", 2, Format{}, []string{"peer_src_ip", "in_iface", "out_iface", "src_host", "dst_host",
			"src_net", "dst_net", "src_mask", "dst_mask", "src_as", "dst_as", "src_port", "dst_port", "tcpflags", "proto",
			"tos", "export_proto_seqno", "export_proto_version", "export_proto_sysid", "timestamp_start", "timestamp_end",
			"timestamp_export", "flows", "sampling_rate"}, nf, Counters{TCPFlags: 27, Packets: 6, Bytes: 340, Flows: 1}, Stamps{}},
		{"print-epoch.json", 1, Format{SinceEpoch: true}, []string{"src_host", "dst_host", "src_port", "dst_port", "proto", "timestamp_arrival"},
			withArrival, Counters{Packets: 1, Bytes: 40}, Stamps{bin, updated}},
		{"print-rfc3339.json", 1, Format{RFC3339: true}, []string{"src_host", "dst_host", "src_port", "dst_port", "proto", "timestamp_arrival"},
			withArrival, Counters{Packets: 1, Bytes: 40}, Stamps{bin, updated}},
		{"print-utc.json", 1, Format{UTC: true}, []string{"src_host", "dst_host", "src_port", "dst_port", "proto", "timestamp_arrival"},
			withArrival, Counters{Packets: 1, Bytes: 40}, Stamps{bin, updated}},
		{"print-default.json", 1, Format{}, []string{"src_mac", "dst_mac", "vlan", "cos", "etype", "src_host", "dst_host",
			"src_port", "dst_port", "tcpflags", "proto", "tos"}, l2, Counters{TCPFlags: 27, Packets: 6, Bytes: 340}, Stamps{bin, updated}},
		{"print-numprotos.json", 1, Format{NumProtos: true}, []string{"src_host", "dst_host", "tcpflags", "proto"},
			tcp, Counters{TCPFlags: 27, Packets: 6, Bytes: 340}, Stamps{}},
	}
	var doc document.Document
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			agg, err := ParseAggregate(tt.agg)
			if err != nil {
				t.Fatal(err)
			}
			tt.format.Location = berlin
			tt.format.Document(&doc, agg, &tt.key, tt.c, tt.s)
			got := string(doc.AppendJSON(nil, document.Pmacct))
			if want := realLine(t, tt.file, tt.line); got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestTCPFlagsArray(t *testing.T) {
	for _, tt := range []struct {
		flags uint8
		want  string
	}{{0, `[]`}, {0x10, `["ACK"]`}, {0x18, `["ACK", "PSH"]`}, {0x3f, `["URG", "ACK", "PSH", "RST", "SYN", "FIN"]`}, {0x52, `[]`}} {
		if got := string(AppendTCPFlagsArray(nil, tt.flags)); got != tt.want {
			t.Errorf("%#x: got %s, want %s", tt.flags, got, tt.want)
		}
	}
}

func TestAppendTime(t *testing.T) {
	ts := micros("2024-01-01T00:00:00.100000Z")
	for _, tt := range []struct {
		f    Format
		usec bool
		want string
	}{
		{Format{UTC: true}, true, "2024-01-01 00:00:00.100000"},
		{Format{UTC: true, Secs: true}, true, "2024-01-01 00:00:00.000000"},
		{Format{UTC: true, RFC3339: true}, true, "2024-01-01T00:00:00.100000Z"},
		{Format{UTC: true}, false, "2024-01-01 00:00:00"},
		{Format{SinceEpoch: true}, true, "1704067200.100000"},
		{Format{SinceEpoch: true}, false, "1704067200"},
	} {
		if got := string(tt.f.AppendTime(nil, ts, tt.usec)); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.f, got, tt.want)
		}
	}
	if got := string((&Format{}).AppendTime(nil, 0, true)); got != "0000-00-00 00:00:00.000000" {
		t.Errorf("zero time: got %s", got)
	}
}

func TestParseAggregate(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    string // names in JSON order, or the error's start
		wantSum Sum
	}{
		{"", "src_host", SumNone},
		{"dst_host, src_host,proto", "src_host dst_host proto", SumNone},
		{"sum_host", "src_host", SumHost},
		{"sum_port,flows", "src_port flows", SumPort},
		{"none", "", SumNone},
		{"src_hots", `unknown primitive "src_hots" (did you mean "src_host"?)`, SumNone},
		{"sum_host,dst_host", "a sum_* primitive cannot", SumNone},
		{"none,src_host", `"none" cannot`, SumNone},
		{"proto,proto", `primitive "proto" listed twice`, SumNone},
	} {
		var names []string
		if tt.in != "" {
			names = strings.Split(tt.in, ",")
		}
		a, err := ParseAggregate(names)
		if err != nil {
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("%q: error %v, want %s", tt.in, err, tt.want)
			}
			continue
		}
		if got := strings.Join(a.Set.Names(), " "); got != tt.want || a.Sum != tt.wantSum {
			t.Errorf("%q: got %q sum %d, want %q sum %d", tt.in, got, a.Sum, tt.want, tt.wantSum)
		}
	}
}

func BenchmarkDocument(b *testing.B) {
	agg, _ := ParseAggregate([]string{"src_host", "dst_host", "src_port", "dst_port", "proto", "tos", "in_iface", "out_iface", "tcpflags", "timestamp_start"})
	k := Key{Fixed: Fixed{SrcIP: netip.MustParseAddr("192.0.2.10"), DstIP: netip.MustParseAddr("198.51.100.20"), SrcPort: 443, DstPort: 50000,
		Proto: 6, InIface: 1, OutIface: 2, TimestampStart: 1704067200100000}}
	f := Format{SinceEpoch: true}
	var doc document.Document
	b.ReportAllocs()
	for b.Loop() {
		f.Document(&doc, agg, &k, Counters{TCPFlags: 0x18, Packets: 10, Bytes: 1000}, Stamps{Inserted: 1704067200})
	}
}

// everyKey sets every primitive of a Key; dst_net is unknown, so that it is
// written as the zero address of dst_host's family.
func everyKey() Key {
	ip := netip.MustParseAddr
	return Key{Fixed: Fixed{
		Tag: 1 << 40, Tag2: 7, Label: LabelID("core,r1"), Class: LabelID("http"),
		SrcMAC: [6]byte{1, 2, 3, 4, 5, 6}, DstMAC: [6]byte{7, 8, 9, 10, 11, 12}, VLAN: 4094, CoS: 7, EType: 0x86dd,
		SrcAS: 1, DstAS: 2, PeerSrcAS: 3, PeerDstAS: 4, PeerSrcIP: ip("203.0.113.9"), PeerDstIP: ip("2001:db8::99"),
		ASPath: LabelID("64500_64501_{64502,64503}"), StdComm: LabelID("64500:1_64500:2"), ExtComm: LabelID("RT:64500:7"), LrgComm: LabelID("64500:1:2"),
		LocalPref: 200, MED: 50, SrcASPath: LabelID("64510"), SrcStdComm: LabelID("64510:9"), SrcLocalPref: 100, SrcMED: 10,
		InIface: 5, OutIface: 6, SrcIP: ip("2001:db8::1"), DstIP: ip("2001:db8::2"), SrcNet: ip("2001:db8::"),
		SrcMask: 48, DstMask: 25, SrcPort: 65535, DstPort: 1, Proto: 17, TOS: 0xb8, SamplingRate: 1000,
		SrcCountry: [3]byte{'G', 'B'}, DstPocode: [11]byte{'E', 'C', '1', 'A'}, SrcCoords: Coords{51.5142, -0.0931},
		MPLSVPNRD: 0x0000_fde8_0000_0001, MPLSPWID: 7, SamplingDirection: DirectionEgress,
		PostNATSrcIP: ip("203.0.113.5"), PostNATSrcPort: 1024, PostNATDstPort: 53, NATEvent: 1, FWEvent: 2,
		MPLSLabelTop: 1 << 19, MPLSLabelBottom: 16, MPLSStackDepth: 3,
		TunnelSrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, TunnelDstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		TunnelSrcIP: ip("198.51.100.7"), TunnelDstIP: ip("2001:db8::7"), TunnelProto: 132, TunnelTOS: 0x28,
		TunnelSrcPort: 40000, TunnelDstPort: 443, VXLAN: 0xffffff,
		TimestampStart: 1704067200100000, TimestampEnd: 1704067201200000, TimestampArrival: 1704067202300000,
		TimestampExport: 1704067203000000, ExportProtoSeqno: 0xfffffffe, ExportProtoSysID: 9, ExportProtoVersion: 10,
	}}
}

// Every primitive flowdex aggregates on, in two formats: pins the key order and
// the value format of each.
func TestDocumentEveryPrimitive(t *testing.T) {
	var names []string
	for _, n := range KnownNames() {
		if n != "none" && !strings.HasPrefix(n, "sum_") {
			names = append(names, n)
		}
	}
	agg, err := ParseAggregate(names)
	if err != nil {
		t.Fatal(err)
	}
	k := everyKey()
	c := Counters{TCPFlags: 0x1b, Packets: 3, Bytes: 200, Flows: 2}
	s := Stamps{Inserted: 1704067200, Updated: 1704067260}
	var doc document.Document
	for _, tt := range []struct {
		f    Format
		want string
	}{
		{Format{UTC: true}, `{"event_type": "purge", "tag": 1099511627776, "tag2": 7, "label": "core,r1", "class": "http", "mac_src": "01:02:03:04:05:06", "mac_dst": "07:08:09:0a:0b:0c", "vlan": 4094, "cos": 7, "etype": "86dd", "as_src": 1, "as_dst": 2, "comms": "64500:1_64500:2", "ecomms": "RT:64500:7", "lcomms": "64500:1:2", "as_path": "64500_64501_{64502,64503}", "local_pref": 200, "med": 50, "peer_as_src": 3, "peer_as_dst": 4, "peer_ip_src": "203.0.113.9", "peer_ip_dst": "2001:db8::99", "comms_src": "64510:9", "ecomms_src": "", "lcomms_src": "", "as_path_src": "64510", "local_pref_src": 100, "med_src": 10, "iface_in": 5, "iface_out": 6, "mpls_vpn_rd": "0:65000:1", "mpls_pw_id": 7, "ip_src": "2001:db8::1", "net_src": "2001:db8::", "ip_dst": "2001:db8::2", "net_dst": "::", "mask_src": 48, "mask_dst": 25, "port_src": 65535, "port_dst": 1, "country_ip_src": "GB", "country_ip_dst": "", "pocode_ip_src": "", "pocode_ip_dst": "EC1A", "lat_ip_src": 51.514200000000002, "lon_ip_src": -0.093100000000000002, "lat_ip_dst": 0.0, "lon_ip_dst": 0.0, "tcp_flags": "27", "ip_proto": "udp", "tos": 184, "sampling_rate": 1000, "sampling_direction": "e", "post_nat_ip_src": "203.0.113.5", "post_nat_ip_dst": "", "post_nat_port_src": 1024, "post_nat_port_dst": 53, "nat_event": 1, "fw_event": 2, "mpls_label_top": 524288, "mpls_label_bottom": 16, "mpls_stack_depth": 3, "tunnel_mac_src": "02:00:00:00:00:01", "tunnel_mac_dst": "02:00:00:00:00:02", "tunnel_ip_src": "198.51.100.7", "tunnel_ip_dst": "2001:db8::7", "tunnel_ip_proto": "sctp", "tunnel_tos": 40, "tunnel_port_src": 40000, "tunnel_port_dst": 443, "vxlan": 16777215, "timestamp_start": "2024-01-01 00:00:00.100000", "timestamp_end": "2024-01-01 00:00:01.200000", "timestamp_arrival": "2024-01-01 00:00:02.300000", "export_proto_seqno": 4294967294, "export_proto_version": 10, "export_proto_sysid": 9, "timestamp_export": "2024-01-01 00:00:03.000000", "stamp_inserted": "2024-01-01 00:00:00", "stamp_updated": "2024-01-01 00:01:00", "flows": 2, "packets": 3, "bytes": 200}`},
		{Format{SinceEpoch: true, NumProtos: true, TCPFlagsArray: true}, `{"event_type": "purge", "tag": 1099511627776, "tag2": 7, "label": "core,r1", "class": "http", "mac_src": "01:02:03:04:05:06", "mac_dst": "07:08:09:0a:0b:0c", "vlan": 4094, "cos": 7, "etype": "86dd", "as_src": 1, "as_dst": 2, "comms": "64500:1_64500:2", "ecomms": "RT:64500:7", "lcomms": "64500:1:2", "as_path": "64500_64501_{64502,64503}", "local_pref": 200, "med": 50, "peer_as_src": 3, "peer_as_dst": 4, "peer_ip_src": "203.0.113.9", "peer_ip_dst": "2001:db8::99", "comms_src": "64510:9", "ecomms_src": "", "lcomms_src": "", "as_path_src": "64510", "local_pref_src": 100, "med_src": 10, "iface_in": 5, "iface_out": 6, "mpls_vpn_rd": "0:65000:1", "mpls_pw_id": 7, "ip_src": "2001:db8::1", "net_src": "2001:db8::", "ip_dst": "2001:db8::2", "net_dst": "::", "mask_src": 48, "mask_dst": 25, "port_src": 65535, "port_dst": 1, "country_ip_src": "GB", "country_ip_dst": "", "pocode_ip_src": "", "pocode_ip_dst": "EC1A", "lat_ip_src": 51.514200000000002, "lon_ip_src": -0.093100000000000002, "lat_ip_dst": 0.0, "lon_ip_dst": 0.0, "tcp_flags": ["ACK", "PSH", "SYN", "FIN"], "ip_proto": "17", "tos": 184, "sampling_rate": 1000, "sampling_direction": "e", "post_nat_ip_src": "203.0.113.5", "post_nat_ip_dst": "", "post_nat_port_src": 1024, "post_nat_port_dst": 53, "nat_event": 1, "fw_event": 2, "mpls_label_top": 524288, "mpls_label_bottom": 16, "mpls_stack_depth": 3, "tunnel_mac_src": "02:00:00:00:00:01", "tunnel_mac_dst": "02:00:00:00:00:02", "tunnel_ip_src": "198.51.100.7", "tunnel_ip_dst": "2001:db8::7", "tunnel_ip_proto": "132", "tunnel_tos": 40, "tunnel_port_src": 40000, "tunnel_port_dst": 443, "vxlan": 16777215, "timestamp_start": "1704067200.100000", "timestamp_end": "1704067201.200000", "timestamp_arrival": "1704067202.300000", "export_proto_seqno": 4294967294, "export_proto_version": 10, "export_proto_sysid": 9, "timestamp_export": "1704067203.000000", "stamp_inserted": "1704067200", "stamp_updated": "1704067260", "flows": 2, "packets": 3, "bytes": 200}`},
	} {
		tt.f.Document(&doc, agg, &k, c, s)
		if got := string(doc.AppendJSON(nil, document.Pmacct)); got != tt.want {
			t.Errorf("%+v:\n got %s\nwant %s", tt.f, got, tt.want)
		}
	}
}

// An aggregate of events only is written without flows, packets and bytes,
// as nfacctd writes NEL and other event records.
func TestDocumentEvents(t *testing.T) {
	agg, err := ParseAggregate([]string{"src_host", "post_nat_src_host", "nat_event", "flows"})
	if err != nil {
		t.Fatal(err)
	}
	k := Key{Fixed: Fixed{SrcIP: netip.MustParseAddr("100.64.0.1"), PostNATSrcIP: netip.MustParseAddr("203.0.113.1"), NATEvent: 1}}
	var doc document.Document
	f := Format{UTC: true}
	for _, tt := range []struct {
		events bool
		want   string
	}{
		{true, `{"event_type": "purge", "ip_src": "100.64.0.1", "post_nat_ip_src": "203.0.113.1", "nat_event": 1}`},
		{false, `{"event_type": "purge", "ip_src": "100.64.0.1", "post_nat_ip_src": "203.0.113.1", "nat_event": 1, "flows": 1, "packets": 2, "bytes": 3}`},
	} {
		f.Document(&doc, agg, &k, Counters{Flows: 1, Packets: 2, Bytes: 3, Events: tt.events}, Stamps{})
		if got := string(doc.AppendJSON(nil, document.Pmacct)); got != tt.want {
			t.Errorf("events %v:\n got %s\nwant %s", tt.events, got, tt.want)
		}
	}
}

// Route distinguishers as pmacct's bgp_rd2str writes them (the spec's
// experiments on nfacctd 1.7.7).
func TestAppendRD(t *testing.T) {
	for _, tt := range []struct {
		rd   uint64
		want string
	}{
		{0, "0:0:0"},
		{0x0000_fde8_0000_0001, "0:65000:1"},
		{0x0000_fde8_0000_0000, "0:65000:0"},
		{0x0001_c000_0201_0064, "1:192.0.2.1:100"},
		{0x0002_0001_0000_0007, "2:65536:7"},
		{0x0002_fa56_ea00_0001, "2:4200000000:1"},
		{RDVRFID<<48 | 5, "vrfid:5"},
		{0x0003_0000_0000_0001, "unknown"},
		{0x8000_fde8_0000_0001, "0:65000:1"}, // an origin bit of later versions
	} {
		if got := string(AppendRD(nil, tt.rd)); got != tt.want {
			t.Errorf("%#x: %s, want %s", tt.rd, got, tt.want)
		}
	}
}

// Numbers as pmacct's jansson writes them (the spec's experiments and
// libjansson itself).
func TestAppendJanssonReal(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{
		{51.5142, "51.514200000000002"}, {-0.0931, "-0.093100000000000002"}, {15.6167, "15.6167"},
		{10, "10.0"}, {0, "0.0"}, {-20, "-20.0"}, {5e-05, "5.0000000000000002e-5"}, {1e20, "1e20"},
	} {
		if got := string(appendJanssonReal(nil, tt.v)); got != tt.want {
			t.Errorf("%v: %s, want %s", tt.v, got, tt.want)
		}
	}
}
