package networks

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	tab, err := Load("testdata/networks.lst")
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Len(); got != 9 {
		t.Errorf("Len = %d, want 9", got)
	}
	cases := []struct {
		addr string
		want Entry
		ok   bool
	}{
		{"192.168.95.7", Entry{Prefix: pfx("192.168.95.0/24")}, true},
		{"192.168.94.127", Entry{Prefix: pfx("192.168.94.0/25")}, true},
		{"192.168.94.128", Entry{Prefix: pfx("192.168.94.128/25")}, true},
		{"192.168.1.1", Entry{Prefix: pfx("192.168.1.0/24"), AS: 65500}, true},
		{"192.168.2.1", Entry{Prefix: pfx("192.168.2.0/25"), AS: 65501, PeerAS: 64512}, true},
		{"192.168.2.200", Entry{Prefix: pfx("192.168.0.0/16")}, true},
		{"192.168.5.255", Entry{Prefix: pfx("192.168.4.0/23"), AS: 65502, NextHop: netip.MustParseAddr("10.0.0.3")}, true},
		{"192.169.0.0", Entry{}, false},
		{"2001:db8:1:2::1", Entry{Prefix: pfx("2001:db8:1::/48"), AS: 65510, PeerAS: 64512, NextHop: netip.MustParseAddr("2001:db8::1")}, true},
		{"2001:db8:2::1", Entry{Prefix: pfx("2001:db8::/32"), AS: 65511}, true},
		{"2001:db9::", Entry{}, false},
		{"::ffff:192.168.1.1", Entry{}, false}, // mapped: looked up among IPv6 prefixes
	}
	for _, c := range cases {
		got, ok := tab.Lookup(netip.MustParseAddr(c.addr))
		if ok != c.ok || got != c.want {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", c.addr, got, ok, c.want, c.ok)
		}
	}
	if _, ok := tab.Lookup(netip.Addr{}); ok {
		t.Error("Lookup(invalid address) matched")
	}
	var nilTable *Table
	if _, ok := nilTable.Lookup(netip.MustParseAddr("192.168.1.1")); ok {
		t.Error("nil table matched")
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load("testdata/does-not-exist.lst")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.lst") {
		t.Fatalf("err = %v, want one naming the file", err)
	}
}

func TestParseLines(t *testing.T) {
	cases := []struct {
		name, line string
		want       Entry
	}{
		{"prefix", "192.0.2.0/24", Entry{Prefix: pfx("192.0.2.0/24")}},
		{"host bits cleared", "192.0.2.77/24", Entry{Prefix: pfx("192.0.2.0/24")}},
		{"origin", "65000,192.0.2.0/24", Entry{Prefix: pfx("192.0.2.0/24"), AS: 65000}},
		{"peer and origin", "64496_65000,192.0.2.0/24", Entry{Prefix: pfx("192.0.2.0/24"), AS: 65000, PeerAS: 64496}},
		{"next hop", "198.51.100.1,65000,192.0.2.0/24", Entry{Prefix: pfx("192.0.2.0/24"), AS: 65000, NextHop: netip.MustParseAddr("198.51.100.1")}},
		{"next hop without AS", "198.51.100.1,,192.0.2.0/24", Entry{Prefix: pfx("192.0.2.0/24"), NextHop: netip.MustParseAddr("198.51.100.1")}},
		{"label ignored", "label,198.51.100.1,7,192.0.2.0/24", Entry{Prefix: pfx("192.0.2.0/24"), AS: 7, NextHop: netip.MustParseAddr("198.51.100.1")}},
		{"spaces anywhere", " 64496 _ 65000 , 192.0.2.0 / 24 \t", Entry{Prefix: pfx("192.0.2.0/24"), AS: 65000, PeerAS: 64496}},
		{"32-bit AS", "4294967295,192.0.2.0/24", Entry{Prefix: pfx("192.0.2.0/24"), AS: 4294967295}},
		{"ipv6", "2001:db8::1,1_2,2001:db8:a::/64", Entry{Prefix: pfx("2001:db8:a::/64"), AS: 2, PeerAS: 1, NextHop: netip.MustParseAddr("2001:db8::1")}},
		{"default v4", "0.0.0.0/0", Entry{Prefix: pfx("0.0.0.0/0")}},
		{"host v6", "2001:db8::1/128", Entry{Prefix: pfx("2001:db8::1/128")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(c.line+"\n"), "x")
			if err != nil {
				t.Fatal(err)
			}
			got, ok := tab.Lookup(c.want.Prefix.Addr())
			if !ok || got != c.want {
				t.Errorf("got %+v, %v; want %+v", got, ok, c.want)
			}
		})
	}
}

func TestParseComments(t *testing.T) {
	in := "! comment\n# comment\n   ! indented comment\n\n \t \n192.0.2.0/24\n"
	tab, err := Parse(strings.NewReader(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != 1 {
		t.Errorf("Len = %d, want 1", tab.Len())
	}
	empty, err := Parse(strings.NewReader("! nothing\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Lookup(netip.MustParseAddr("192.0.2.1")); ok || empty.Len() != 0 {
		t.Error("empty table matched")
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, line, want string
	}{
		{"no length", "192.0.2.0", "missing /len"},
		{"v4 length", "192.0.2.0/33", "prefix length from 0 to 32"},
		{"v6 length", "2001:db8::/129", "prefix length from 0 to 128"},
		{"length not a number", "192.0.2.0/2x", "prefix length"},
		{"address", "192.0.2/24", "network address"},
		{"AS", "AS65000,192.0.2.0/24", "origin AS"},
		{"AS too big", "4294967296,192.0.2.0/24", "origin AS"},
		{"peer AS", "x_1,192.0.2.0/24", "peer AS"},
		{"next hop", "bogus,1,192.0.2.0/24", "next hop"},
		{"too many fields", "a,b,c,d,192.0.2.0/24", "5 comma-separated fields, expected [nexthop,]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader("! first\n"+c.line+"\n"), "nets.lst")
			if err == nil {
				t.Fatalf("no error for %q", c.line)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "nets.lst:2: ") || !strings.Contains(msg, c.want) {
				t.Errorf("error %q: want prefix %q and %q", msg, "nets.lst:2: ", c.want)
			}
		})
	}
}

func TestDuplicateLastWins(t *testing.T) {
	tab, err := Parse(strings.NewReader("1,192.0.2.0/24\n192.0.2.0/16\n2,192.0.2.0/24\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := tab.Lookup(netip.MustParseAddr("192.0.2.9")); e.AS != 2 {
		t.Errorf("AS = %d, want 2 (last line)", e.AS)
	}
	if tab.Len() != 2 {
		t.Errorf("Len = %d, want 2", tab.Len())
	}
}

func TestEdges(t *testing.T) {
	tab, err := Parse(strings.NewReader(strings.Join([]string{
		"1,0.0.0.0/0", "2,255.255.255.255/32", "3,0.0.0.0/32", "4,10.0.0.0/8", "5,10.0.0.0/16", "6,10.0.255.255/32",
		"7,::/0", "8,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "9,2001:db8::/64", "10,2001:db8::ffff:ffff:ffff:ffff/128",
		"11,2001:db8:0:0:8000::/65",
	}, "\n")), "x")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		addr string
		as   uint32
	}{
		{"0.0.0.0", 3}, {"0.0.0.1", 1}, {"255.255.255.255", 2}, {"255.255.255.254", 1},
		{"10.0.0.0", 5}, {"10.0.255.254", 5}, {"10.0.255.255", 6}, {"10.1.0.0", 4}, {"10.255.255.255", 4}, {"11.0.0.0", 1},
		{"::", 7}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 8}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 7},
		{"2001:db8::", 9}, {"2001:db8::7fff:ffff:ffff:ffff", 9}, {"2001:db8::8000:0:0:0", 11},
		{"2001:db8::ffff:ffff:ffff:fffe", 11}, {"2001:db8::ffff:ffff:ffff:ffff", 10}, {"2001:db8:0:1::", 7},
	}
	for _, c := range cases {
		e, ok := tab.Lookup(netip.MustParseAddr(c.addr))
		if !ok || e.AS != c.as {
			t.Errorf("Lookup(%s) = AS %d, %v; want AS %d", c.addr, e.AS, ok, c.as)
		}
	}
}

// TestAgainstLinearScan compares Lookup with a brute-force longest match on
// random, heavily nested prefixes.
func TestAgainstLinearScan(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		r := rand.New(rand.NewPCG(1, 2))
		entries := randomEntries(r, 3000, v6, true)
		var b strings.Builder
		for _, e := range entries {
			fmt.Fprintf(&b, "%d,%s\n", e.AS, e.Prefix)
		}
		tab, err := Parse(strings.NewReader(b.String()), "random")
		if err != nil {
			t.Fatal(err)
		}
		want := func(a netip.Addr) (Entry, bool) {
			best, found := Entry{}, false
			for _, e := range entries { // later duplicates win
				if e.Prefix.Contains(a) && (!found || e.Prefix.Bits() >= best.Prefix.Bits()) {
					best, found = e, true
				}
			}
			return best, found
		}
		for range 8000 {
			a := randomAddr(r, v6, true)
			got, ok := tab.Lookup(a)
			w, wok := want(a)
			if ok != wok || got != w {
				t.Fatalf("v6=%v Lookup(%s) = %+v, %v; want %+v, %v", v6, a, got, ok, w, wok)
			}
		}
	}
}

// TestTopIndex checks that the top index of large tables answers as the plain
// search does.
func TestTopIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	entries := randomEntries(r, 50000, false, false)
	for _, e := range randomEntries(r, 50000, true, false) {
		e.Prefix = netip.PrefixFrom(e.Prefix.Addr(), e.Prefix.Bits()/2).Masked() // nest more
		entries = append(entries, e)
	}
	tab := build(entries)
	if tab.v4top == nil || tab.v6top == nil {
		t.Fatalf("no index for %d/%d ranges", len(tab.v4.starts), len(tab.v6.starts))
	}
	plain := *tab
	plain.v4top, plain.v6top = nil, nil
	for i := range 200000 {
		v6 := i%3 == 0
		a := randomAddr(r, v6, false)
		if i%2 == 0 { // inside a prefix, or near its edges
			p := tab.entries[r.IntN(len(tab.entries))].Prefix
			a = edgeAddr(r, p)
		}
		got, ok := tab.Lookup(a)
		want, wok := plain.Lookup(a)
		if got != want || ok != wok {
			t.Fatalf("Lookup(%s) = %+v, %v; without index %+v, %v", a, got, ok, want, wok)
		}
	}
}

func edgeAddr(r *rand.Rand, p netip.Prefix) netip.Addr {
	a := p.Addr()
	switch r.IntN(4) {
	case 0:
		return a.Prev()
	case 1:
		return a
	case 2:
		return randomIn(r, p)
	default:
		// Last address of the prefix, or the one after it.
		b := a.As16()
		m := hostMask(p.Bits(), a.BitLen())
		for i := range 8 {
			b[15-i] |= byte(m.lo >> (8 * i))
			b[7-i] |= byte(m.hi >> (8 * i))
		}
		last := netip.AddrFrom16(b)
		if a.Is4() {
			last = last.Unmap()
		}
		if r.IntN(2) == 0 && last.Next().IsValid() {
			return last.Next()
		}
		return last
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		for _, n := range []int{1000, 100000} {
			r := rand.New(rand.NewPCG(3, 4))
			tab := build(randomEntries(r, n, v6, false))
			addrs := make([]netip.Addr, 4096)
			for i := range addrs {
				addrs[i] = randomAddr(r, v6, false)
				if i%4 != 0 { // three in four inside some prefix of the table
					p := tab.entries[r.IntN(len(tab.entries))].Prefix
					addrs[i] = randomIn(r, p)
				}
			}
			fam := "v4"
			if v6 {
				fam = "v6"
			}
			b.Run(fmt.Sprintf("%s/%d", fam, n), func(b *testing.B) {
				b.ReportAllocs()
				hits := 0
				for i := 0; b.Loop(); i++ {
					if _, ok := tab.Lookup(addrs[i&4095]); ok {
						hits++
					}
				}
				b.ReportMetric(float64(hits)/float64(b.N), "hits/op")
			})
		}
	}
}

// randomEntries draws prefixes; narrow concentrates them in a small space so
// that they nest deeply, otherwise they spread like a routing table (/8-/32 or
// /16-/64 with a bias towards /24 and /48).
func randomEntries(r *rand.Rand, n int, v6, narrow bool) []Entry {
	out := make([]Entry, n)
	for i := range out {
		a := randomAddr(r, v6, narrow)
		var bits int
		switch {
		case !v6 && narrow:
			bits = 16 + r.IntN(17)
		case v6 && narrow:
			bits = 100 + r.IntN(29)
		case !v6:
			bits = []int{8, 12, 16, 20, 22, 23, 24, 24, 24, 24, 28, 32}[r.IntN(12)]
		default:
			bits = []int{16, 29, 32, 36, 40, 44, 48, 48, 48, 56, 64, 128}[r.IntN(12)]
		}
		out[i] = Entry{Prefix: netip.PrefixFrom(a, bits).Masked(), AS: uint32(i + 1)}
	}
	return out
}

func randomAddr(r *rand.Rand, v6, narrow bool) netip.Addr {
	if !v6 {
		x := r.Uint32()
		if narrow {
			x = 10<<24 | x&0xffff
		}
		return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if narrow {
		copy(b[:14], []byte{0x20, 0x01, 0x0d, 0xb8})
		for i := 4; i < 14; i++ {
			b[i] = 0
		}
	}
	return netip.AddrFrom16(b)
}

func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	m := hostMask(p.Bits(), p.Addr().BitLen())
	x := [2]uint64{r.Uint64() & m.hi, r.Uint64() & m.lo}
	for i := range 8 {
		b[15-i] |= byte(x[1] >> (8 * i))
		b[7-i] |= byte(x[0] >> (8 * i))
	}
	if p.Addr().Is4() {
		return netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrFrom16(b)
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
