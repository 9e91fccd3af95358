package elasticsearch

import (
	"context"
	"errors"
	"time"

	"github.com/flowdex/flowdex/sink/spool"
)

// toSpool queues what is left of the batch on disk; if the spool cannot take
// it (full, disk full), the documents are dead-lettered with that reason.
func (s *Sink) toSpool(w *worker, b *batch) {
	if len(b.items) == 0 {
		return
	}
	if err := appendSpool(s.spool, b); err != nil {
		s.setFailing("spool: "+err.Error(), true)
		if ok, suppressed := s.spoolErr.Allow(); ok {
			s.logger.Error("elasticsearch: cannot spool; documents dead-lettered", "dir", s.cfg.SpoolDir,
				"documents", len(b.items), "error", err, "similar_not_logged", suppressed)
		}
		s.giveUpAll(w, b, 0, errorJSON("spool_failed", err.Error()))
		return
	}
	s.spooled.Add(uint64(len(b.items)))
	b.keep(nil)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// stopped handles a batch the sink could not finish before Stop gave up:
// spooled when there is a spool, else dead-lettered.
func (s *Sink) stopped(w *worker, b *batch) {
	if s.spool != nil {
		s.toSpool(w, b)
		return
	}
	why := "stop_grace is over"
	if !s.hurried() {
		why = "its stop timed out"
	}
	if b.maybeIndexed {
		s.unconfirmed.Add(uint64(len(b.items))) // no time left to ask
	}
	s.giveUpAll(w, b, 0, stoppedError(why))
}

func (s *Sink) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// errNotNow ends a drain pass: Elasticsearch does not take requests yet.
var errNotNow = errors.New("elasticsearch unavailable")

// drain sends the spool, oldest segment first, whenever Elasticsearch takes
// requests, and removes each segment once sent. It ends with Stop, after the
// record it is sending.
func (s *Sink) drain() {
	defer s.drainer.Done()
	w := &worker{}
	b := &batch{}
	var seq uint64
	skip := 0 // records of seq already sent in this run
	wait := s.cfg.BackoffMin
	for {
		select {
		case <-s.stopping:
			return
		default:
		}
		if s.needSetup.Load() {
			var err error
			if s.pendingSetup != nil { // the one Start did not wait for
				select {
				case err = <-s.pendingSetup:
					s.pendingSetup = nil
				case <-s.stopping:
					return
				}
			} else {
				err = s.setupRetrying(s.sendCtx, time.Time{})
			}
			if err != nil { // refused for good, until someone fixes it; or stopping
				if ok, suppressed := s.spoolErr.Allow(); ok {
					s.logger.Warn("elasticsearch: not ready; the spool waits", "error", err, "similar_not_logged", suppressed)
				}
				if !s.pause(s.sendCtx, &wait) {
					return
				}
				continue
			}
			s.needSetup.Store(false)
			if s.discoverNow != nil {
				select {
				case s.discoverNow <- struct{}{}:
				default:
				}
			}
		}
		next, ok := s.spool.Next()
		if !ok {
			select {
			case <-s.kick:
				continue
			case <-s.stopping:
				return
			}
		}
		if next != seq {
			seq, skip = next, 0
		}
		n, err := readSpool(s.spool, seq, skip, b, func(b *batch) error { return s.replay(w, b) })
		skip += n
		switch {
		case err == nil || errors.Is(err, spool.ErrCorrupt):
			var d *spool.Damage
			if errors.As(err, &d) { // damaged records were skipped, the others sent
				s.spoolLost.Add(uint64(d.Lost))
				s.logger.Error("elasticsearch: spool segment damaged; its intact records were sent", "dir", s.cfg.SpoolDir, "error", err)
			}
			if err := s.spool.Remove(seq); err != nil {
				s.logger.Error("elasticsearch: cannot remove a sent spool segment", "error", err)
				if !s.pause(s.sendCtx, &wait) {
					return
				}
			}
			skip, wait = 0, s.cfg.BackoffMin
		case errors.Is(err, errNotNow):
			if !s.pause(s.sendCtx, &wait) {
				return
			}
		default: // the spool cannot be read
			s.logger.Error("elasticsearch: cannot read the spool", "dir", s.cfg.SpoolDir, "error", err)
			if !s.pause(s.sendCtx, &wait) {
				return
			}
		}
	}
}

// pause waits before the next try, longer each time; false when stopping or
// when ctx ends.
func (s *Sink) pause(ctx context.Context, wait *time.Duration) bool {
	t := time.NewTimer(*wait)
	defer t.Stop()
	*wait = min(2**wait, s.cfg.BackoffMax)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.stopping:
		return false
	case <-s.hurry:
		return false
	}
}

// replay sends one spooled batch. Nothing indexed yet and Elasticsearch
// unavailable: errNotNow, the record stays. Once part of it is indexed, the
// rest is retried here until it is (or Stop: then the whole record is sent
// again at the next start; ids make the repeat harmless).
func (s *Sink) replay(w *worker, b *batch) error {
	total := len(b.items)
	for attempt := 0; len(b.items) > 0; attempt++ {
		if attempt > 0 {
			wait := s.backoff(attempt)
			if !s.pause(s.sendCtx, &wait) {
				return errNotNow
			}
		}
		status, body, err := s.bulk(w, b, time.Time{})
		s.requests.Add(1)
		if err == nil && status/100 == 2 {
			if err = s.parse(w, body, len(b.items)); err == nil {
				s.failing.Store(nil)
				before := len(b.items)
				s.results(w, b, false) // keeps what was refused for overload
				s.replayed.Add(uint64(before - len(b.items)))
				continue
			}
		}
		s.bulkErrors.Add(1)
		retryable := retryableRequest(err, status)
		if err != nil {
			s.setFailing(err.Error(), false)
		} else {
			s.setFailing(errorBody(status, body), !retryable)
		}
		if retryable {
			if len(b.items) == total {
				return errNotNow
			}
			continue
		}
		// refused as a whole (a 4xx): dead-lettered with its reason
		s.replayed.Add(uint64(len(b.items)))
		s.giveUpAll(w, b, status, answerError(status, body))
	}
	return nil
}
