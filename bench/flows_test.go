package bench

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/cache"
	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/datagram"
	"github.com/flowdex/flowdex/collector/netflow"
)

// exported is a datagram kept in memory.
type exported struct {
	payload  []byte
	exporter netip.Addr
	received time.Time
}

// loadExports reads pcaps of exported datagrams: pmacct's regression captures
// (Cisco IOS XR NetFlow v9 and IPFIX) and softflowd's exports of flowdex's tests.
func loadExports(b *testing.B) []exported {
	b.Helper()
	var out []exported
	for _, p := range []string{
		"../../shared/pmacct-tests/110-IPFIXv10-NFv9-multiple-sources/traffic-00.pcap",
		"../../shared/pmacct-tests/110-IPFIXv10-NFv9-multiple-sources/traffic-01.pcap",
		"../../shared/pmacct-tests/110-IPFIXv10-NFv9-multiple-sources/traffic-02.pcap",
		"../collector/netflow/testdata/softflowd-ipfix.pcap",
		"../collector/netflow/testdata/softflowd-v9.pcap",
	} {
		_, err := datagram.Replay(context.Background(), p, 0, func(d *datagram.Datagram) {
			out = append(out, exported{append([]byte(nil), d.Payload...), d.Source.Addr(), d.Received})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// The collector's path for one NetFlow v9/IPFIX record: decode, convert to the
// record, aggregate on a 5-tuple with interfaces and tcp flags, 1-minute bins.
func BenchmarkFlowDecodeAggregate(b *testing.B) {
	exports := loadExports(b)
	dec, err := netflow.New(netflow.DefaultConfiguration(), nil)
	if err != nil {
		b.Fatal(err)
	}
	agg, _ := flow.ParseAggregate([]string{"peer_src_ip", "src_host", "dst_host", "src_port", "dst_port", "proto", "tos", "in_iface", "out_iface", "tcpflags"})
	c := cache.New(cache.Configuration{Aggregate: agg, History: cache.History{Length: time.Minute}, TimeNew: true})
	records := 0
	var s cache.Scratch // the engine keeps one per goroutine
	add := func(r *flow.Record) { records++; c.AddWith(r, &s) }
	for _, e := range exports { // templates first, so that every pass decodes everything
		_ = dec.Decode(e.payload, e.exporter, e.received, add)
	}
	records = 0
	b.ReportAllocs()
	b.ResetTimer()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for b.Loop() {
		for _, e := range exports {
			_ = dec.Decode(e.payload, e.exporter, e.received, add)
		}
	}
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(records), "allocs/record")
}

// Bytes an aggregate entry holds in the cache: 200k distinct 5-tuples.
func BenchmarkFlowCacheBytesPerEntry(b *testing.B) {
	agg, _ := flow.ParseAggregate([]string{"src_host", "dst_host", "src_port", "dst_port", "proto"})
	const n = 200_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := cache.New(cache.Configuration{Aggregate: agg})
		var s cache.Scratch
		r := flow.Record{Packets: 1, Bytes: 100}
		r.Proto = 6
		for i := range n {
			r.SrcIP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			r.DstIP = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
			r.SrcPort, r.DstPort = uint16(i), 443
			c.AddWith(&r, &s)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		runtime.KeepAlive(c)
	}
}

// Flushing: each aggregate becomes pmacct's JSON document.
func BenchmarkFlowFlushDocument(b *testing.B) {
	agg, _ := flow.ParseAggregate([]string{"src_host", "dst_host", "src_port", "dst_port", "proto", "tcpflags"})
	c := cache.New(cache.Configuration{Aggregate: agg, History: cache.History{Length: time.Minute}})
	f := flow.Format{UTC: true}
	var doc document.Document
	var out []byte
	entries := 0
	var s cache.Scratch
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r := flow.Record{Packets: 1, Bytes: 100, Key: flow.Key{Fixed: flow.Fixed{Proto: 6, TimestampArrival: 1704067200e6}}}
		for i := range 1000 {
			r.SrcIP = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
			r.DstIP = netip.AddrFrom4([4]byte{192, 0, 2, 1})
			c.AddWith(&r, &s)
		}
		b.StartTimer()
		c.Flush(func(e *cache.Entry) {
			entries++
			f.Document(&doc, agg, &e.Key, flow.Counters{TCPFlags: e.TCPFlags, Packets: e.Packets, Bytes: e.Bytes}, flow.Stamps{Inserted: e.Bin, Updated: 1704067260})
			out = doc.AppendJSON(out[:0], document.Compact)
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(entries), "ns/entry")
}
