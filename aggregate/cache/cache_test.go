package cache

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/filter"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/networks"
	"github.com/flowdex/flowdex/aggregate/pretag"
)

func aggregate(t testing.TB, names ...string) flow.Aggregate {
	t.Helper()
	a, err := flow.ParseAggregate(names)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// flush returns the entries of c, in flush order.
func flush(c *Cache) []Entry {
	var out []Entry
	c.Flush(func(e *Entry) { out = append(out, *e) })
	return out
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// rec is a TCP record 192.0.2.1:1000 -> 198.51.100.1:80 with counters 1/100/1,
// changed by the options.
func rec(opts ...func(*flow.Record)) *flow.Record {
	r := &flow.Record{
		Key: flow.Key{Fixed: flow.Fixed{
			SrcIP: ip("192.0.2.1"), DstIP: ip("198.51.100.1"), SrcPort: 1000, DstPort: 80, Proto: 6,
			SrcMask: 24, DstMask: 16, SrcAS: 64496, DstAS: 64497,
			PeerSrcIP: ip("203.0.113.1"), InIface: 3, OutIface: 4,
		}},
		Packets: 1, Bytes: 100, Flows: 1,
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func TestAggregate(t *testing.T) {
	cases := []struct {
		name  string
		aggr  []string
		recs  []*flow.Record
		want  []Entry // in first-seen order
		stats Stats
	}{
		{
			name: "5-tuple sums and ORs",
			aggr: []string{"src_host", "dst_host", "src_port", "dst_port", "proto"},
			recs: []*flow.Record{
				rec(func(r *flow.Record) { r.TCPFlags = 0x02 }),
				rec(func(r *flow.Record) { r.TCPFlags = 0x10; r.Packets, r.Bytes, r.Flows = 5, 500, 2 }),
				rec(func(r *flow.Record) { r.DstPort = 443; r.TCPFlags = 0x01 }),
				rec(func(r *flow.Record) { r.TCPFlags = 0x01; r.InIface = 99 }), // in_iface not aggregated
			},
			want: []Entry{
				{Key: flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.1"), DstIP: ip("198.51.100.1"), SrcPort: 1000, DstPort: 80, Proto: 6}}, TCPFlags: 0x13, Packets: 7, Bytes: 700, Flows: 4},
				{Key: flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.1"), DstIP: ip("198.51.100.1"), SrcPort: 1000, DstPort: 443, Proto: 6}}, TCPFlags: 0x01, Packets: 1, Bytes: 100, Flows: 1},
			},
			stats: Stats{Records: 4, Entries: 2},
		},
		{
			name: "none is one total",
			aggr: []string{"none"},
			recs: []*flow.Record{
				rec(), rec(func(r *flow.Record) { r.SrcIP = ip("2001:db8::1"); r.TCPFlags = 4 }),
				rec(func(r *flow.Record) { r.Packets, r.Bytes = 10, 1000 }),
			},
			want:  []Entry{{TCPFlags: 4, Packets: 12, Bytes: 1200, Flows: 3}},
			stats: Stats{Records: 3, Entries: 1},
		},
		{
			name: "IPv4 and IPv6 hosts differ",
			aggr: []string{"src_host"},
			recs: []*flow.Record{
				rec(), rec(func(r *flow.Record) { r.SrcIP = ip("::ffff:192.0.2.1") }),
				rec(func(r *flow.Record) { r.SrcIP = netip.Addr{} }), rec(),
			},
			want: []Entry{
				{Key: flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.1")}}, Packets: 2, Bytes: 200, Flows: 2},
				{Key: flow.Key{Fixed: flow.Fixed{SrcIP: ip("::ffff:192.0.2.1")}}, Packets: 1, Bytes: 100, Flows: 1},
				{Key: flow.Key{}, Packets: 1, Bytes: 100, Flows: 1},
			},
			stats: Stats{Records: 4, Entries: 3},
		},
		{
			name: "timestamps are key fields",
			aggr: []string{"timestamp_start", "src_host"},
			recs: []*flow.Record{
				rec(func(r *flow.Record) { r.TimestampStart = 1_700_000_000_123_456 }),
				rec(func(r *flow.Record) { r.TimestampStart = 1_700_000_000_123_457 }),
				rec(func(r *flow.Record) { r.TimestampStart = 1_700_000_000_123_456 }),
			},
			want: []Entry{
				{Key: flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.1"), TimestampStart: 1_700_000_000_123_456}}, Packets: 2, Bytes: 200, Flows: 2},
				{Key: flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.1"), TimestampStart: 1_700_000_000_123_457}}, Packets: 1, Bytes: 100, Flows: 1},
			},
			stats: Stats{Records: 3, Entries: 2},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := New(Configuration{Aggregate: aggregate(t, c.aggr...)})
			for _, r := range c.recs {
				cache.Add(r)
			}
			if got := cache.Stats(); got != c.stats {
				t.Errorf("stats %+v, want %+v", got, c.stats)
			}
			if got := flush(cache); !slices.Equal(got, c.want) {
				t.Errorf("entries\n%+v\nwant\n%+v", got, c.want)
			}
			want := c.stats
			want.Entries, want.Flushes, want.Flushed = 0, 1, uint64(len(c.want))
			if got := cache.Stats(); got != want {
				t.Errorf("stats after flush %+v, want %+v", got, want)
			}
			if got := flush(cache); len(got) != 0 {
				t.Errorf("second flush gave %d entries", len(got))
			}
		})
	}
}

// TestEveryPrimitive aggregates on every primitive and checks that an entry
// holds exactly the masked key: the packed keys lose nothing.
func TestEveryPrimitive(t *testing.T) {
	var names []string
	for _, n := range flow.KnownNames() {
		if n != "none" && !strings.HasPrefix(n, "sum_") {
			names = append(names, n)
		}
	}
	a := aggregate(t, names...)
	codec := flow.NewKeyCodec(a.Set)
	if total := 8 + codec.MaxLen() + flow.CustomBytes; total > maxKey {
		t.Fatalf("keys take up to %d bytes, maxKey is %d", total, maxKey)
	}
	full := flow.Key{Fixed: flow.Fixed{
		SrcMAC: [6]byte{1, 2, 3, 4, 5, 6}, DstMAC: [6]byte{7, 8, 9, 10, 11, 12}, VLAN: 4094, CoS: 7, EType: 0x86dd,
		SrcAS: 1, DstAS: 2, PeerSrcAS: 3, PeerDstAS: 4, PeerSrcIP: ip("203.0.113.9"), PeerDstIP: ip("2001:db8::99"),
		InIface: 5, OutIface: 6, SrcIP: ip("2001:db8::1"), DstIP: ip("192.0.2.200"), SrcMask: 48, DstMask: 25,
		SrcPort: 65535, DstPort: 1, Proto: 17, TOS: 0xb8, SamplingRate: 1000,
		TimestampStart: 1, TimestampEnd: -2, TimestampArrival: 1 << 62, TimestampExport: 4,
		ExportProtoSeqno: 0xfffffffe, ExportProtoSysID: 9, ExportProtoVersion: 10,
		MPLSLabelTop: 1 << 19, MPLSLabelBottom: 16, MPLSStackDepth: 3,
		TunnelSrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, TunnelDstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		TunnelSrcIP: ip("198.51.100.7"), TunnelDstIP: ip("2001:db8::7"), TunnelProto: 6, TunnelTOS: 0x28,
		TunnelSrcPort: 40000, TunnelDstPort: 443, VXLAN: 0xffffff,
	}}
	full.SrcNet, full.DstNet = ip("2001:db8::"), ip("192.0.2.128")
	for _, tt := range []struct {
		set  flow.Set
		want flow.Key // what an entry keeps of full
	}{
		{a.Set, full},
		{aggregate(t, "dst_net", "peer_dst_ip", "vlan").Set, flow.Key{Fixed: flow.Fixed{DstNet: full.DstNet, PeerDstIP: full.PeerDstIP, VLAN: full.VLAN}}},
		{aggregate(t, "flows", "tcpflags").Set, flow.Key{}}, // counters, not key fields
	} {
		c := New(Configuration{Aggregate: flow.Aggregate{Set: tt.set}})
		c.Add(&flow.Record{Key: full, Packets: 1})
		got := flush(c)
		if len(got) != 1 || got[0].Key != tt.want {
			t.Errorf("set %v: entry %+v\nwant %+v", tt.set.Names(), got, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	f, err := filter.Compile("src net 192.0.2.0/24 and tcp")
	if err != nil {
		t.Fatal(err)
	}
	// The filter sees source fields that the aggregate drops.
	c := New(Configuration{Aggregate: aggregate(t, "dst_host"), Filter: f})
	c.Add(rec())
	c.Add(rec(func(r *flow.Record) { r.SrcIP = ip("192.0.3.1") }))
	c.Add(rec(func(r *flow.Record) { r.Proto = 17 }))
	c.Add(rec(func(r *flow.Record) { r.DstIP = ip("198.51.100.2") }))
	want := []Entry{
		{Key: flow.Key{Fixed: flow.Fixed{DstIP: ip("198.51.100.1")}}, Packets: 1, Bytes: 100, Flows: 1},
		{Key: flow.Key{Fixed: flow.Fixed{DstIP: ip("198.51.100.2")}}, Packets: 1, Bytes: 100, Flows: 1},
	}
	if s := c.Stats(); s.Records != 4 || s.Filtered != 2 || s.Entries != 2 {
		t.Errorf("stats %+v, want 4 records, 2 filtered, 2 entries", s)
	}
	if got := flush(c); !slices.Equal(got, want) {
		t.Errorf("entries %+v, want %+v", got, want)
	}
}

func TestNetworks(t *testing.T) {
	nets, err := networks.Parse(strings.NewReader(`
10.0.0.1,64512_65001,192.0.2.0/24
65002,198.51.100.0/22
2001:db8::ff,64513_65003,2001:db8:1::/48
65004,2001:db8::/32
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"src_net", "dst_net", "src_mask", "dst_mask", "src_as", "dst_as", "peer_src_as", "peer_dst_as", "peer_dst_ip"}
	cases := []struct {
		name string
		aggr []string
		r    *flow.Record
		want flow.Key
	}{
		{
			name: "v4 both match",
			aggr: all,
			r:    rec(func(r *flow.Record) { r.SrcIP, r.DstIP = ip("192.0.2.77"), ip("198.51.101.9") }),
			want: flow.Key{Fixed: flow.Fixed{SrcNet: ip("192.0.2.0"), DstNet: ip("198.51.100.0"), SrcMask: 24, DstMask: 22,
				SrcAS: 65001, DstAS: 65002, PeerSrcAS: 64512}},
		},
		{
			name: "v4 destination with next hop",
			aggr: all,
			r:    rec(func(r *flow.Record) { r.SrcIP, r.DstIP = ip("198.51.100.1"), ip("192.0.2.1") }),
			want: flow.Key{Fixed: flow.Fixed{SrcNet: ip("198.51.100.0"), DstNet: ip("192.0.2.0"), SrcMask: 22, DstMask: 24,
				SrcAS: 65002, DstAS: 65001, PeerDstAS: 64512, PeerDstIP: ip("10.0.0.1")}},
		},
		{
			name: "no match: zero net, mask and AS, whatever the record said",
			aggr: all,
			r: rec(func(r *flow.Record) {
				r.SrcIP, r.DstIP = ip("203.0.113.1"), ip("2001:db9::1")
				r.PeerDstIP = ip("10.9.9.9")
			}),
			want: flow.Key{Fixed: flow.Fixed{SrcNet: ip("0.0.0.0"), DstNet: ip("::")}},
		},
		{
			name: "v6 longest match",
			aggr: all,
			r:    rec(func(r *flow.Record) { r.SrcIP, r.DstIP = ip("2001:db8:1:2::3"), ip("2001:db8:2::3") }),
			want: flow.Key{Fixed: flow.Fixed{SrcNet: ip("2001:db8:1::"), DstNet: ip("2001:db8::"), SrcMask: 48, DstMask: 32,
				SrcAS: 65003, DstAS: 65004, PeerSrcAS: 64513}},
		},
		{
			name: "only what is aggregated",
			aggr: []string{"src_as", "dst_host"},
			r:    rec(func(r *flow.Record) { r.SrcIP = ip("2001:db8:1::1") }),
			want: flow.Key{Fixed: flow.Fixed{SrcAS: 65003, DstIP: ip("198.51.100.1")}},
		},
		{
			name: "no address, no net",
			aggr: []string{"src_net", "src_mask", "src_as"},
			r:    rec(func(r *flow.Record) { r.SrcIP = netip.Addr{} }),
			want: flow.Key{},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := New(Configuration{Aggregate: aggregate(t, c.aggr...), Networks: nets})
			cache.Add(c.r)
			got := flush(cache)
			if len(got) != 1 || got[0].Key != c.want {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestNetsFromMasks(t *testing.T) {
	cases := []struct {
		src     string
		mask    uint8
		wantNet netip.Addr
	}{
		{"192.0.2.77", 24, ip("192.0.2.0")},
		{"192.0.2.77", 32, ip("192.0.2.77")},
		{"192.0.2.77", 0, ip("0.0.0.0")}, // as pmacct prints it
		{"192.0.2.77", 64, ip("192.0.2.77")},
		{"2001:db8:aa:bb::1", 48, ip("2001:db8:aa::")},
		{"2001:db8:aa:bb::1", 0, ip("::")},
		{"2001:db8:aa:bb::1", 200, ip("2001:db8:aa:bb::1")},
		{"", 24, netip.Addr{}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%d", c.src, c.mask), func(t *testing.T) {
			cache := New(Configuration{Aggregate: aggregate(t, "src_net", "src_mask", "dst_net")})
			r := rec(func(r *flow.Record) {
				r.SrcIP, r.SrcMask = netip.Addr{}, c.mask
				if c.src != "" {
					r.SrcIP = ip(c.src)
				}
			})
			cache.Add(r)
			got := flush(cache)
			want := flow.Key{Fixed: flow.Fixed{SrcNet: c.wantNet, SrcMask: c.mask, DstNet: ip("198.51.0.0")}}
			if len(got) != 1 || got[0].Key != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestRenormalize(t *testing.T) {
	cases := []struct {
		name        string
		renormalize bool
		rate        uint32
		want        Entry
	}{
		{"rate 100", true, 100, Entry{Key: flow.Key{Fixed: flow.Fixed{SamplingRate: 1}}, Packets: 300, Bytes: 30000, Flows: 2}},
		{"rate unknown", true, 0, Entry{Key: flow.Key{Fixed: flow.Fixed{SamplingRate: 0}}, Packets: 3, Bytes: 300, Flows: 2}},
		{"off", false, 100, Entry{Key: flow.Key{Fixed: flow.Fixed{SamplingRate: 100}}, Packets: 3, Bytes: 300, Flows: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := New(Configuration{Aggregate: aggregate(t, "sampling_rate"), Renormalize: c.renormalize})
			cache.Add(rec(func(r *flow.Record) { r.SamplingRate = c.rate }))
			cache.Add(rec(func(r *flow.Record) { r.SamplingRate = c.rate; r.Packets, r.Bytes = 2, 200 }))
			got := flush(cache)
			if len(got) != 1 || got[0] != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// timestamps_secs: the times are cut to the second before aggregating, so
// records within one second are one aggregate (pmacct's handlers zero the
// microseconds as they fill a record), before 1970 as after.
func TestTimestampsSecs(t *testing.T) {
	at := func(start, arrival int64) *flow.Record {
		return rec(func(r *flow.Record) {
			r.TimestampStart, r.TimestampEnd, r.TimestampArrival = start, start+999_999, arrival
		})
	}
	for _, secs := range []bool{false, true} {
		t.Run(fmt.Sprint(secs), func(t *testing.T) {
			c := New(Configuration{Aggregate: aggregate(t, "src_host", "timestamp_start", "timestamp_end", "timestamp_arrival"), TimestampsSecs: secs})
			c.Add(at(1_704_067_200_100_000, 1_704_067_201_000_001))
			c.Add(at(1_704_067_200_900_000, 1_704_067_201_999_999))
			c.Add(at(-1_500_000, -500_000)) // 1969-12-31 23:59:58.5
			c.Add(at(-1_000_001, -1))
			got := flush(c)
			if !secs {
				if len(got) != 4 {
					t.Fatalf("without timestamps_secs: %d aggregates, want 4", len(got))
				}
				return
			}
			want := []Entry{
				{Key: flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.1"), TimestampStart: 1_704_067_200_000_000, TimestampEnd: 1_704_067_201_000_000,
					TimestampArrival: 1_704_067_201_000_000}}, Packets: 2, Bytes: 200, Flows: 2},
				{Key: flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.1"), TimestampStart: -2_000_000, TimestampEnd: -1_000_000,
					TimestampArrival: -1_000_000}}, Packets: 2, Bytes: 200, Flows: 2},
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

// sampling_rate keeps about 1 record in N, each reporting N; renormalised,
// the sums estimate the unsampled ones.
func TestSampling(t *testing.T) {
	const n, rate = 200000, 10
	for _, renormalize := range []bool{false, true} {
		c := New(Configuration{Aggregate: aggregate(t, "sampling_rate"), SamplingRate: rate, SamplingSeed: 1, Renormalize: renormalize})
		for range n {
			c.Add(rec())
		}
		got := flush(c)
		if len(got) != 1 {
			t.Fatalf("entries %+v", got)
		}
		kept := got[0].Flows // flows are never renormalised
		wantRate, wantPackets := uint32(rate), kept
		if renormalize {
			wantRate, wantPackets = 1, kept*rate
		}
		if got[0].SamplingRate != wantRate || got[0].Packets != wantPackets {
			t.Errorf("renormalize %v: %+v", renormalize, got[0])
		}
		if kept < n/rate*97/100 || kept > n/rate*103/100 {
			t.Errorf("kept %d of %d at 1:%d", kept, n, rate)
		}
		if st := c.Stats(); st.Sampled != n-kept {
			t.Errorf("sampled out %d, want %d", st.Sampled, n-kept)
		}
	}
}

func TestSum(t *testing.T) {
	ab := rec(func(r *flow.Record) {
		r.SrcMAC, r.DstMAC = [6]byte{0xa}, [6]byte{0xb}
		r.SrcIP, r.DstIP = ip("192.0.2.1"), ip("192.0.2.2")
		r.SrcPort, r.DstPort = 1000, 80
		r.SrcAS, r.DstAS = 1, 2
		r.SrcMask, r.DstMask = 32, 24
	})
	ba := rec(func(r *flow.Record) {
		r.SrcMAC, r.DstMAC = [6]byte{0xb}, [6]byte{0xa}
		r.SrcIP, r.DstIP = ip("192.0.2.2"), ip("192.0.2.1")
		r.SrcPort, r.DstPort = 80, 1000
		r.SrcAS, r.DstAS = 2, 1
		r.SrcMask, r.DstMask = 24, 32
		r.Packets, r.Bytes = 2, 200
	})
	both := func(k1, k2 flow.Key) []Entry {
		return []Entry{{Key: k1, Packets: 3, Bytes: 300, Flows: 2}, {Key: k2, Packets: 3, Bytes: 300, Flows: 2}}
	}
	cases := []struct {
		aggr string
		want []Entry
	}{
		{"sum_host", both(flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.1")}}, flow.Key{Fixed: flow.Fixed{SrcIP: ip("192.0.2.2")}})},
		{"sum_net", both(flow.Key{Fixed: flow.Fixed{SrcNet: ip("192.0.2.1")}}, flow.Key{Fixed: flow.Fixed{SrcNet: ip("192.0.2.0")}})},
		{"sum_port", both(flow.Key{Fixed: flow.Fixed{SrcPort: 1000}}, flow.Key{Fixed: flow.Fixed{SrcPort: 80}})},
		{"sum_as", both(flow.Key{Fixed: flow.Fixed{SrcAS: 1}}, flow.Key{Fixed: flow.Fixed{SrcAS: 2}})},
		{"sum_mac", both(flow.Key{Fixed: flow.Fixed{SrcMAC: [6]byte{0xa}}}, flow.Key{Fixed: flow.Fixed{SrcMAC: [6]byte{0xb}}})},
	}
	for _, c := range cases {
		t.Run(c.aggr, func(t *testing.T) {
			cache := New(Configuration{Aggregate: aggregate(t, c.aggr)})
			cache.Add(ab)
			cache.Add(ba)
			if got := flush(cache); !slices.Equal(got, c.want) {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
	// A record to itself counts twice in one entry, as in pmacct.
	cache := New(Configuration{Aggregate: aggregate(t, "sum_host")})
	cache.Add(rec(func(r *flow.Record) { r.DstIP = r.SrcIP }))
	if got := flush(cache); len(got) != 1 || got[0].Packets != 2 || got[0].Flows != 2 {
		t.Errorf("self traffic: %+v", got)
	}
}

func TestBins(t *testing.T) {
	utc := time.UTC
	plus2 := time.FixedZone("UTC+2", 2*3600)
	at := func(loc *time.Location, s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04:05.999999", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	cases := []struct {
		name     string
		history  time.Duration
		roundoff string
		loc      *time.Location
		base     string // in loc
		now      string // in loc; "" = base
		stamp    string // flow start in loc; "" = none
		want     string // bin start in loc
	}{
		{"inside a bin", time.Minute, "", utc, "2024-01-01 10:00:30", "2024-01-01 10:20:00", "2024-01-01 10:05:01", "2024-01-01 10:05:00"},
		{"boundary, past: previous bin", time.Minute, "", utc, "2024-01-01 10:00:30", "2024-01-01 10:20:00", "2024-01-01 10:05:00", "2024-01-01 10:04:00"},
		{"boundary with usec: previous bin", time.Minute, "", utc, "2024-01-01 10:00:30", "2024-01-01 10:20:00", "2024-01-01 10:05:00.100", "2024-01-01 10:04:00"},
		{"boundary, current bin", time.Minute, "", utc, "2024-01-01 10:00:30", "2024-01-01 10:05:59", "2024-01-01 10:05:00", "2024-01-01 10:05:00"},
		{"boundary, clock on the next boundary", time.Minute, "", utc, "2024-01-01 10:00:30", "2024-01-01 10:06:00", "2024-01-01 10:05:00", "2024-01-01 10:05:00"},
		{"boundary, clock past the next boundary", time.Minute, "", utc, "2024-01-01 10:00:30", "2024-01-01 10:06:01", "2024-01-01 10:05:00", "2024-01-01 10:04:00"},
		{"boundary, future", time.Minute, "", utc, "2024-01-01 10:00:30", "", "2024-01-01 10:09:00", "2024-01-01 10:09:00"},
		{"before base", time.Minute, "", utc, "2024-01-01 10:00:30", "", "2024-01-01 09:58:30", "2024-01-01 09:58:00"},
		{"5m aligned to the start minute", 5 * time.Minute, "", utc, "2024-01-01 10:07:30", "", "2024-01-01 10:20:00", "2024-01-01 10:17:00"},
		{"5m aligned to the start minute, past", 5 * time.Minute, "", utc, "2024-01-01 10:07:30", "", "2024-01-01 10:03:10", "2024-01-01 10:02:00"},
		{"5m roundoff m", 5 * time.Minute, "m", utc, "2024-01-01 10:07:30", "", "2024-01-01 10:21:00", "2024-01-01 10:20:00"},
		{"5m roundoff m, boundary past", 5 * time.Minute, "m", utc, "2024-01-01 10:07:30", "", "2024-01-01 10:00:00", "2024-01-01 09:55:00"},
		{"5m roundoff m, boundary current", 5 * time.Minute, "m", utc, "2024-01-01 10:07:30", "", "2024-01-01 10:05:00", "2024-01-01 10:05:00"},
		{"1h roundoff h, local", time.Hour, "h", plus2, "2024-03-15 10:07:30", "", "2024-03-15 09:30:00", "2024-03-15 09:00:00"},
		{"1d roundoff d, local midnight", 24 * time.Hour, "d", plus2, "2024-03-15 10:07:30", "", "2024-03-14 23:59:59", "2024-03-14 00:00:00"},
		{"1d roundoff h", 24 * time.Hour, "h", plus2, "2024-03-15 10:07:30", "", "2024-03-15 00:00:01", "2024-03-15 00:00:00"},
		{"1w roundoff w: Sunday", 7 * 24 * time.Hour, "w", utc, "2024-03-13 10:07:30", "", "2024-03-12 08:00:00", "2024-03-10 00:00:00"},
		{"1w roundoff w, previous week", 7 * 24 * time.Hour, "w", utc, "2024-03-13 10:07:30", "", "2024-03-09 23:00:00", "2024-03-03 00:00:00"},
		{"1h roundoff M", time.Hour, "M", utc, "2024-03-13 10:07:30", "", "2024-03-13 10:59:59", "2024-03-13 10:00:00"},
		{"7h roundoff M: counted from Jan 1", 7 * time.Hour, "M", utc, "2024-01-02 10:07:30", "", "2024-01-02 10:00:00", "2024-01-02 04:00:00"},
		{"no timestamp: current bin", time.Minute, "", utc, "2024-01-01 10:00:30", "2024-01-01 10:12:10", "", "2024-01-01 10:12:00"},
		{"no timestamp, clock on a boundary", time.Minute, "", utc, "2024-01-01 10:00:30", "2024-01-01 10:12:00", "", "2024-01-01 10:11:00"},
		{"no timestamp, clock behind base", 5 * time.Minute, "m", utc, "2024-01-01 10:07:30", "2024-01-01 09:00:00", "", "2024-01-01 10:05:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := at(c.loc, c.base)
			now := base
			if c.now != "" {
				now = at(c.loc, c.now)
			}
			cache := New(Configuration{
				Aggregate: aggregate(t, "none"), History: History{Length: c.history}, HistoryRoundoff: c.roundoff,
				Location: c.loc, Base: base, Now: func() time.Time { return now },
			})
			r := rec()
			if c.stamp != "" {
				r.TimestampStart = at(c.loc, c.stamp).UnixMicro()
			}
			cache.Add(r)
			got := flush(cache)
			want := at(c.loc, c.want).Unix()
			if len(got) != 1 || got[0].Bin != want {
				t.Errorf("bins %+v, want %s (%d)", got, c.want, want)
			}
		})
	}
}

func TestBinsSplitAggregates(t *testing.T) {
	base := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	cfg := Configuration{Aggregate: aggregate(t, "src_host"), History: History{Length: time.Minute}, Base: base, Location: time.UTC,
		Now: func() time.Time { return base.Add(time.Hour) }}
	for _, timeNew := range []bool{false, true} {
		cfg.TimeNew = timeNew
		c := New(cfg)
		for i, offset := range []time.Duration{10 * time.Second, 30 * time.Second, 70 * time.Second} {
			c.Add(rec(func(r *flow.Record) {
				r.TimestampStart = base.Add(offset).UnixMicro()
				r.TimestampArrival = base.Add(time.Duration(i) * time.Minute).Add(time.Second).UnixMicro()
			}))
		}
		var got []int64
		for _, e := range flush(c) {
			got = append(got, e.Bin-base.Unix(), int64(e.Packets))
		}
		want := []int64{0, 2, 60, 1} // by flow start: 10:00 twice, 10:01 once
		if timeNew {
			want = []int64{0, 1, 60, 1, 120, 1} // by arrival: one a minute
		}
		if !slices.Equal(got, want) {
			t.Errorf("TimeNew %v: bin offset, packets %v, want %v", timeNew, got, want)
		}
	}
}

// The pipeline's history settings are read and checked by the cache's rules.
func TestParseHistoryAndRoundoff(t *testing.T) {
	for in, want := range map[string]History{"": {}, "30s": {Length: 30 * time.Second}, "5m": {Length: 5 * time.Minute},
		"1w": {Length: 7 * 24 * time.Hour}, "1M": {Months: 1}, "3M": {Months: 3}} {
		if d, err := ParseHistory(in); err != nil || d != want {
			t.Errorf("ParseHistory(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for in, want := range map[string]string{"0M": "not a bin length", "0m": "not a bin length", "m": "not a bin length", "5x": "not a bin length"} {
		if _, err := ParseHistory(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHistory(%q): %v, want %q", in, err, want)
		}
	}
	for _, ok := range []string{"", "m", "h", "d", "w", "M", "mh", "mhd"} {
		if err := CheckRoundoff(ok); err != nil {
			t.Errorf("CheckRoundoff(%q): %v", ok, err)
		}
	}
	if err := CheckRoundoff("mx"); err == nil || !strings.Contains(err.Error(), `unknown roundoff "mx"`) {
		t.Errorf("CheckRoundoff(mx): %v", err)
	}
}

// TestConcurrent adds from several goroutines while flushing and checks that
// every counter comes out exactly once.
func TestConcurrent(t *testing.T) {
	c := New(Configuration{Aggregate: aggregate(t, "src_host", "dst_port")})
	const workers, perWorker = 4, 5000
	var mu sync.Mutex
	var packets, flows uint64
	var entries uint64
	collect := func(e *Entry) {
		mu.Lock()
		packets += e.Packets
		flows += e.Flows
		entries++
		mu.Unlock()
	}
	done := make(chan struct{})
	var flusher sync.WaitGroup
	flusher.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				c.Flush(collect)
				_ = c.Stats()
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				c.Add(rec(func(r *flow.Record) {
					r.DstPort = uint16(i % 300)
					r.SrcIP = netip.AddrFrom4([4]byte{10, 0, 0, byte(w)})
					r.Packets = 2
				}))
			}
		})
	}
	wg.Wait()
	close(done)
	flusher.Wait()
	c.Flush(collect)
	if packets != 2*workers*perWorker || flows != workers*perWorker {
		t.Errorf("packets %d, flows %d; want %d, %d", packets, flows, 2*workers*perWorker, workers*perWorker)
	}
	s := c.Stats()
	if s.Records != workers*perWorker || s.Flushed != entries || s.Entries != 0 || s.Flushes < 2 {
		t.Errorf("stats %+v, %d entries seen", s, entries)
	}
}

// TestGrowAndShrink pushes the table through growth, a shrink after a quiet
// interval, and growth again, checking every sum each time.
func TestGrowAndShrink(t *testing.T) {
	c := New(Configuration{Aggregate: aggregate(t, "src_host", "src_port")})
	for _, n := range []int{50000, 100, 20000, 3} {
		for round := range 2 {
			for i := range n {
				c.Add(rec(func(r *flow.Record) {
					r.SrcIP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
					r.SrcPort = uint16(i)
					r.Packets = uint64(round + 1)
				}))
			}
		}
		got := flush(c)
		if len(got) != n {
			t.Fatalf("%d entries, want %d", len(got), n)
		}
		for i, e := range got {
			wantIP := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if e.SrcIP != wantIP || e.SrcPort != uint16(i) || e.Packets != 3 || e.Flows != 2 {
				t.Fatalf("entry %d: %+v", i, e)
			}
		}
	}
	if len(c.spare.slots) > 4*minSlots && len(c.cur.slots) > 4*minSlots {
		t.Errorf("tables kept %d and %d slots after small intervals", len(c.cur.slots), len(c.spare.slots))
	}
}

func TestAllocs(t *testing.T) {
	f, err := filter.Compile("ip")
	if err != nil {
		t.Fatal(err)
	}
	nets, err := networks.Parse(strings.NewReader("192.0.2.0/24\n198.51.100.0/24\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	c := New(Configuration{
		Aggregate: aggregate(t, "src_net", "dst_net", "src_host", "dst_host", "src_port", "dst_port", "proto", "peer_src_ip"),
		History:   History{Length: time.Minute}, Filter: f, Networks: nets, Renormalize: true,
	})
	r := rec(func(r *flow.Record) { r.TimestampStart = time.Now().UnixMicro(); r.SamplingRate = 10 })
	c.Add(r)
	if n := testing.AllocsPerRun(1000, func() { c.Add(r) }); n != 0 {
		t.Errorf("Add on an existing entry: %v allocations", n)
	}
	i := 0
	n := testing.AllocsPerRun(20000, func() {
		i++
		r.SrcPort = uint16(i)
		r.SrcIP = netip.AddrFrom4([4]byte{192, 0, 2, byte(i >> 16)})
		c.Add(r)
	})
	if n > 0.01 {
		t.Errorf("Add of new entries: %v allocations each", n)
	}
}

// An aggregate of events only says so (its document has no counters); one
// traffic record among them makes it traffic, whose counters are written.
func TestEvents(t *testing.T) {
	c := New(Configuration{Aggregate: aggregate(t, "dst_host")})
	event := func(r *flow.Record) { r.Event = true }
	c.Add(rec(event))
	c.Add(rec(event))
	c.Add(rec(event, func(r *flow.Record) { r.DstIP = ip("198.51.100.2") }))
	c.Add(rec(func(r *flow.Record) { r.DstIP = ip("198.51.100.2") }))
	want := []Entry{
		{Key: flow.Key{Fixed: flow.Fixed{DstIP: ip("198.51.100.1")}}, Events: true, Packets: 2, Bytes: 200, Flows: 2},
		{Key: flow.Key{Fixed: flow.Fixed{DstIP: ip("198.51.100.2")}}, Packets: 2, Bytes: 200, Flows: 2},
	}
	if got := flush(c); !slices.Equal(got, want) {
		t.Errorf("entries %+v, want %+v", got, want)
	}
}

// fakeGeo knows one address; it counts its lookups.
type fakeGeo struct {
	gen     uint64
	lookups int
}

func (g *fakeGeo) Locate(a netip.Addr) flow.Location {
	g.lookups++
	if a == ip("192.0.2.1") {
		return flow.Location{Country: [3]byte{'G', 'B'}, Coords: flow.Coords{Lat: 51.5, Lon: float64(g.gen)}}
	}
	return flow.Location{}
}

func (g *fakeGeo) Generation() uint64 { return g.gen }

// The GeoIP primitives key aggregates; a scratch remembers locations until
// the database is reloaded.
func TestGeo(t *testing.T) {
	g := &fakeGeo{}
	c := New(Configuration{Aggregate: aggregate(t, "src_host_country", "src_host_coords"), Geo: g})
	var s Scratch
	c.AddWith(rec(), &s)
	c.AddWith(rec(), &s)
	c.AddWith(rec(func(r *flow.Record) { r.SrcIP = ip("198.51.100.9") }), &s)
	if g.lookups != 2 {
		t.Errorf("%d lookups, want 2 (one per address)", g.lookups)
	}
	g.gen++ // a reload
	c.AddWith(rec(), &s)
	if g.lookups != 3 {
		t.Errorf("%d lookups after a reload, want 3", g.lookups)
	}
	got := flush(c)
	want := []Entry{
		{Key: flow.Key{Fixed: flow.Fixed{SrcCountry: [3]byte{'G', 'B'}, SrcCoords: flow.Coords{Lat: 51.5}}}, Packets: 2, Bytes: 200, Flows: 2},
		{Key: flow.Key{}, Packets: 1, Bytes: 100, Flows: 1},
		{Key: flow.Key{Fixed: flow.Fixed{SrcCountry: [3]byte{'G', 'B'}, SrcCoords: flow.Coords{Lat: 51.5, Lon: 1}}}, Packets: 1, Bytes: 100, Flows: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries %+v, want %+v", got, want)
	}
}

// Month bins start on the 1st at midnight, in the pipeline's zone, months
// apart from the current month's; a time exactly on a bin's start belongs
// to the bin before, as in pmacct (the spec's E6); the offset moves them
// earlier.
func TestMonthBins(t *testing.T) {
	loc := time.FixedZone("x", 3600)
	base := time.Date(2026, 12, 7, 21, 54, 3, 0, loc)
	at := func(s string) int64 {
		tm, err := time.ParseInLocation(time.DateTime, s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Unix()
	}
	for _, tt := range []struct {
		months int
		offset time.Duration
		in     []string
		want   []string
	}{
		{1, 0,
			[]string{"2026-12-02 10:00:00", "2027-01-01 00:00:00", "2027-01-01 00:00:01", "2027-02-01 00:00:00", "2027-03-15 12:00:00", "2028-02-29 23:59:59", "2025-06-30 10:00:00"},
			[]string{"2026-12-01 00:00:00", "2026-12-01 00:00:00", "2027-01-01 00:00:00", "2027-01-01 00:00:00", "2027-03-01 00:00:00", "2028-02-01 00:00:00", "2025-06-01 00:00:00"}},
		{2, 0,
			[]string{"2026-12-02 10:00:00", "2027-01-31 10:00:00", "2027-02-01 00:00:01", "2028-02-29 23:59:59"},
			[]string{"2026-12-01 00:00:00", "2026-12-01 00:00:00", "2027-02-01 00:00:00", "2028-02-01 00:00:00"}},
		{1, time.Hour,
			[]string{"2026-12-31 22:59:59", "2026-12-31 23:00:01"},
			[]string{"2026-11-30 23:00:00", "2026-12-31 23:00:00"}},
	} {
		c := New(Configuration{Aggregate: aggregate(t, "none"), History: History{Months: tt.months}, HistoryOffset: tt.offset, Base: base, Location: loc})
		for i, in := range tt.in {
			r := rec(func(r *flow.Record) { r.TimestampStart = at(in) * 1e6 })
			if got := time.Unix(c.bin(r), 0).In(loc).Format(time.DateTime); got != tt.want[i] {
				t.Errorf("%dM offset %v: %s in the bin of %s, want %s", tt.months, tt.offset, in, got, tt.want[i])
			}
		}
	}
}

// A cache that reaches MaxEntries signals Full once, and keeps the records
// that come meanwhile; after a flush it signals again.
func TestFull(t *testing.T) {
	c := New(Configuration{Aggregate: aggregate(t, "src_port"), MaxEntries: 3})
	var s Scratch
	add := func(port uint16) { c.AddWith(rec(func(r *flow.Record) { r.SrcPort = port }), &s) }
	for _, p := range []uint16{1, 2, 2} {
		add(p)
	}
	select {
	case <-c.Full():
		t.Fatal("full at 2 entries")
	default:
	}
	add(3)
	add(4) // kept
	select {
	case <-c.Full():
	default:
		t.Fatal("not full at 3 entries")
	}
	if n := len(flush(c)); n != 4 {
		t.Errorf("%d entries flushed, want 4", n)
	}
	for p := range uint16(3) {
		add(10 + p)
	}
	select {
	case <-c.Full():
	default:
		t.Fatal("not full again after a flush")
	}
	if st := c.Stats(); st.Full != 2 {
		t.Errorf("Full = %d, want 2", st.Full)
	}
}

// post_tag and post_tag2 override the tags, after the tag filters saw them.
func TestPostTag(t *testing.T) {
	f, err := pretag.ParseTagFilter("5")
	if err != nil {
		t.Fatal(err)
	}
	c := New(Configuration{Aggregate: aggregate(t, "tag", "tag2"), Tags: pretag.Filters{Tag: f}, PostTag: 77, PostTag2: 88})
	c.Add(rec(func(r *flow.Record) { r.Tag = 5 }))
	c.Add(rec(func(r *flow.Record) { r.Tag = 6 })) // filtered out
	want := []Entry{{Key: flow.Key{Fixed: flow.Fixed{Tag: 77, Tag2: 88}}, Packets: 1, Bytes: 100, Flows: 1}}
	if got := flush(c); !slices.Equal(got, want) {
		t.Errorf("entries %+v, want %+v", got, want)
	}
}

// net_source = "bgp": masks from the routes' prefixes, nets cut to them,
// peer_dst_ip the destination route's next hop; no route: mask 0, net
// 0.0.0.0 and no next hop, whatever the record carried.
func TestNetsFromBGP(t *testing.T) {
	c := New(Configuration{Aggregate: aggregate(t, "src_net", "src_mask", "dst_net", "dst_mask", "peer_dst_ip"), NetSource: SourceBGP})
	if !c.BGPNet() || c.BGPAS() {
		t.Fatal("BGPNet false, or BGPAS true")
	}
	c.Add(rec(func(r *flow.Record) {
		r.BGPSrcMask, r.BGPDstMask, r.BGPNextHop = 22, 20, ip("192.0.2.254")
	}))
	c.Add(rec(func(r *flow.Record) { r.DstIP = ip("203.0.113.7"); r.PeerDstIP = ip("10.1.1.1") }))
	got := flush(c)
	want := []flow.Key{
		{Fixed: flow.Fixed{SrcNet: ip("192.0.0.0"), SrcMask: 22, DstNet: ip("198.51.96.0"), DstMask: 20, PeerDstIP: ip("192.0.2.254")}},
		{Fixed: flow.Fixed{SrcNet: ip("0.0.0.0"), DstNet: ip("0.0.0.0")}},
	}
	if len(got) != 2 || got[0].Key != want[0] || got[1].Key != want[1] {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
