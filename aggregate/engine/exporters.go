package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/ratelog"
)

// maxTrackedExporters bounds the per-exporter counters: without an allow-list
// any source address is an exporter, and a spoofed flood must not grow the
// table (nor the metrics' label sets) without end. Sources beyond the bound
// share the entry of the zero address, shown as exporter "other".
const maxTrackedExporters = 1024

// exporterCounters are the counters of one exporter of an input.
type exporterCounters struct {
	datagrams, records, malformed atomic.Uint64
	// one warning a second at most, so that one broken or unwanted source
	// can neither flood the log nor hide another's
	logs ratelog.Limiter
}

func newExporterCounters() *exporterCounters {
	return &exporterCounters{logs: ratelog.Limiter{Every: time.Second}}
}

// exporterTable holds the counters of an input's exporters: sources whose
// datagrams were decoded (the allow-list passed), never rejected ones.
type exporterTable struct {
	mu    sync.RWMutex
	m     map[netip.Addr]*exporterCounters
	full  atomic.Bool // maxTrackedExporters reached: newcomers count as other
	other exporterCounters
}

// get returns the counters of addr, adding them when there is room.
func (t *exporterTable) get(addr netip.Addr) *exporterCounters {
	addr = addr.Unmap()
	t.mu.RLock()
	c := t.m[addr]
	t.mu.RUnlock()
	if c != nil {
		return c
	}
	if t.full.Load() {
		return &t.other // a flood of new sources takes no write lock
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c = t.m[addr]; c != nil {
		return c
	}
	if len(t.m) >= maxTrackedExporters {
		t.full.Store(true)
		return &t.other
	}
	if t.m == nil {
		t.m = make(map[netip.Addr]*exporterCounters)
	}
	c = newExporterCounters()
	t.m[addr] = c
	return c
}

// tracked reports whether addr has its own counters.
func (t *exporterTable) tracked(addr netip.Addr) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.m[addr.Unmap()]
	return ok
}

// each calls fn for every exporter, "other" (the zero address) last when
// used. fn runs outside the lock: a slow scrape does not hold up decoding.
func (t *exporterTable) each(fn func(addr netip.Addr, c *exporterCounters)) {
	type entry struct {
		addr netip.Addr
		c    *exporterCounters
	}
	t.mu.RLock()
	entries := make([]entry, 0, len(t.m))
	for a, c := range t.m {
		entries = append(entries, entry{a, c})
	}
	t.mu.RUnlock()
	for _, e := range entries {
		fn(e.addr, e.c)
	}
	if t.other.datagrams.Load() > 0 {
		fn(netip.Addr{}, &t.other)
	}
}

// countingEmitter passes records on to an input's pipelines and counts them
// for one exporter. Emitters are pooled, with their method value made once,
// so that counting costs no allocation per datagram.
type countingEmitter struct {
	fi   *flowInput
	n    uint64
	emit func(*flow.Record)
}

func (e *countingEmitter) add(r *flow.Record) {
	e.n++
	e.fi.emit(r)
}
