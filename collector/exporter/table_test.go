package exporter

import (
	"net/netip"
	"sync"
	"testing"
)

func addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}) }

// tracked reports whether a has an entry of its own.
func tracked(tb *Table, a netip.Addr) bool {
	found := false
	tb.Each(func(e *Entry) { found = found || e.Addr == a })
	return found
}

// datagrams sums the datagrams of the entries Each gives.
func datagrams(tb *Table) uint64 {
	var n uint64
	tb.Each(func(e *Entry) { n += e.Datagrams.Load() })
	return n
}

// Past the bound newcomers share Other; each entry is its exporter's.
func TestTableBound(t *testing.T) {
	tb := NewTable(3)
	for i := range 10 {
		tb.Get(addr(i)).Datagrams.Add(1)
	}
	tb.Get(addr(0)).Datagrams.Add(1)
	if tb.Len() != 3 || !tracked(tb, addr(2)) || tracked(tb, addr(3)) {
		t.Errorf("len %d, tracked 2: %v, 3: %v", tb.Len(), tracked(tb, addr(2)), tracked(tb, addr(3)))
	}
	named, other := 0, uint64(0)
	tb.Each(func(e *Entry) {
		if e.Addr.IsValid() {
			named++
			if e.Addr == addr(0) && e.Datagrams.Load() != 2 {
				t.Errorf("exporter 0: %d datagrams, want 2", e.Datagrams.Load())
			}
		} else {
			other = e.Datagrams.Load()
		}
	})
	if named != 3 || other != 7 {
		t.Errorf("%d named, other %d; want 3 and 7", named, other)
	}
	if tb.Get(netip.MustParseAddr("::ffff:198.51.0.1")) != tb.Get(addr(1)) {
		t.Error("an IPv4-mapped address has an entry of its own")
	}
}

// A full table makes room for an exporter with something to keep by
// evicting one that keeps nothing; when every entry keeps something, Keep
// keeps nothing.
func TestTableKeepEvicts(t *testing.T) {
	tb := NewTable(2)
	tb.Get(addr(0)).Datagrams.Add(5)
	if s := tb.Keep(addr(1), func(*Entry) any { return "one" }); s != "one" {
		t.Fatalf("Keep: %v", s)
	}
	if s := tb.Keep(addr(1), func(*Entry) any { return "again" }); s != "one" || tb.Get(addr(1)).State() != "one" {
		t.Fatalf("Keep made the state twice: %v", s)
	}
	if tb.Get(addr(2)) != tb.Other() {
		t.Fatal("a third exporter has an entry in a table of 2")
	}
	// addr(0) keeps nothing: it goes
	if s := tb.Keep(addr(2), func(*Entry) any { return "two" }); s != "two" || tracked(tb, addr(0)) || tb.Evicted() != 1 {
		t.Fatalf("eviction: %v, exporter 0 tracked %v, evicted %d", s, tracked(tb, addr(0)), tb.Evicted())
	}
	if tb.Other().Datagrams.Load() != 5 || datagrams(tb) != 5 {
		t.Errorf("the evicted exporter's 5 datagrams: Other has %d, the table %d", tb.Other().Datagrams.Load(), datagrams(tb))
	}
	if s := tb.Keep(addr(3), func(*Entry) any { return "three" }); s != nil {
		t.Fatalf("every entry keeps something, yet %v was kept", s)
	}
}

// Concurrent Get, Keep and Each count every datagram: with room for every
// exporter, in their own entries; in a table too small, the rest in Other.
func TestTableConcurrent(t *testing.T) {
	for _, max := range []int{256, 64} {
		tb := NewTable(max)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					tb.Get(addr(i)).Datagrams.Add(1)
					if max > 200 && i%3 == g%3 {
						tb.Keep(addr(i), func(*Entry) any { return i })
					}
				}
			})
		}
		wg.Go(func() {
			for range 50 {
				tb.Each(func(*Entry) {})
			}
		})
		wg.Wait()
		if want := min(max, 200); tb.Len() != want || datagrams(tb) != 8*200 {
			t.Errorf("table of %d: %d entries, %d datagrams counted; want %d and %d", max, tb.Len(), datagrams(tb), want, 8*200)
		}
	}
}
