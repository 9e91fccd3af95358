package engine

import (
	"net/netip"

	"github.com/flowdex/flowdex/aggregate/cache"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/exporter"
)

// countingEmitter passes records on to an input's pipelines and counts them
// for one exporter. Emitters are pooled, with their method value made once,
// so that counting costs no allocation per datagram.
type countingEmitter struct {
	fi      *flowInput
	n       uint64
	emit    func(*flow.Record)
	scratch cache.Scratch // one goroutine's at a time, as the emitter
}

func (e *countingEmitter) add(r *flow.Record) {
	e.n++
	e.fi.emit(r, &e.scratch)
}

// entryOf is the table entry a metric names: its address, or "other" for
// the sources past the table's bound.
func entryOf(e *exporter.Entry) string { return exporterName(e.Addr) }

// exporterName is an exporter's address, or "other" for the zero address
// that stands for the sources past the table's bound.
func exporterName(a netip.Addr) string {
	if a.IsValid() {
		return a.String()
	}
	return "other"
}
