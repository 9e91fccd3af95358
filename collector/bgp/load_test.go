package bgp

import (
	"encoding/binary"
	"net/netip"
	"runtime"
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
				ApplyUpdate(u, false, nil, peer)
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
