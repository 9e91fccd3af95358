// Package pace replays timestamped packets at their recorded pace, or a
// multiple of it: a pcap of exported datagrams, a traffic capture.
package pace

import (
	"context"
	"math"
	"time"
)

// Pacer holds packets back until their time, measured from the first one.
// It is not for concurrent use.
type Pacer struct {
	speed   float64
	started bool
	t0, w0  time.Time // first packet's stamp, and when it was let through
	timer   *time.Timer
}

// New returns a pacer: speed 1 is the recorded pace, 2 twice as fast; 0 (or
// +Inf) lets everything through at once.
func New(speed float64) *Pacer {
	if math.IsInf(speed, 1) || speed < 0 || math.IsNaN(speed) {
		speed = 0
	}
	return &Pacer{speed: speed}
}

// Wait blocks until the packet stamped ts is due; false when ctx ends first.
func (p *Pacer) Wait(ctx context.Context, ts time.Time) bool {
	if p.speed == 0 {
		return true
	}
	if !p.started {
		p.t0, p.w0, p.started = ts, time.Now(), true
		return true
	}
	wait := time.Until(p.w0.Add(time.Duration(float64(ts.Sub(p.t0)) / p.speed)))
	if wait <= 0 {
		return true
	}
	if p.timer == nil {
		p.timer = time.NewTimer(wait)
	} else {
		p.timer.Reset(wait)
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.timer.C:
		return true
	}
}

// Stop releases the timer.
func (p *Pacer) Stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
