package engine

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/routes/routestest"
)

// BenchmarkBGPFill is the cost per record of the route lookups: both sides
// (as_path and src_as_path aggregated), in a peer's table of a million
// routes (200k IPv6), addresses inside its prefixes: uniform over 65536
// addresses (each lookup in another part of the table: the caches miss),
// and Zipf-distributed over them, as traffic repeats its destinations.
func BenchmarkBGPFill(b *testing.B) {
	tab := routestest.Generate(1, 1_000_000, 200_000)
	rib := routes.New()
	peer := netip.MustParseAddr("192.0.2.1")
	p := rib.Peer(peer)
	for _, r := range tab.Routes {
		p.Announce(r.Prefix, &tab.Attrs[r.Attrs])
	}
	l := &bgpLookup{rib: rib, dst: true, src: true}
	addrs := tab.Addrs(2, 1<<16)
	zipf := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 1, uint64(len(addrs)-1))
	order := map[string][]int{"uniform": make([]int, 1<<16), "zipf": make([]int, 1<<16)}
	for i := range order["uniform"] {
		order["uniform"][i], order["zipf"][i] = i, int(zipf.Uint64())
	}
	for _, name := range []string{"uniform", "zipf"} {
		b.Run(name, func(b *testing.B) {
			idx := order[name]
			var r flow.Record
			r.PeerSrcIP = peer
			i := 0
			for b.Loop() {
				r.SrcIP, r.DstIP = addrs[idx[i&(len(idx)-1)]], addrs[idx[(i+7)&(len(idx)-1)]]
				l.fill(&r)
				i++
			}
			if r.ASPath == 0 && r.LocalPref == 0 {
				b.Fatal("no route found")
			}
		})
	}
}
