package main

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// maxTrackedExporters bounds the per-exporter counters: without an allow-list
// any source address is an exporter, and a spoofed flood must not grow the
// table (nor the metrics' label sets) without end. Sources beyond the bound
// share the entry of the zero address, shown as exporter "other".
const maxTrackedExporters = 1024

// exporterCounters are the counters of one exporter of an input.
type exporterCounters struct {
	datagrams, records, malformed, rejected atomic.Uint64
	// log lines about this exporter: at most one a second, so that one broken
	// or unwanted exporter can neither flood the log nor hide another's
	lastLog    atomic.Int64 // Unix seconds
	suppressed atomic.Uint64
}

// logAllowed reports whether a line about the exporter may be logged now, and
// how many were suppressed since the last one.
func (c *exporterCounters) logAllowed() (bool, uint64) {
	now := time.Now().Unix()
	if last := c.lastLog.Load(); now != last && c.lastLog.CompareAndSwap(last, now) {
		return true, c.suppressed.Swap(0)
	}
	c.suppressed.Add(1)
	return false, 0
}

// exporterTable holds the counters of an input's exporters.
type exporterTable struct {
	mu    sync.RWMutex
	m     map[netip.Addr]*exporterCounters
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
	t.mu.Lock()
	defer t.mu.Unlock()
	if c = t.m[addr]; c != nil {
		return c
	}
	if len(t.m) >= maxTrackedExporters {
		return &t.other
	}
	if t.m == nil {
		t.m = make(map[netip.Addr]*exporterCounters)
	}
	c = new(exporterCounters)
	t.m[addr] = c
	return c
}

// each calls fn for every exporter, "other" (the zero address) last when used.
func (t *exporterTable) each(fn func(addr netip.Addr, c *exporterCounters)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for a, c := range t.m {
		fn(a, c)
	}
	if t.other.datagrams.Load()+t.other.rejected.Load() > 0 {
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
