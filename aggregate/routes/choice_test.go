package routes_test

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/gaissmai/bart"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/routes/routestest"
)

// The table behind each peer was chosen by these benchmarks, on a
// generated full table (FLOWDEX_BENCH_ROUTES IPv4 routes, a fifth as many
// IPv6; default 1,000,000): bart's Table, bart's Fast, and flowdex's own
// simplest, a map per prefix length tried from the longest.
//
//	go test ./aggregate/routes -run xxx -bench Choice -benchtime 1x   (load, bytes)
//	go test ./aggregate/routes -run xxx -bench Choice/lookup           (lookups)

// lpmTable is what a candidate offers.
type lpmTable interface {
	insert(netip.Prefix, *routes.Attrs)
	lookup(netip.Addr) (*routes.Attrs, bool)
}

type bartTable struct{ bart.Table[*routes.Attrs] }

func (t *bartTable) insert(p netip.Prefix, a *routes.Attrs)     { t.Insert(p, a) }
func (t *bartTable) lookup(ip netip.Addr) (*routes.Attrs, bool) { return t.Lookup(ip) }

type bartFast struct{ bart.Fast[*routes.Attrs] }

func (t *bartFast) insert(p netip.Prefix, a *routes.Attrs)     { t.Insert(p, a) }
func (t *bartFast) lookup(ip netip.Addr) (*routes.Attrs, bool) { return t.Lookup(ip) }

// lengthMaps is a map per prefix length and the lengths in use, longest
// first.
type lengthMaps struct {
	maps [129]map[netip.Prefix]*routes.Attrs
	used [2][]int // IPv4's, IPv6's
}

func (t *lengthMaps) insert(p netip.Prefix, a *routes.Attrs) {
	l := p.Bits()
	if t.maps[l] == nil {
		t.maps[l] = map[netip.Prefix]*routes.Attrs{}
	}
	t.maps[l][p] = a
	fam := 0
	if p.Addr().Is6() {
		fam = 1
	}
	for i, u := range t.used[fam] {
		if u == l {
			return
		}
		if u < l {
			t.used[fam] = append(t.used[fam][:i], append([]int{l}, t.used[fam][i:]...)...)
			return
		}
	}
	t.used[fam] = append(t.used[fam], l)
}

func (t *lengthMaps) lookup(ip netip.Addr) (*routes.Attrs, bool) {
	fam := 0
	if ip.Is6() {
		fam = 1
	}
	for _, l := range t.used[fam] {
		p, _ := ip.Prefix(l)
		if a, ok := t.maps[l][p]; ok {
			return a, true
		}
	}
	return nil, false
}

// ribPeer is flowdex's own: a routes.Peer, the table and its interned
// attribute sets as BGP sessions fill it and flows look it up (not in
// TestChoiceAgree: its attributes are interned copies).
type ribPeer struct{ *routes.Peer }

func newRIBPeer() lpmTable { return &ribPeer{routes.New().Peer(netip.MustParseAddr("192.0.2.1"))} }

func (t *ribPeer) insert(p netip.Prefix, a *routes.Attrs) { t.Announce(p, a) }
func (t *ribPeer) lookup(ip netip.Addr) (*routes.Attrs, bool) {
	r, ok := t.Lookup(ip)
	if !ok {
		return nil, false
	}
	return &r.Attrs, true
}

var candidates = []struct {
	name string
	make func() lpmTable
}{
	{"bart.Table", func() lpmTable { return &bartTable{} }},
	{"bart.Fast", func() lpmTable { return &bartFast{} }},
	{"lengthMaps", func() lpmTable { return &lengthMaps{} }},
}

func benchTable(b *testing.B) *routestest.Table {
	n := 1_000_000
	if s := os.Getenv("FLOWDEX_BENCH_ROUTES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	return routestest.Generate(1, n, n/5)
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func BenchmarkChoice(b *testing.B) {
	tab := benchTable(b)
	addrs := tab.Addrs(2, 1<<16)
	for _, c := range append(candidates, struct {
		name string
		make func() lpmTable
	}{"routes.Peer", newRIBPeer}) {
		b.Run(c.name+"/load", func(b *testing.B) {
			var t lpmTable
			var bytes uint64
			for b.Loop() {
				b.StopTimer()
				before := heap()
				b.StartTimer()
				t = c.make()
				for _, r := range tab.Routes {
					t.insert(r.Prefix, &tab.Attrs[r.Attrs])
				}
				b.StopTimer()
				bytes = heap() - before
				b.StartTimer()
			}
			runtime.KeepAlive(t)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(tab.Routes)), "ns/route")
			b.ReportMetric(float64(bytes)/float64(len(tab.Routes)), "bytes/route")
		})
		b.Run(c.name+"/lookup", func(b *testing.B) {
			t := c.make()
			for _, r := range tab.Routes {
				t.insert(r.Prefix, &tab.Attrs[r.Attrs])
			}
			i := 0
			for b.Loop() {
				if _, ok := t.lookup(addrs[i&(len(addrs)-1)]); !ok {
					b.Fatal(fmt.Sprint(addrs[i&(len(addrs)-1)], ": no route"))
				}
				i++
			}
		})
	}
}

// A lookup that also gives the route's prefix (net_source = "bgp") against
// one that does not, on routes.Peer.
func BenchmarkLookupNet(b *testing.B) {
	tab := benchTable(b)
	addrs := tab.Addrs(2, 1<<16)
	p := routes.New().Peer(netip.MustParseAddr("192.0.2.1"))
	for _, r := range tab.Routes {
		p.Announce(r.Prefix, &tab.Attrs[r.Attrs])
	}
	b.Run("Lookup", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok := p.Lookup(addrs[i&(len(addrs)-1)]); !ok {
				b.Fatal("no route")
			}
			i++
		}
	})
	b.Run("LookupNet", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, bits, ok := p.LookupNet(addrs[i&(len(addrs)-1)]); !ok || bits == 0 {
				b.Fatal("no route")
			}
			i++
		}
	})
}

// The candidates agree on every lookup.
func TestChoiceAgree(t *testing.T) {
	tab := routestest.Generate(3, 20000, 4000)
	tables := make([]lpmTable, len(candidates))
	for i, c := range candidates {
		tables[i] = c.make()
		for _, r := range tab.Routes {
			tables[i].insert(r.Prefix, &tab.Attrs[r.Attrs])
		}
	}
	for _, ip := range append(tab.Addrs(4, 20000), netip.MustParseAddr("240.0.0.1"), netip.MustParseAddr("3fff::1")) {
		want, wok := tables[0].lookup(ip)
		for i, tt := range tables[1:] {
			if got, ok := tt.lookup(ip); ok != wok || got != want {
				t.Fatalf("%s: %s says %v %v, %s %v %v", ip, candidates[0].name, want, wok, candidates[i+1].name, got, ok)
			}
		}
	}
}
