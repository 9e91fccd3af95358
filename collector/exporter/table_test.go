package exporter

import (
	"net/netip"
	"sync"
	"testing"
)

func addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}) }

// Past the bound newcomers share Other; each entry is its exporter's.
func TestTableBound(t *testing.T) {
	tb := NewTable(3)
	for i := range 10 {
		tb.Get(addr(i)).Datagrams.Add(1)
	}
	tb.Get(addr(0)).Datagrams.Add(1)
	if tb.Len() != 3 || !tb.Tracked(addr(2)) || tb.Tracked(addr(3)) {
		t.Errorf("len %d, tracked 2: %v, 3: %v", tb.Len(), tb.Tracked(addr(2)), tb.Tracked(addr(3)))
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
	tb.Get(addr(0))
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
	if s := tb.Keep(addr(2), func(*Entry) any { return "two" }); s != "two" || tb.Tracked(addr(0)) || tb.Evicted() != 1 {
		t.Fatalf("eviction: %v, exporter 0 tracked %v, evicted %d", s, tb.Tracked(addr(0)), tb.Evicted())
	}
	if s := tb.Keep(addr(3), func(*Entry) any { return "three" }); s != nil {
		t.Fatalf("every entry keeps something, yet %v was kept", s)
	}
}

func TestTableConcurrent(t *testing.T) {
	tb := NewTable(64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				e := tb.Get(addr(i))
				e.Datagrams.Add(1)
				if i%3 == g%3 {
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
	var total uint64
	tb.Each(func(e *Entry) { total += e.Datagrams.Load() })
	if tb.Len() > 64 || total > 8*200 {
		t.Errorf("len %d, %d datagrams counted", tb.Len(), total)
	}
}
