package exporter

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowdex/flowdex/aggregate/ratelog"
)

// DefaultMax bounds a table: far above the exporters of a real network, and
// above what one router with many line cards (a domain each) shows.
const DefaultMax = 4096

// Table holds what an input keeps per exporter: the counters of its
// datagrams and records, a log limiter, and, once a decoder keeps something
// for the exporter (NetFlow templates, sampling rates), the decoder's state.
//
// Without an allow-list any source address is an exporter, and a spoofed
// flood must not grow the table (nor the metrics' label sets) without end:
// it holds up to Max entries, and sources past them share the entry Other,
// which keeps no state. When the table is full, an entry that keeps no state
// (its source only ever sent data, v5 or garbage) gives its place to the
// next exporter with something to keep (Keep), so such sources cannot hold
// the places for good; its counts go to Other. The counters of the entries
// Each gives add up to what was counted in the table, evictions included. It is safe for concurrent use; Get takes no write
// lock once the table is full.
type Table struct {
	max int

	mu sync.RWMutex
	m  map[netip.Addr]*Entry
	// empty are the entries without state, the ones Keep may evict
	empty   map[netip.Addr]struct{}
	full    atomic.Bool
	other   Entry
	evicted atomic.Uint64
}

// Entry is one exporter's: counters any flow input keeps, its warnings'
// limiter, and a decoder's state.
type Entry struct {
	Addr netip.Addr // the zero Addr for Other

	Datagrams, Records, Malformed atomic.Uint64
	// TemplateMisses counts NetFlow v9/IPFIX data sets dropped because
	// their template was unknown.
	TemplateMisses atomic.Uint64
	// Log lets one warning a second about this exporter through, so that
	// one broken or unwanted source can neither flood the log nor hide
	// another's.
	Log ratelog.Limiter

	state atomic.Pointer[any] // nil: keeps nothing
}

// NewTable returns an empty table of up to max entries (DefaultMax when max
// is 0 or less).
func NewTable(max int) *Table {
	if max <= 0 {
		max = DefaultMax
	}
	t := &Table{max: max, m: make(map[netip.Addr]*Entry), empty: make(map[netip.Addr]struct{})}
	t.other.Log.Every = time.Second
	return t
}

func newEntry(addr netip.Addr) *Entry {
	e := &Entry{Addr: addr}
	e.Log.Every = time.Second
	return e
}

// Get returns the entry of addr, adding it when there is room, else Other.
func (t *Table) Get(addr netip.Addr) *Entry {
	addr = addr.Unmap()
	t.mu.RLock()
	e := t.m[addr]
	t.mu.RUnlock()
	if e != nil {
		return e
	}
	if t.full.Load() {
		return &t.other // a flood of new sources takes no write lock
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e = t.m[addr]; e != nil {
		return e
	}
	if len(t.m) >= t.max {
		t.full.Store(true)
		return &t.other
	}
	e = newEntry(addr)
	t.m[addr] = e
	t.empty[addr] = struct{}{}
	return e
}

// Keep returns the state kept for addr, made by create (given the entry, the
// table locked) the first time: in addr's entry, or, when addr has none in a
// full table, in a new one that takes the place of an entry keeping nothing,
// whose counts move to Other. It returns nil when every entry keeps
// something.
func (t *Table) Keep(addr netip.Addr, create func(*Entry) any) any {
	addr = addr.Unmap()
	t.mu.RLock()
	e := t.m[addr]
	t.mu.RUnlock()
	if e != nil {
		if s := e.state.Load(); s != nil {
			return *s
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e = t.m[addr]; e == nil {
		switch {
		case len(t.m) < t.max:
		case len(t.empty) > 0:
			for victim := range t.empty {
				t.other.absorb(t.m[victim])
				delete(t.empty, victim)
				delete(t.m, victim)
				t.evicted.Add(1)
				break
			}
		default:
			return nil
		}
		e = newEntry(addr)
		t.m[addr] = e
		t.full.Store(len(t.m) >= t.max)
	}
	if s := e.state.Load(); s != nil {
		return *s
	}
	s := create(e)
	e.state.Store(&s)
	delete(t.empty, addr)
	return s
}

// absorb adds the counts of an evicted entry to Other's, so that the sums
// over Each stay every datagram counted; an add racing the eviction (a
// decoder holding the entry) may miss them: the input's own totals are exact.
func (e *Entry) absorb(victim *Entry) {
	e.Datagrams.Add(victim.Datagrams.Load())
	e.Records.Add(victim.Records.Load())
	e.Malformed.Add(victim.Malformed.Load())
	e.TemplateMisses.Add(victim.TemplateMisses.Load())
}

// State returns the state kept for the entry's exporter, nil if none.
func (e *Entry) State() any {
	if s := e.state.Load(); s != nil {
		return *s
	}
	return nil
}

// Other is the entry the sources past the bound share.
func (t *Table) Other() *Entry { return &t.other }

// Len is the number of exporters with an entry of their own.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// Evicted counts the entries that gave their place to an exporter with
// something to keep.
func (t *Table) Evicted() uint64 { return t.evicted.Load() }

// Each calls fn for every entry, Other last when a datagram went to it. fn
// runs outside the lock: a slow scrape does not hold up decoding.
func (t *Table) Each(fn func(*Entry)) {
	t.mu.RLock()
	entries := make([]*Entry, 0, len(t.m))
	for _, e := range t.m {
		entries = append(entries, e)
	}
	t.mu.RUnlock()
	for _, e := range entries {
		fn(e)
	}
	if t.other.Datagrams.Load() > 0 || t.other.TemplateMisses.Load() > 0 {
		fn(&t.other)
	}
}
