package bgp

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/routes/routestest"
)

// The cost of taking a table: each UPDATE parsed (GoBGP) and applied to a
// peer's Adj-RIB-In, per route, for a generated table of 100k IPv4 and
// 20k IPv6 prefixes (a twelfth of a full one, the same mix); and the live
// heap the table holds, per route (attribute sets and their labels
// included).
func BenchmarkLoad(b *testing.B) {
	t := routestest.Generate(7, 100_000, 20_000)
	var live uint64
	upstream := uint32(65000)
	for b.Loop() {
		var before, after runtime.MemStats
		b.StopTimer()
		upstream++ // new paths, new labels: as another peer's table
		wire, err := t.Updates(upstream, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"))
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		rib := routes.New()
		peer := rib.Peer(netip.MustParseAddr("192.0.2.1"))
		for m := wire; len(m) > 0; {
			n := int(binary.BigEndian.Uint16(m[16:18]))
			msg, err := bgp.ParseBGPMessage(m[:n])
			if err != nil {
				b.Fatal(err)
			}
			if u, ok := msg.Body.(*bgp.BGPUpdate); ok {
				ApplyUpdate(u, false, nil, sessionRoutes{peer: peer})
			}
			m = m[n:]
		}
		if peer.Len() != len(t.Routes) {
			b.Fatalf("%d routes, want %d", peer.Len(), len(t.Routes))
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		live = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(rib)
		b.StartTimer()
	}
	b.ReportMetric(float64(live)/float64(len(t.Routes)), "live-B/route")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(t.Routes)), "ns/route")
}

// The same with 8 peers loading into one RIB at once, as sessions do
// (their attribute sets and labels shared structures).
func BenchmarkLoadPeers(b *testing.B) {
	t := routestest.Generate(7, 100_000, 20_000)
	const peers = 8
	wires := make([][]byte, peers)
	upstream := uint32(66000)
	for b.Loop() {
		b.StopTimer()
		for i := range wires {
			upstream++
			var err error
			if wires[i], err = t.Updates(upstream, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		b.StartTimer()
		rib := routes.New()
		var wg sync.WaitGroup
		for i, wire := range wires {
			peer := rib.Peer(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}))
			wg.Go(func() {
				for m := wire; len(m) > 0; {
					n := int(binary.BigEndian.Uint16(m[16:18]))
					msg, err := bgp.ParseBGPMessage(m[:n])
					if err != nil {
						panic(err)
					}
					if u, ok := msg.Body.(*bgp.BGPUpdate); ok {
						ApplyUpdate(u, false, nil, sessionRoutes{peer: peer})
					}
					m = m[n:]
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*peers*len(t.Routes)), "ns/route")
}
