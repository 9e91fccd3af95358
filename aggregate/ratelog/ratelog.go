// Package ratelog keeps a repeated warning from flooding the log: one line per
// interval gets through, and it says how many were held back since the last.
// A broken exporter sends as many bad datagrams as good ones, an overloaded
// Elasticsearch rejects every document of a bulk: the counters carry the
// numbers, the log names the source and the reason.
package ratelog

import (
	"sync/atomic"
	"time"
)

// Limiter lets a line through at most once per Every; the zero value, with
// Every 0, lets every line through. It is safe for concurrent use and takes
// no lock.
type Limiter struct {
	Every time.Duration

	last       atomic.Int64 // Unix nanoseconds of the last line let through; 0: none yet
	suppressed atomic.Uint64
}

// Allow reports whether a line may be logged now and, when it may, how many
// were held back since the last one.
func (l *Limiter) Allow() (ok bool, suppressed uint64) {
	return l.AllowAt(time.Now())
}

// AllowAt is Allow at the time now.
func (l *Limiter) AllowAt(now time.Time) (ok bool, suppressed uint64) {
	if l.Every <= 0 {
		return true, l.suppressed.Swap(0)
	}
	t := now.UnixNano()
	last := l.last.Load()
	if last != 0 && t-last < int64(l.Every) || !l.last.CompareAndSwap(last, t) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// Pending returns how many lines were held back since the last one let
// through, and starts counting again: for a last word at stop.
func (l *Limiter) Pending() uint64 { return l.suppressed.Swap(0) }
