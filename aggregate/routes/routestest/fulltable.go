// Package routestest generates full routing tables for the RIB's tests and
// benchmarks: prefixes with the length distribution of today's Internet
// tables (about 60% of IPv4 routes /24, about half of IPv6's /48) and path
// attributes shared as in real tables (a few hundred thousand distinct sets
// for a million prefixes, popular ones used often).
package routestest

import (
	"math/rand/v2"
	"net/netip"
	"strconv"

	"github.com/flowdex/flowdex/aggregate/routes"
)

// Route is a prefix and the index of its attributes in Table.Attrs.
type Route struct {
	Prefix netip.Prefix
	Attrs  int
}

// Table is a generated table.
type Table struct {
	Routes []Route
	Attrs  []routes.Attrs
}

// length weights, in per mille, of IPv4 and IPv6 prefix lengths
var (
	lengths4 = map[int]int{8: 1, 12: 2, 13: 2, 14: 4, 15: 8, 16: 20, 17: 13, 18: 20, 19: 30, 20: 50, 21: 50, 22: 120, 23: 100, 24: 580}
	lengths6 = map[int]int{29: 20, 32: 150, 33: 10, 34: 10, 35: 10, 36: 50, 40: 80, 44: 80, 45: 10, 46: 20, 47: 20, 48: 540}
)

// Generate returns a table of n4 IPv4 and n6 IPv6 prefixes, distinct, with
// about (n4+n6)/4 attribute sets; the same seed gives the same table.
func Generate(seed uint64, n4, n6 int) *Table {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	t := &Table{}
	asns := make([]uint32, 70000)
	for i := range asns {
		asns[i] = 1000 + uint32(rng.IntN(4_200_000_000-1000))
		if i < 60000 {
			asns[i] = 1000 + uint32(rng.IntN(400000)) // mostly 2- and small 4-byte ASNs
		}
	}
	nAttrs := max((n4+n6)/4, 1)
	zipf := rand.NewZipf(rand.New(rand.NewPCG(seed+1, seed)), 1.2, 8, uint64(len(asns)-1))
	for i := range nAttrs {
		path := make([]uint32, 1+rng.IntN(7))
		for j := range path {
			path[j] = asns[zipf.Uint64()]
		}
		a := routes.Attrs{ASPath: routes.PathText(path), LocalPref: 100, MED: uint32(rng.IntN(4) * 10),
			NextHop: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%8)}), PeerAS: path[0], OriginAS: path[len(path)-1]}
		cs := make([]uint32, rng.IntN(5))
		for j := range cs {
			cs[j] = uint32(rng.IntN(65536))<<16 | uint32(rng.IntN(1000))
		}
		a.StdComm = routes.CommunitiesText(cs)
		if rng.IntN(10) == 0 {
			a.LrgComm = "64500:1:" + strconv.Itoa(rng.IntN(10))
		}
		t.Attrs = append(t.Attrs, a)
	}
	pick := rand.NewZipf(rand.New(rand.NewPCG(seed+2, seed)), 1.1, 4, uint64(nAttrs-1))
	seen := make(map[netip.Prefix]bool, n4+n6)
	add := func(p netip.Prefix) {
		if !seen[p] {
			seen[p] = true
			t.Routes = append(t.Routes, Route{p, int(pick.Uint64())})
		}
	}
	for len(t.Routes) < n4 {
		var b [4]byte
		v := 0x01000000 + rng.Uint32N(0xdf000000-0x01000000) // 1.0.0.0 to 223.255.255.255
		b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		add(netip.PrefixFrom(netip.AddrFrom4(b), weighted(rng, lengths4)).Masked())
	}
	for len(t.Routes) < n4+n6 {
		var b [16]byte
		b[0], b[1] = 0x20, byte(rng.IntN(0x10)) // 2000::/12
		for i := 2; i < 8; i++ {
			b[i] = byte(rng.Uint32())
		}
		add(netip.PrefixFrom(netip.AddrFrom16(b), weighted(rng, lengths6)).Masked())
	}
	return t
}

func weighted(rng *rand.Rand, weights map[int]int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := rng.IntN(total)
	for l := 0; l <= 128; l++ {
		if n -= weights[l]; n < 0 {
			return l
		}
	}
	return 24
}

// Addrs returns n addresses inside the table's prefixes, for lookups.
func (t *Table) Addrs(seed uint64, n int) []netip.Addr {
	rng := rand.New(rand.NewPCG(seed, seed+7))
	out := make([]netip.Addr, n)
	for i := range out {
		p := t.Routes[rng.IntN(len(t.Routes))].Prefix
		b := p.Addr().AsSlice()
		for j := p.Bits() / 8; j < len(b); j++ {
			b[j] |= byte(rng.Uint32()) & (0xff >> max(0, p.Bits()-8*j))
		}
		a, _ := netip.AddrFromSlice(b)
		out[i] = a
	}
	return out
}
