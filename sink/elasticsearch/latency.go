package elasticsearch

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the bulk latency
// histogram: from a few milliseconds (a small batch on an idle node) to the
// request timeout's range (a node under merge pressure or frozen).
var LatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// latency is a fixed-bucket histogram that a worker updates without locks;
// readers see each counter atomically, not all of them at one instant.
type latency struct {
	counts [14]atomic.Uint64 // len(LatencyBuckets)+1: the last one is +Inf
	sumNs  atomic.Uint64
}

func (l *latency) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNs.Add(uint64(d))
}

// Latency is a snapshot of the bulk request latencies: Counts[i] requests
// took at most LatencyBuckets[i] (and more than the bound before it); the
// last count is above every bound.
type Latency struct {
	Counts  []uint64
	Seconds float64 // the sum of every request's latency
}

func (l *latency) snapshot() Latency {
	out := Latency{Counts: make([]uint64, len(l.counts))}
	for i := range l.counts {
		out.Counts[i] = l.counts[i].Load()
	}
	out.Seconds = time.Duration(l.sumNs.Load()).Seconds()
	return out
}

// Health is what a readiness check needs to know of the sink.
type Health struct {
	Started   bool   // Start succeeded and Stop has not begun
	Spooling  bool   // requests wait on disk for Elasticsearch
	LastError string // the last bulk request that failed as a whole, "" once one succeeds
}

// Health says whether the sink takes documents and delivers them.
func (s *Sink) Health() Health {
	h := Health{Started: s.started.Load() && !s.isStopping()}
	if s.spool != nil {
		h.Spooling = s.spool.isActive()
	}
	if msg := s.failing.Load(); msg != nil {
		h.LastError = *msg
	}
	return h
}
