package engine

import (
	"net/netip"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/routes/routestest"
)

// BenchmarkBGPFill is the cost per record of the route lookups: both sides
// (as_path and src_as_path aggregated), in a peer's table of a million
// routes (200k IPv6), addresses inside its prefixes, random.
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
	var r flow.Record
	r.PeerSrcIP = peer
	b.ResetTimer()
	i := 0
	for b.Loop() {
		r.SrcIP, r.DstIP = addrs[i&(len(addrs)-1)], addrs[(i+7)&(len(addrs)-1)]
		l.fill(&r)
		i++
	}
	if r.ASPath == 0 && r.LocalPref == 0 {
		b.Fatal("no route found")
	}
}
