package elasticsearch

import (
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds, in seconds, of the bulk latency
// histogram: from a few milliseconds (a small batch on an idle node) to the
// request timeout's range (a node under merge pressure or frozen).
var latencyBounds = [...]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// latency is a fixed-bucket histogram that a worker updates without locks;
// readers see each counter atomically, not all of them at one instant.
type latency struct {
	counts [len(latencyBounds) + 1]atomic.Uint64 // the last one is +Inf
	sumNs  atomic.Uint64
}

func (l *latency) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(latencyBounds) && s > latencyBounds[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNs.Add(uint64(d))
}

// Latency is a snapshot of the bulk request latencies: Counts[i] requests
// took at most Bounds[i] seconds (and more than the bound before it); the
// last count, one more than the bounds, is above every bound.
type Latency struct {
	Bounds  []float64
	Counts  []uint64
	Seconds float64 // the sum of every request's latency
}

func (l *latency) snapshot() Latency {
	out := Latency{Bounds: append([]float64(nil), latencyBounds[:]...), Counts: make([]uint64, len(l.counts))}
	for i := range l.counts {
		out.Counts[i] = l.counts[i].Load()
	}
	out.Seconds = time.Duration(l.sumNs.Load()).Seconds()
	return out
}

// Health is what a readiness check needs to know of the sink.
type Health struct {
	Started   bool   // Start succeeded and Stop has not begun
	Spool     bool   // a spool is configured: what Elasticsearch cannot take now waits on disk
	Spooling  bool   // requests wait on disk for Elasticsearch
	LastError string // the last bulk request that failed as a whole, "" once one succeeds
	// DeadLettered: that failure sent its documents to the dead-letter file
	// (refused as a whole, e.g. 401/403, or the spool could not take them)
	DeadLettered bool
}

// Health says whether the sink takes documents and delivers them.
func (s *Sink) Health() Health {
	h := Health{Started: s.started.Load() && !s.isStopping()}
	if s.spool != nil {
		h.Spool = true
		h.Spooling = s.spool.Active()
	}
	if f := s.failing.Load(); f != nil {
		h.LastError, h.DeadLettered = f.msg, f.deadLettered
	}
	return h
}

// Delivers is true when documents given to the sink reach Elasticsearch or
// wait for it on disk: started, and the last bulk request succeeded, or it
// failed in a way the spool takes over (unreachable, overloaded; also during
// the retries before the spool does: nothing is lost meanwhile).
func (h Health) Delivers() bool {
	return h.Started && (h.LastError == "" || h.Spool && !h.DeadLettered)
}

// failure is the last whole-request failure.
type failure struct {
	msg          string
	deadLettered bool
}

// setFailing records the last whole-request failure.
func (s *Sink) setFailing(msg string, deadLettered bool) {
	s.failing.Store(&failure{msg, deadLettered})
}
