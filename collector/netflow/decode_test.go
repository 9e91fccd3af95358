package netflow

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/exporter"
)

var (
	exporterA = netip.MustParseAddr("192.0.2.1")
	exporterB = netip.MustParseAddr("2001:db8::1")
	arrival   = time.Date(2024, 1, 1, 0, 0, 1, 500_000, time.UTC)
)

const exportMicros = tSecs * 1e6

func decodeOne(t *testing.T, d *Decoder, payload []byte) ([]flow.Record, error) {
	t.Helper()
	var recs []flow.Record
	err := d.Decode(payload, exporterA, arrival, func(r *flow.Record) { recs = append(recs, *r) })
	return recs, err
}

// TestRecordFields decodes one handmade record per case and checks the
// primitives nfacctd would take from it.
func TestRecordFields(t *testing.T) {
	ntp := func(unixSec, frac uint32) []byte { return cat(u32(unixSec+ntpEpoch), u32(frac)) }
	cases := []struct {
		name    string
		version uint16
		cfg     Configuration
		fields  []fld
		values  []byte
		check   func(r flow.Record) bool
	}{
		{
			name:    "IPv4 with everything",
			version: versionV9,
			fields: []fld{{8, 4, 0}, {12, 4, 0}, {9, 1, 0}, {13, 1, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0},
				{5, 1, 0}, {6, 1, 0}, {16, 4, 0}, {17, 2, 0}, {129, 4, 0}, {128, 4, 0}, {18, 4, 0},
				{10, 2, 0}, {14, 4, 0}, {1, 8, 0}, {2, 4, 0}, {3, 4, 0}, {56, 6, 0}, {80, 6, 0},
				{244, 1, 0}, {22, 4, 0}, {21, 4, 0}},
			values: cat(ip("192.0.2.10"), ip("198.51.100.20"), u8(24), u8(16), u16(49152), u16(443), u8(6),
				u8(184), u8(0x1b), u32(64496), u16(64497), u32(64498), u32(64499), ip("203.0.113.1"),
				u16(3), u32(70000), u64(1<<33), u32(12), u32(2), []byte{2, 0, 0, 0, 0, 1}, []byte{2, 0, 0, 0, 0, 2},
				u8(5), u32(tUptime-2500), u32(tUptime-500)),
			check: func(r flow.Record) bool {
				return r.SrcIP == netip.MustParseAddr("192.0.2.10") && r.DstIP == netip.MustParseAddr("198.51.100.20") &&
					r.SrcMask == 24 && r.DstMask == 16 && r.SrcPort == 49152 && r.DstPort == 443 && r.Proto == 6 &&
					r.TOS == 184 && r.TCPFlags == 0x1b && r.SrcAS == 64496 && r.DstAS == 64497 &&
					r.PeerSrcAS == 64498 && r.PeerDstAS == 64499 && r.PeerDstIP == netip.MustParseAddr("203.0.113.1") &&
					r.InIface == 3 && r.OutIface == 70000 && r.Bytes == 1<<33 && r.Packets == 12 && r.Flows == 2 &&
					r.SrcMAC == [6]byte{2, 0, 0, 0, 0, 1} && r.DstMAC == [6]byte{2, 0, 0, 0, 0, 2} && r.CoS == 5 &&
					r.EType == 0x800 && r.TimestampStart == exportMicros-2_000_000 && r.TimestampEnd == exportMicros && // whole seconds, as nfacctd
					r.PeerSrcIP == exporterA && r.TimestampArrival == arrival.UnixMicro() &&
					r.TimestampExport == exportMicros && r.ExportProtoSeqno == tSeq && r.ExportProtoSysID == tDomain &&
					r.ExportProtoVersion == 9 && r.SamplingRate == 0
			},
		},
		{
			name:    "exporter addresses of the record ignored by default, as nfacctd 1.7.7",
			version: versionIPFIX,
			fields:  []fld{{8, 4, 0}, {130, 4, 0}, {1, 4, 0}},
			values:  cat(ip("10.0.0.1"), ip("192.0.2.99"), u32(1)),
			check:   func(r flow.Record) bool { return r.PeerSrcIP == exporterA },
		},
		{
			name:    "exporter address of the record, with use_exporter_address, as pmacct 1.7.9",
			version: versionIPFIX,
			cfg:     Configuration{UseExporterAddress: true},
			fields:  []fld{{8, 4, 0}, {130, 4, 0}, {1, 4, 0}},
			values:  cat(ip("10.0.0.1"), ip("192.0.2.99"), u32(1)),
			check:   func(r flow.Record) bool { return r.PeerSrcIP == netip.MustParseAddr("192.0.2.99") },
		},
		{
			name:    "exporter IPv6 address when the IPv4 one is 0",
			version: versionIPFIX,
			cfg:     Configuration{UseExporterAddress: true},
			fields:  []fld{{8, 4, 0}, {130, 4, 0}, {131, 16, 0}, {1, 4, 0}},
			values:  cat(ip("10.0.0.1"), ip("0.0.0.0"), ip("2001:db8::99"), u32(1)),
			check:   func(r flow.Record) bool { return r.PeerSrcIP == netip.MustParseAddr("2001:db8::99") },
		},
		{
			name:    "NSEL before 8.4: Cisco's elements, initiator and responder octets no counters",
			version: versionV9,
			fields:  []fld{{8, 4, 0}, {40001, 4, 0}, {40002, 4, 0}, {40003, 2, 0}, {40004, 2, 0}, {40005, 1, 0}, {233, 1, 0}, {231, 4, 0}, {232, 4, 0}},
			values:  cat(ip("10.0.0.1"), ip("203.0.113.1"), ip("198.51.100.1"), u16(1024), u16(53), u8(1), u8(2), u32(100), u32(200)),
			check: func(r flow.Record) bool {
				return r.PostNATSrcIP == netip.MustParseAddr("203.0.113.1") && r.PostNATDstIP == netip.MustParseAddr("198.51.100.1") &&
					r.PostNATSrcPort == 1024 && r.PostNATDstPort == 53 && r.NATEvent == 1 && r.FWEvent == 2 &&
					!r.Event && r.Bytes == 0 && r.Packets == 0
			},
		},
		{
			name:    "NEL: natEvent makes an event, whose post-NAT IPv4 address is read beside IPv6 hosts",
			version: versionIPFIX,
			fields:  []fld{{27, 16, 0}, {225, 4, 0}, {227, 2, 0}, {230, 1, 0}, {1, 4, 0}, {323, 8, 0}},
			values:  cat(ip("2001:db8::1"), ip("203.0.113.2"), u16(2048), u8(3), u32(100), u64(uint64(tSecs)*1000+250)),
			check: func(r flow.Record) bool {
				return r.Event && r.SrcIP == netip.MustParseAddr("2001:db8::1") && r.PostNATSrcIP == netip.MustParseAddr("203.0.113.2") &&
					r.PostNATSrcPort == 2048 && r.NATEvent == 3 && r.Bytes == 100 &&
					r.TimestampStart == int64(tSecs)*1e6+250_000 && r.TimestampEnd == 0
			},
		},
		{
			name:    "IPv6, BGP next hop, prefixes ignored when addresses exist",
			version: versionIPFIX,
			fields:  []fld{{27, 16, 0}, {28, 16, 0}, {29, 1, 0}, {30, 1, 0}, {63, 16, 0}, {170, 16, 0}},
			values: cat(ip("2001:db8::10"), ip("2001:db8:1::20"), u8(48), u8(64), ip("2001:db8::ff"),
				ip("2001:db8:99::")),
			check: func(r flow.Record) bool {
				return r.SrcIP == netip.MustParseAddr("2001:db8::10") && r.DstIP == netip.MustParseAddr("2001:db8:1::20") &&
					r.SrcMask == 48 && r.DstMask == 64 && r.PeerDstIP == netip.MustParseAddr("2001:db8::ff") &&
					r.EType == 0x86dd && r.ExportProtoVersion == 10
			},
		},
		{
			name:    "prefixes when no address",
			version: versionIPFIX,
			fields:  []fld{{44, 4, 0}, {45, 4, 0}, {9, 1, 0}},
			values:  cat(ip("192.0.2.0"), ip("198.51.100.0"), u8(24)),
			check: func(r flow.Record) bool {
				return r.SrcIP == netip.MustParseAddr("192.0.2.0") && r.DstIP == netip.MustParseAddr("198.51.100.0") &&
					r.SrcMask == 24 && r.EType == 0x800
			},
		},
		{
			name:    "both families, IPv4 source zero: IPv6",
			version: versionV9,
			fields:  []fld{{8, 4, 0}, {27, 16, 0}, {9, 1, 0}, {29, 1, 0}},
			values:  cat(ip("0.0.0.0"), ip("2001:db8::1"), u8(8), u8(56)),
			check: func(r flow.Record) bool {
				return r.SrcIP == netip.MustParseAddr("2001:db8::1") && r.SrcMask == 56 && r.EType == 0x86dd
			},
		},
		{
			name:    "both families, IPv4 source set: IPv4",
			version: versionV9,
			fields:  []fld{{8, 4, 0}, {27, 16, 0}, {9, 1, 0}, {29, 1, 0}},
			values:  cat(ip("192.0.2.1"), ip("2001:db8::1"), u8(8), u8(56)),
			check: func(r flow.Record) bool {
				return r.SrcIP == netip.MustParseAddr("192.0.2.1") && r.SrcMask == 8 && r.EType == 0x800
			},
		},
		{
			name:    "IP version element decides",
			version: versionIPFIX,
			fields:  []fld{{60, 1, 0}, {8, 4, 0}, {27, 16, 0}},
			values:  cat(u8(6), ip("192.0.2.1"), ip("2001:db8::1")),
			check: func(r flow.Record) bool {
				return r.SrcIP == netip.MustParseAddr("2001:db8::1") && r.EType == 0x86dd
			},
		},
		{
			name:    "layer 2 only: no etype unless sent",
			version: versionIPFIX,
			fields:  []fld{{56, 6, 0}, {80, 6, 0}, {1, 4, 0}, {2, 4, 0}},
			values:  cat([]byte{2, 0, 0, 0, 0, 1}, []byte{2, 0, 0, 0, 0, 2}, u32(1500), u32(1)),
			check: func(r flow.Record) bool {
				return !r.SrcIP.IsValid() && r.EType == 0 && r.SrcMAC == [6]byte{2, 0, 0, 0, 0, 1} && r.Bytes == 1500 &&
					r.Packets == 1
			},
		},
		{
			name:    "ethernetType wins over the IP version",
			version: versionIPFIX,
			fields:  []fld{{8, 4, 0}, {256, 2, 0}},
			values:  cat(ip("192.0.2.1"), u16(0x8100)),
			check:   func(r flow.Record) bool { return r.EType == 0x8100 },
		},
		{
			name:    "post MACs when no ingress MAC; staMacAddress last",
			version: versionIPFIX,
			fields:  []fld{{81, 6, 0}, {57, 6, 0}, {365, 6, 0}},
			values:  cat([]byte{2, 0, 0, 0, 0, 3}, []byte{2, 0, 0, 0, 0, 4}, []byte{2, 0, 0, 0, 0, 5}),
			check: func(r flow.Record) bool {
				return r.SrcMAC == [6]byte{2, 0, 0, 0, 0, 3} && r.DstMAC == [6]byte{2, 0, 0, 0, 0, 4}
			},
		},
		{
			name:    "VLAN without direction: ingress first",
			version: versionV9,
			fields:  []fld{{59, 2, 0}, {58, 2, 0}},
			values:  cat(u16(200), u16(100)),
			check:   func(r flow.Record) bool { return r.VLAN == 100 },
		},
		{
			name:    "VLAN with egress direction",
			version: versionV9,
			fields:  []fld{{61, 1, 0}, {58, 2, 0}, {59, 2, 0}},
			values:  cat(u8(1), u16(100), u16(200)),
			check:   func(r flow.Record) bool { return r.VLAN == 200 },
		},
		{
			name:    "VLAN with ingress direction, dot1q",
			version: versionIPFIX,
			fields:  []fld{{61, 1, 0}, {243, 2, 0}, {254, 2, 0}},
			values:  cat(u8(0), u16(300), u16(400)),
			check:   func(r flow.Record) bool { return r.VLAN == 300 },
		},
		{
			name:    "IP next hop ignored by default",
			version: versionV9,
			fields:  []fld{{15, 4, 0}, {63, 16, 0}},
			values:  cat(ip("192.0.2.254"), ip("2001:db8::fe")),
			check:   func(r flow.Record) bool { return !r.PeerDstIP.IsValid() },
		},
		{
			name:    "IP next hop with use_ip_next_hop",
			version: versionV9,
			cfg:     Configuration{UseIPNextHop: true},
			fields:  []fld{{15, 4, 0}},
			values:  ip("192.0.2.254"),
			check:   func(r flow.Record) bool { return r.PeerDstIP == netip.MustParseAddr("192.0.2.254") },
		},
		{
			name:    "counters: total, then post, flows 0 is 1",
			version: versionIPFIX,
			fields:  []fld{{23, 4, 0}, {85, 8, 0}, {24, 4, 0}, {3, 4, 0}},
			values:  cat(u32(10), u64(20), u32(3), u32(0)),
			check:   func(r flow.Record) bool { return r.Bytes == 20 && r.Packets == 3 && r.Flows == 1 },
		},
		{
			name:    "layer 2 octets last",
			version: versionIPFIX,
			fields:  []fld{{352, 8, 0}},
			values:  u64(1514),
			check:   func(r flow.Record) bool { return r.Bytes == 1514 },
		},
		{
			name:    "reduced-size encoding, repeated element: the last wins",
			version: versionIPFIX,
			fields:  []fld{{1, 3, 0}, {10, 1, 0}, {10, 2, 0}},
			values:  cat([]byte{1, 0, 0}, u8(9), u16(700)),
			check:   func(r flow.Record) bool { return r.Bytes == 65536 && r.InIface == 700 },
		},
		{
			name:    "enterprise fields are not IANA's",
			version: versionIPFIX,
			fields:  []fld{{1, 4, 0}, {1, 4, 29305}, {8, 4, 29305}},
			values:  cat(u32(100), u32(999), ip("192.0.2.99")),
			check:   func(r flow.Record) bool { return r.Bytes == 100 && !r.SrcIP.IsValid() },
		},
		{
			name:    "physical interfaces, UDP and TCP ports",
			version: versionIPFIX,
			fields:  []fld{{252, 4, 0}, {253, 4, 0}, {180, 2, 0}, {183, 2, 0}},
			values:  cat(u32(5), u32(6), u16(53), u16(80)),
			check: func(r flow.Record) bool {
				return r.InIface == 5 && r.OutIface == 6 && r.SrcPort == 53 && r.DstPort == 80
			},
		},
		{
			name:    "ICMP type/code elements are not ports",
			version: versionIPFIX,
			fields:  []fld{{4, 1, 0}, {32, 2, 0}},
			values:  cat(u8(1), u16(0x0800)),
			check:   func(r flow.Record) bool { return r.DstPort == 0 && r.SrcPort == 0 && r.Proto == 1 },
		},
		{
			name:    "v9 times in seconds (nfacctd_time_secs)",
			version: versionV9,
			cfg:     Configuration{TimeSecs: true},
			fields:  []fld{{22, 4, 0}, {21, 4, 0}},
			values:  cat(u32(tUptime-30), u32(tUptime-10)),
			check: func(r flow.Record) bool {
				return r.TimestampStart == exportMicros-30e6 && r.TimestampEnd == exportMicros-10e6
			},
		},
		{
			name:    "v9 flow stamped just after the header uptime is not 49 days old",
			version: versionV9,
			fields:  []fld{{22, 4, 0}},
			values:  u32(tUptime + 250),
			check:   func(r flow.Record) bool { return r.TimestampStart == exportMicros && r.TimestampEnd == 0 },
		},
		{
			name:    "IPFIX uptime with systemInitTimeMilliseconds",
			version: versionIPFIX,
			fields:  []fld{{160, 8, 0}, {22, 4, 0}, {21, 4, 0}},
			values:  cat(u64(tSecs*1000-3_600_000), u32(1500), u32(2500)),
			check: func(r flow.Record) bool {
				return r.TimestampStart == exportMicros-3_600_000_000+1_500_000 &&
					r.TimestampEnd == exportMicros-3_600_000_000+2_500_000
			},
		},
		{
			name:    "IPFIX uptime without systemInitTimeMilliseconds: export time, no end, milliseconds ignored",
			version: versionIPFIX,
			fields:  []fld{{22, 4, 0}, {21, 4, 0}, {152, 8, 0}},
			values:  cat(u32(1500), u32(2500), u64(tSecs*1000-5000)),
			check:   func(r flow.Record) bool { return r.TimestampStart == exportMicros && r.TimestampEnd == 0 },
		},
		{
			name:    "milliseconds",
			version: versionIPFIX,
			fields:  []fld{{152, 8, 0}, {153, 8, 0}},
			values:  cat(u64(tSecs*1000-5001), u64(tSecs*1000-1)),
			check: func(r flow.Record) bool {
				return r.TimestampStart == exportMicros-5_001_000 && r.TimestampEnd == exportMicros-1000
			},
		},
		{
			name:    "microseconds, NTP format, low 11 bits ignored",
			version: versionIPFIX,
			fields:  []fld{{154, 8, 0}, {155, 8, 0}},
			values:  cat(ntp(tSecs-2, 1<<31|0x7ff), ntp(tSecs-1, 1<<30)),
			check: func(r flow.Record) bool {
				return r.TimestampStart == exportMicros-1_500_000 && r.TimestampEnd == exportMicros-750_000
			},
		},
		{
			name:    "microseconds, nfprobe's seconds and microseconds",
			version: versionIPFIX,
			fields:  []fld{{154, 16, 0}, {155, 16, 0}},
			values:  cat(u64(tSecs-2), u64(250), u64(tSecs-1), u64(999_999)),
			check: func(r flow.Record) bool {
				return r.TimestampStart == exportMicros-2_000_000+250 && r.TimestampEnd == exportMicros-1
			},
		},
		{
			name:    "nanoseconds, NTP format",
			version: versionIPFIX,
			fields:  []fld{{156, 8, 0}, {157, 8, 0}},
			values:  cat(ntp(tSecs-2, 0x0000_4000), ntp(tSecs-1, 0xffff_ffff)),
			check: func(r flow.Record) bool {
				// 0x4000/2^32 s = 3.8 µs; 0xffffffff/2^32 s = 999999.99 µs.
				return r.TimestampStart == exportMicros-2_000_000+3 && r.TimestampEnd == exportMicros-1
			},
		},
		{
			name:    "observation time is a start only",
			version: versionIPFIX,
			fields:  []fld{{323, 8, 0}},
			values:  u64(tSecs*1000 - 7),
			check:   func(r flow.Record) bool { return r.TimestampStart == exportMicros-7000 && r.TimestampEnd == 0 },
		},
		{
			name:    "seconds",
			version: versionIPFIX,
			fields:  []fld{{150, 4, 0}, {151, 4, 0}},
			values:  cat(u32(tSecs-60), u32(tSecs-30)),
			check: func(r flow.Record) bool {
				return r.TimestampStart == exportMicros-60e6 && r.TimestampEnd == exportMicros-30e6
			},
		},
		{
			name:    "deltas before the export time",
			version: versionIPFIX,
			fields:  []fld{{158, 4, 0}, {159, 4, 0}},
			values:  cat(u32(2_000_001), u32(1)),
			check: func(r flow.Record) bool {
				return r.TimestampStart == exportMicros-2_000_001 && r.TimestampEnd == exportMicros-1
			},
		},
		{
			name:    "sampling interval in the record, random interval wins",
			version: versionV9,
			fields:  []fld{{34, 4, 0}, {50, 2, 0}},
			values:  cat(u32(10), u16(20)),
			check:   func(r flow.Record) bool { return r.SamplingRate == 20 },
		},
		{
			name:    "configured sampling rate wins",
			version: versionV9,
			cfg:     Configuration{Sampling: exporter.SamplingOverrides{{Exporters: prefix("192.0.2.0/24"), Rate: 1000}}},
			fields:  []fld{{34, 4, 0}},
			values:  u32(10),
			check:   func(r flow.Record) bool { return r.SamplingRate == 1000 },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mustNew(t, c.cfg)
			var payload []byte
			if c.version == versionV9 {
				payload = v9(2, set(v9TemplateSet, tmpl(9, 300, c.fields...)), set(300, c.values))
			} else {
				payload = ipfix(set(ipfixTemplateSet, tmpl(10, 300, c.fields...)), set(300, c.values))
			}
			recs, err := decodeOne(t, d, payload)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			if !c.check(recs[0]) {
				t.Errorf("unexpected record %+v", recs[0])
			}
			// The same record, decoded by goflow2: the compiled plan agrees.
			ref := newReference(t, c.cfg)
			want, err := ref.decode(datagram{payload: payload, exporter: exporterA, received: arrival})
			if err != nil || len(want) != 1 || want[0] != recs[0] {
				t.Errorf("goflow2 reference differs (%v):\n%s", err, diff(recs[0], want[0]))
			}
		})
	}
}

// TestVariableLength reads records with variable-length fields, short and
// long length prefixes, and a record that overruns its set.
func TestVariableLength(t *testing.T) {
	fields := []fld{{8, 4, 0}, {82, varLength, 0}, {1, 4, 0}}
	long := bytes.Repeat([]byte{'x'}, 300)
	d := mustNew(t, DefaultConfiguration())
	payload := ipfix(set(ipfixTemplateSet, tmpl(10, 300, fields...)),
		set(300,
			cat(ip("192.0.2.1"), u8(3), []byte("abc"), u32(10)),
			cat(ip("192.0.2.2"), u8(255), u16(300), long, u32(20)),
			cat(ip("192.0.2.3"), u8(0), u32(30)),
		))
	recs, err := decodeOne(t, d, payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Bytes != 10 || recs[1].Bytes != 20 || recs[2].Bytes != 30 ||
		recs[1].SrcIP != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("records %+v", recs)
	}

	// The second record claims 300 octets and has 10: the first is emitted.
	payload = ipfix(set(300,
		cat(ip("192.0.2.1"), u8(3), []byte("abc"), u32(10)),
		cat(ip("192.0.2.2"), u8(255), u16(300), long[:10], u32(20)),
	))
	recs, err = decodeOne(t, d, payload)
	if !errors.Is(err, errRecordOverrun) || len(recs) != 1 || recs[0].Bytes != 10 {
		t.Fatalf("overrun: %d records, error %v", len(recs), err)
	}
}

// TestZeroLengthTemplates sends templates whose records would be zero
// octets long, then data for them: goflow2 v2.2.6 would loop forever on
// such data; Decode must return at once and count the refusals.
func TestZeroLengthTemplates(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
	}{
		{"v9 template without fields", v9(2, set(v9TemplateSet, tmpl(9, 300)), set(300, u32(1)))},
		{"v9 template of zero-length fields", v9(2, set(v9TemplateSet, tmpl(9, 300, fld{8, 0, 0}, fld{1, 0, 0})),
			set(300, u32(1)))},
		{"v9 options template without fields", v9(2, set(v9OptionsTemplateSet, optTmplV9(300, nil, nil), u16(0)),
			set(300, u32(1)))},
		{"IPFIX template of zero-length fields", ipfix(set(ipfixTemplateSet, tmpl(10, 300, fld{8, 0, 0})),
			set(300, u32(1)))},
		{"IPFIX options template of zero-length fields", ipfix(set(ipfixOptionsTemplateSet,
			optTmplIPFIX(300, []fld{{149, 0, 0}}, []fld{{34, 0, 0}}), u16(0)), set(300, u32(1)))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mustNew(t, DefaultConfiguration())
			ref := newReference(t, DefaultConfiguration())
			done := make(chan error, 2)
			go func() {
				_, err := decodeOne(t, d, c.payload)
				done <- err
			}()
			go func() {
				// goflow2's own decoder on the guarded store returns too.
				_, err := ref.decode(datagram{payload: c.payload, exporter: exporterA})
				done <- err
			}()
			for range 2 {
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("error %v", err)
					}
				case <-time.After(2 * time.Second): // short: goflow2 grows memory while it loops
					t.Fatal("decoding did not return: zero-length template used")
				}
			}
			s := d.Stats()
			if s.TemplatesRefused != 1 || s.TemplatesAdded != 0 || s.NoTemplate[exporterA] != 1 || s.Records != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestWithdrawal checks RFC 7011 8.1 withdrawals: one template, all data
// templates (id 2 in set 2) and all options templates (id 3 in set 3).
func TestWithdrawal(t *testing.T) {
	data := func(id uint16) []byte { return set(id, cat(ip("192.0.2.1"), u32(1))) }
	fields := []fld{{8, 4, 0}, {1, 4, 0}}
	templates := ipfix(
		set(ipfixTemplateSet, tmpl(10, 300, fields...), tmpl(10, 301, fields...)),
		set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{34, 4, 0}}),
			optTmplIPFIX(401, []fld{{149, 4, 0}}, []fld{{34, 4, 0}}), u16(0)),
	)
	cases := []struct {
		name       string
		withdrawal []byte
		withdrawn  uint64
		left       []uint16 // template ids still known
	}{
		{"one data template", set(ipfixTemplateSet, u16(300), u16(0)), 1, []uint16{301, 400, 401}},
		{"one options template", set(ipfixOptionsTemplateSet, u16(401), u16(0)), 1, []uint16{300, 301, 400}},
		{"all data templates", set(ipfixTemplateSet, u16(2), u16(0)), 2, []uint16{400, 401}},
		{"all options templates", set(ipfixOptionsTemplateSet, u16(3), u16(0)), 2, []uint16{300, 301}},
		{"two, then padding", set(ipfixTemplateSet, u16(300), u16(0), u16(301), u16(0), u16(0), u16(0)), 2,
			[]uint16{400, 401}},
		{"unknown template", set(ipfixTemplateSet, u16(999), u16(0)), 0, []uint16{300, 301, 400, 401}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mustNew(t, DefaultConfiguration())
			if _, err := decodeOne(t, d, templates); err != nil {
				t.Fatal(err)
			}
			if _, err := decodeOne(t, d, ipfix(c.withdrawal)); err != nil {
				t.Fatal(err)
			}
			if got := d.Stats().TemplatesWithdrawn; got != c.withdrawn {
				t.Errorf("%d withdrawn, want %d", got, c.withdrawn)
			}
			known := map[uint16]bool{}
			for _, id := range c.left {
				known[id] = true
			}
			for _, id := range []uint16{300, 301, 400, 401} {
				if got := d.lookup(exporterA, d.exporters.Get(exporterA)).template(templateKey{10, tDomain, id}) != nil; got != known[id] {
					t.Errorf("template %d known: %v, want %v", id, got, known[id])
				}
			}
			// Data for a withdrawn data template is counted as without template.
			before := d.Stats().NoTemplate[exporterA]
			recs, err := decodeOne(t, d, ipfix(data(300)))
			if err != nil {
				t.Fatal(err)
			}
			if want := !known[300]; (len(recs) == 0) != want || (d.Stats().NoTemplate[exporterA] > before) != want {
				t.Errorf("data after withdrawal: %d records, no-template %d -> %d", len(recs), before,
					d.Stats().NoTemplate[exporterA])
			}
		})
	}
	// NetFlow v9 has no withdrawal: a template without fields is refused.
	d := mustNew(t, DefaultConfiguration())
	decodeOne(t, d, v9(1, set(v9TemplateSet, tmpl(9, 300, fields...))))
	decodeOne(t, d, v9(1, set(v9TemplateSet, tmpl(9, 300))))
	if s := d.Stats(); s.TemplatesWithdrawn != 0 || s.TemplatesRefused != 1 ||
		d.lookup(exporterA, d.exporters.Get(exporterA)).template(templateKey{9, tDomain, 300}) == nil {
		t.Errorf("v9 zero-field template: %+v", s)
	}
}

// TestDataBeforeTemplate: a data set whose template is not known yet is
// counted for its exporter, and the rest of the datagram is decoded.
func TestDataBeforeTemplate(t *testing.T) {
	fields := []fld{{8, 4, 0}, {1, 4, 0}}
	d := mustNew(t, DefaultConfiguration())
	payload := ipfix(set(300, cat(ip("192.0.2.1"), u32(1))),
		set(ipfixTemplateSet, tmpl(10, 301, fields...)),
		set(301, cat(ip("192.0.2.2"), u32(2)), cat(ip("192.0.2.3"), u32(3))),
		set(302, cat(ip("192.0.2.4"), u32(4))))
	recs, err := decodeOne(t, d, payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Bytes != 2 || recs[1].Bytes != 3 {
		t.Fatalf("records %+v", recs)
	}
	// The same data from another exporter: its own count, templates are per exporter.
	if err := d.Decode(ipfix(set(301, cat(ip("192.0.2.2"), u32(2)))), exporterB, arrival, func(*flow.Record) {
		t.Error("record emitted with another exporter's template")
	}); err != nil {
		t.Fatal(err)
	}
	s := d.Stats()
	if s.NoTemplate[exporterA] != 2 || s.NoTemplate[exporterB] != 1 || s.Records != 2 || s.Malformed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestV9HeaderCount: the v9 header count is not trusted. softflowd counts
// data records, RFC 3954 all records, some exporters anything; goflow2 and
// nfacctd take it for a set count and stop early.
func TestV9HeaderCount(t *testing.T) {
	fields := []fld{{8, 4, 0}, {1, 4, 0}}
	sets := [][]byte{
		set(v9TemplateSet, tmpl(9, 300, fields...)),
		set(300, cat(ip("192.0.2.1"), u32(1))),
		set(300, cat(ip("192.0.2.2"), u32(2)), cat(ip("192.0.2.3"), u32(3))),
	}
	for _, count := range []uint16{0, 1, 2, 3, 4, 1000} {
		d := mustNew(t, DefaultConfiguration())
		payload := v9(count, sets...)
		recs, err := decodeOne(t, d, payload)
		if err != nil || len(recs) != 3 {
			t.Errorf("count %d: %d records (want 3), error %v", count, len(recs), err)
		}
		if count == 2 {
			// What goflow2 makes of it: the template and one data set.
			var p goflow.NFv9Packet
			err := goflow.DecodeMessageVersion(bytes.NewBuffer(payload), goflow.CreateTemplateSystem(), &p, nil)
			if err != nil || len(p.FlowSets) != 2 {
				t.Errorf("goflow2 read %d sets (error %v); the test expects it to stop at 2", len(p.FlowSets), err)
			}
		}
	}
}

// TestMalformed: truncated and inconsistent datagrams give an error naming
// the exporter, are counted, and the records before the fault are emitted.
func TestMalformed(t *testing.T) {
	fields := []fld{{8, 4, 0}, {1, 4, 0}}
	good := set(300, cat(ip("192.0.2.1"), u32(1)))
	withTemplate := func(sets ...[]byte) []byte {
		return ipfix(append([][]byte{set(ipfixTemplateSet, tmpl(10, 300, fields...))}, sets...)...)
	}
	rec := v5rec{src: "192.0.2.1", dst: "192.0.2.2", nh: "0.0.0.0", proto: 17, pkts: 1, octets: 10}.bytes()
	ipfixLong := withTemplate(good)
	ipfixLong[3] += 8 // header length beyond the datagram
	cases := []struct {
		name    string
		payload []byte
		records int
	}{
		{"empty", nil, 0},
		{"one octet", []byte{0}, 0},
		{"unsupported version", cat(u16(7), make([]byte, 30)), 0},
		{"sFlow", cat(u32(5), make([]byte, 30)), 0},
		{"v5 short header", v5(1, 0)[:20], 0},
		{"v5 count beyond the datagram", v5(3, 0, rec, rec), 2},
		{"v5 truncated record", v5(2, 0, rec, rec)[:24+48+20], 1},
		{"v9 short header", v9(1)[:12], 0},
		{"IPFIX short header", ipfix()[:10], 0},
		{"IPFIX length below header", cat(u16(10), u16(8), make([]byte, 12)), 0},
		{"IPFIX length beyond datagram", ipfixLong, 1},
		{"set length below 4", withTemplate(good, cat(u16(300), u16(2))), 1},
		{"set beyond datagram", withTemplate(good, cat(u16(300), u16(100), u32(0))), 1},
		{"truncated template record", ipfix(set(ipfixTemplateSet, tmpl(10, 300, fields...)[:6])), 0},
		{"options template record overrun", ipfix(set(ipfixOptionsTemplateSet, cat(u16(400), u16(5), u16(1), u32(0)))), 0},
		{"v9 options template overrun", v9(1, set(v9OptionsTemplateSet, cat(u16(400), u16(4), u16(40), u32(0)))), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mustNew(t, DefaultConfiguration())
			recs, err := decodeOne(t, d, c.payload)
			var de *DecodeError
			if !errors.As(err, &de) || de.Exporter != exporterA {
				t.Fatalf("error %v, want a DecodeError naming %s", err, exporterA)
			}
			if len(recs) != c.records {
				t.Errorf("%d records, want %d", len(recs), c.records)
			}
			if s := d.Stats(); s.Malformed != 1 || s.Records != uint64(c.records) {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestV5 checks a handmade NetFlow v5 datagram against nfacctd's rules.
func TestV5(t *testing.T) {
	recs := []v5rec{
		{src: "192.0.2.1", dst: "198.51.100.1", nh: "203.0.113.1", in: 1, out: 2, pkts: 3, octets: 300,
			first: tUptime - 4000, last: tUptime - 1000, sport: 1234, dport: 80, flags: 0x12, proto: 6, tos: 8,
			srcAS: 64496, dstAS: 64497, srcMask: 24, dstMask: 16},
		{src: "192.0.2.1", dst: "198.51.100.1", nh: "0.0.0.0", proto: 1, sport: 77, dport: 0x0800, flags: 0xff},
		{src: "192.0.2.1", dst: "198.51.100.1", nh: "0.0.0.0", proto: 47, sport: 1, dport: 2},
	}
	payload := v5(3, 0x4000|100, recs[0].bytes(), recs[1].bytes(), recs[2].bytes())
	for _, useNH := range []bool{false, true} {
		d := mustNew(t, Configuration{UseIPNextHop: useNH})
		got, err := decodeOne(t, d, payload)
		if err != nil || len(got) != 3 {
			t.Fatalf("%d records, error %v", len(got), err)
		}
		export := int64(tSecs)*1e6 + 500_000 // 500 000 000 ns
		r := got[0]
		wantNH := netip.Addr{}
		if useNH {
			wantNH = netip.MustParseAddr("203.0.113.1")
		}
		if r.SrcIP != netip.MustParseAddr("192.0.2.1") || r.DstIP != netip.MustParseAddr("198.51.100.1") ||
			r.PeerDstIP != wantNH || r.InIface != 1 || r.OutIface != 2 || r.Packets != 3 || r.Bytes != 300 ||
			r.TimestampStart != tSecs*1e6-4_000_000 || r.TimestampEnd != tSecs*1e6-1_000_000 || // whole seconds, as nfacctd
			r.SrcPort != 1234 ||
			r.DstPort != 80 || r.TCPFlags != 0x12 || r.Proto != 6 || r.TOS != 8 || r.SrcAS != 64496 ||
			r.DstAS != 64497 || r.SrcMask != 24 || r.DstMask != 16 || r.SamplingRate != 100 ||
			r.ExportProtoSysID != 3 || r.ExportProtoVersion != 5 || r.ExportProtoSeqno != tSeq ||
			r.TimestampExport != export || r.EType != 0x800 || r.Flows != 1 || r.PeerSrcIP != exporterA {
			t.Errorf("TCP record %+v", r)
		}
		if r := got[1]; r.SrcPort != 0 || r.DstPort != 0x0800 || r.TCPFlags != 0 {
			t.Errorf("ICMP record: ports %d %d, flags %d", r.SrcPort, r.DstPort, r.TCPFlags)
		}
		if r := got[2]; r.SrcPort != 0 || r.DstPort != 0 {
			t.Errorf("GRE record: ports %d %d", r.SrcPort, r.DstPort)
		}
	}
}

// TestStatsByVersion counts datagrams per version.
func TestStatsByVersion(t *testing.T) {
	d := mustNew(t, DefaultConfiguration())
	rec := v5rec{src: "192.0.2.1", dst: "192.0.2.2", nh: "0.0.0.0"}.bytes()
	decodeOne(t, d, v5(1, 0, rec))
	decodeOne(t, d, v9(0))
	decodeOne(t, d, v9(0))
	decodeOne(t, d, ipfix())
	decodeOne(t, d, cat(u16(1), make([]byte, 30)))
	s := d.Stats()
	if s.Datagrams != 5 || s.DatagramsV5 != 1 || s.DatagramsV9 != 2 || s.DatagramsIPFIX != 1 ||
		s.UnsupportedVersion != 1 || s.Malformed != 1 || s.Records != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestBounds: past MaxTemplates an exporter's new templates are refused (a
// known one is still refreshed); past MaxExporters a newcomer's templates are
// not kept, its v5 still decodes, and both are counted.
func TestBounds(t *testing.T) {
	fields := []fld{{8, 4, 0}, {1, 4, 0}}
	d := mustNew(t, Configuration{MaxExporters: 2, MaxTemplates: 2})
	data := func(id uint16) []byte { return set(id, cat(ip("192.0.2.9"), u32(5))) }
	withTemplate := func(id uint16) []byte {
		return ipfix(set(ipfixTemplateSet, tmpl(10, id, fields...)), data(id))
	}
	count := func(exporter netip.Addr, payload []byte) int {
		n := 0
		if err := d.Decode(payload, exporter, arrival, func(*flow.Record) { n++ }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tt := range []struct {
		id   uint16
		want int
	}{{300, 1}, {301, 1}, {302, 0}} {
		if got := count(exporterA, withTemplate(tt.id)); got != tt.want {
			t.Errorf("template %d: %d records, want %d", tt.id, got, tt.want)
		}
	}
	if got := count(exporterA, withTemplate(300)); got != 1 {
		t.Errorf("a known template resent: %d records, want 1", got)
	}
	if got := count(exporterB, withTemplate(300)); got != 1 {
		t.Errorf("second exporter: %d records, want 1", got)
	}
	third := netip.MustParseAddr("198.51.100.3")
	if got := count(third, withTemplate(300)); got != 0 {
		t.Errorf("third exporter past MaxExporters: %d records from its own template, want 0", got)
	}
	rec := v5rec{src: "10.0.0.1", dst: "10.0.0.2", nh: "0.0.0.0", pkts: 1, octets: 60, proto: 6}
	if got := count(third, v5(1, 0, rec.bytes())); got != 1 {
		t.Errorf("third exporter, v5: %d records, want 1", got)
	}
	s := d.Stats()
	if s.TemplatesOverLimit != 2 || s.ExportersOverLimit != 2 || s.TemplatesAdded != 3 || s.TemplatesRefreshed != 1 {
		t.Errorf("stats %+v: want 2 templates over the limit (a third of A, the newcomer's), 2 datagrams of the newcomer, 3 added, 1 refreshed", s)
	}
	if n := d.exporters.Len(); n != 2 {
		t.Errorf("%d exporters kept, want 2", n)
	}

	// many untracked exporters, malformed and templated datagrams: a log line
	// a minute for all of them, and no allocation per datagram
	var logs bytes.Buffer
	d.logger = slog.New(slog.NewTextHandler(&logs, nil))
	for i := range 100 {
		src := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		count(src, withTemplate(400))
		if d.Decode([]byte{0, 9, 0}, src, arrival, func(*flow.Record) {}) == nil {
			t.Fatal("a malformed datagram decoded")
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n > 3 {
		t.Errorf("%d warnings for 200 datagrams of untracked exporters, want at most 3 (a minute each of: too many exporters, template refused, malformed)\n%s", n, logs.String())
	}
	// (a template set costs goflow2's allocations, tracked or not)
	src := netip.MustParseAddr("198.51.100.200")
	for _, payload := range [][]byte{ipfix(data(400)), v5(1, 0, rec.bytes())} {
		if n := testing.AllocsPerRun(100, func() { d.Decode(payload, src, arrival, func(*flow.Record) {}) }); n > 0 {
			t.Errorf("%v allocations per datagram of an untracked exporter", n)
		}
	}
}

// TestEviction: with the table full, an exporter that keeps nothing (it sent
// only v5 here) gives its slot to one with a template to keep; an exporter
// keeping templates is never evicted.
func TestEviction(t *testing.T) {
	fields := []fld{{8, 4, 0}, {1, 4, 0}}
	d := mustNew(t, Configuration{MaxExporters: 2})
	rec := v5rec{src: "10.0.0.1", dst: "10.0.0.2", nh: "0.0.0.0", pkts: 1, octets: 60, proto: 6}
	templated := ipfix(set(ipfixTemplateSet, tmpl(10, 300, fields...)))
	dataOnly := ipfix(set(300, cat(ip("192.0.2.9"), u32(5))))
	count := func(exporter netip.Addr, payload []byte) int {
		n := 0
		if err := d.Decode(payload, exporter, arrival, func(*flow.Record) { n++ }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	v5only, c, late := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.3"), netip.MustParseAddr("198.51.100.4")
	count(v5only, v5(1, 0, rec.bytes()))
	count(exporterA, templated)
	count(c, templated) // the table is full: v5only makes room
	if got := count(c, dataOnly); got != 1 {
		t.Errorf("the exporter that took the free slot: %d records, want 1", got)
	}
	if got := count(exporterA, dataOnly); got != 1 {
		t.Errorf("an exporter keeping a template lost it: %d records", got)
	}
	count(late, templated) // nothing to evict now
	if got := count(late, dataOnly); got != 0 {
		t.Errorf("an exporter past the bound: %d records, want 0", got)
	}
	if got := count(v5only, v5(1, 0, rec.bytes())); got != 1 {
		t.Errorf("the evicted exporter's v5: %d records, want 1", got)
	}
	if s := d.Stats(); s.ExportersEvicted != 1 || s.TemplatesOverLimit != 1 || s.TemplatesAdded != 2 {
		t.Errorf("stats %+v: want 1 evicted, 1 template over the limit, 2 added", s)
	}
}
