package cache

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/filter"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/networks"
)

var benchAggregate = []string{"src_host", "dst_host", "src_port", "dst_port", "proto", "peer_src_ip", "in_iface", "out_iface"}

// benchRecord returns distinct records for distinct i.
func benchRecord(i int) *flow.Record {
	r := rec()
	r.SrcIP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	r.SrcPort = uint16(i)
	r.TimestampStart = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC).UnixMicro() + int64(i%60)*1e6
	r.SamplingRate = 10
	return r
}

func benchConfigs(b *testing.B) map[string]Configuration {
	f, err := filter.Compile("ip and not port 22")
	if err != nil {
		b.Fatal(err)
	}
	var lst strings.Builder
	for i := range 1000 {
		lst.WriteString("65000,10.")
		lst.WriteString(itoa(i % 256))
		lst.WriteString(".0.0/16\n")
	}
	nets, err := networks.Parse(strings.NewReader(lst.String()+"198.51.100.0/24\n"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	plain := Configuration{Aggregate: aggregate(b, benchAggregate...)}
	full := Configuration{
		Aggregate: aggregate(b, append([]string{"src_net", "dst_net", "src_as"}, benchAggregate...)...),
		History:   History{Length: time.Minute}, Base: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC),
		Filter: f, Networks: nets, Renormalize: true,
	}
	return map[string]Configuration{"plain": plain, "full": full, "sum_host": {Aggregate: aggregate(b, "sum_host")}}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// BenchmarkAddExisting adds records whose entries exist (1024 of them).
func BenchmarkAddExisting(b *testing.B) {
	for name, cfg := range benchConfigs(b) {
		b.Run(name, func(b *testing.B) {
			c := New(cfg)
			recs := make([]*flow.Record, 1024)
			for i := range recs {
				recs[i] = benchRecord(i)
				c.Add(recs[i])
			}
			var s Scratch // the engine keeps one per goroutine
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				c.AddWith(recs[i&1023], &s)
			}
		})
	}
}

// BenchmarkAddParallel is BenchmarkAddExisting from every CPU at once: the
// cost of sharing the lock.
func BenchmarkAddParallel(b *testing.B) {
	c := New(benchConfigs(b)["plain"])
	recs := make([]*flow.Record, 1024)
	for i := range recs {
		recs[i] = benchRecord(i)
		c.Add(recs[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var s Scratch
		for i := 0; pb.Next(); i++ {
			c.AddWith(recs[i&1023], &s)
		}
	})
}

// BenchmarkAddNew creates an entry per record; the cache is flushed, out of
// the timer, every million entries.
func BenchmarkAddNew(b *testing.B) {
	for name, cfg := range benchConfigs(b) {
		b.Run(name, func(b *testing.B) {
			c := New(cfg)
			r := benchRecord(0)
			var s Scratch
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i&(1<<20-1) == 1<<20-1 {
					b.StopTimer()
					c.Flush(func(*Entry) {})
					b.StartTimer()
				}
				r.SrcIP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				r.SrcPort = uint16(i >> 24)
				c.AddWith(r, &s)
			}
		})
	}
}

// BenchmarkFlush flushes 100k entries; ns/op is per entry.
func BenchmarkFlush(b *testing.B) {
	cfg := benchConfigs(b)["plain"]
	c := New(cfg)
	const n = 100000
	b.ReportAllocs()
	var sum uint64
	for b.Loop() {
		b.StopTimer()
		for i := range n {
			c.Add(benchRecord(i))
		}
		b.StartTimer()
		c.Flush(func(e *Entry) { sum += e.Packets })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
	if sum == 0 {
		b.Fatal("nothing flushed")
	}
}

// BenchmarkMemory reports the heap taken per entry with 100k entries, for the
// cache and, as a reference, for a Go map keyed by a flow.Key holding only
// the aggregated fields.
func BenchmarkMemory(b *testing.B) {
	const n = 100000
	recs := make([]*flow.Record, n)
	for i := range recs {
		recs[i] = benchRecord(i)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	b.Run("cache", func(b *testing.B) {
		var per float64
		for b.Loop() {
			before := heap()
			c := New(Configuration{Aggregate: aggregate(b, benchAggregate...), History: History{Length: time.Minute}})
			for _, r := range recs {
				c.Add(r)
			}
			per = float64(heap()-before) / n
			runtime.KeepAlive(c)
		}
		b.ReportMetric(per, "B/entry")
	})
	b.Run("gomap", func(b *testing.B) {
		type key struct {
			flow.Key
			_ int64 // the bin: counted in the size, as a cache key has it
		}
		var per float64
		for b.Loop() {
			before := heap()
			m := make(map[key]counters)
			for _, r := range recs {
				// the fields of benchAggregate
				k := key{Key: flow.Key{Fixed: flow.Fixed{SrcIP: r.SrcIP, DstIP: r.DstIP, SrcPort: r.SrcPort, DstPort: r.DstPort,
					Proto: r.Proto, PeerSrcIP: r.PeerSrcIP, InIface: r.InIface, OutIface: r.OutIface}}}
				c := m[k]
				c.packets += r.Packets
				m[k] = c
			}
			per = float64(heap()-before) / n
			runtime.KeepAlive(m)
		}
		b.ReportMetric(per, "B/entry")
	})
}
