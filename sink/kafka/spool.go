package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/sink/spool"
)

// A spool record (see package spool) holds records in order, one entry
// each: topic, key and value, each as a uvarint length and its bytes (the
// key's length is one more, 0 for no key).

// pendingRecords and pendingBytes bound the records gathered in memory
// before they are appended to the spool as one record: one sync per batch,
// not per message.
const (
	pendingRecords = 512
	pendingBytes   = 1 << 20
)

// spooler queues on disk, in order, what the brokers did not take.
type spooler struct {
	sp   *spool.Spool
	mu   sync.Mutex
	buf  []byte // records not appended yet
	n    int
	on   bool          // records are queued (pending or on disk): new ones go behind them
	kick chan struct{} // wakes the drain
}

// add queues r behind what is queued; false when the spool cannot take it
// (the error says why).
func (s *Sink) spoolRecord(r *kgo.Record) error {
	q := s.spooler
	q.mu.Lock()
	defer q.mu.Unlock()
	return s.addLocked(r.Topic, r.Key, r.Value)
}

// addLocked appends a record to the pending batch, and the batch to the
// spool when it is full; q.mu held.
func (s *Sink) addLocked(topic string, key, value []byte) error {
	q := s.spooler
	q.buf = binary.AppendUvarint(q.buf, uint64(len(topic)))
	q.buf = append(q.buf, topic...)
	if key == nil {
		q.buf = binary.AppendUvarint(q.buf, 0)
	} else {
		q.buf = binary.AppendUvarint(q.buf, uint64(len(key))+1)
		q.buf = append(q.buf, key...)
	}
	q.buf = binary.AppendUvarint(q.buf, uint64(len(value)))
	q.buf = append(q.buf, value...)
	q.n++
	q.on = true
	if q.n >= s.pendingMax || len(q.buf) >= s.pendingMaxBytes {
		return s.flushPendingLocked()
	}
	return nil
}

// flushPendingLocked appends the pending records to the spool; q.mu held. The
// records the spool cannot take (full, disk full) are counted failed.
func (s *Sink) flushPendingLocked() error {
	q := s.spooler
	if q.n == 0 {
		return nil
	}
	n := q.n
	err := q.sp.Append(n, func(dst []byte) []byte { return append(dst, q.buf...) })
	q.buf, q.n = q.buf[:0], 0
	if err != nil {
		s.failed.Add(uint64(n))
		if ok, held := s.errLog.Allow(); ok {
			s.logger.Error("kafka: cannot spool; records failed", "dir", s.cfg.SpoolDir, "records", n,
				"error", err, "similar_errors_held_back", held)
		}
		return err
	}
	s.spooled.Add(uint64(n))
	select {
	case q.kick <- struct{}{}:
	default:
	}
	return nil
}

func (s *Sink) flushPending() {
	if s.spooler == nil {
		return
	}
	s.spooler.mu.Lock()
	defer s.spooler.mu.Unlock()
	_ = s.flushPendingLocked() // counted and logged
}

// spoolable reports whether a record failed with err goes to the spool:
// the brokers did not answer in time, or kept failing after the client's
// retries, or the sink closed; a refusal of the record itself (too large,
// not authorised) does not get better by waiting.
func spoolable(err error) bool {
	return errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) ||
		errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.DeadlineExceeded) || kerr.IsRetriable(err)
}

// errNotNow ends a drain pass: the brokers do not take records yet.
var errNotNow = errors.New("kafka: brokers unavailable")

// drain produces the spool, oldest record first, whenever the brokers take
// records, and removes each segment once every one of its records is
// acknowledged. A record is produced again as a whole if part of it failed:
// the brokers may then hold some of its messages twice.
func (s *Sink) drain() {
	defer close(s.drained)
	q := s.spooler
	var seq uint64
	skip := 0
	wait := 100 * time.Millisecond
	var batch []*kgo.Record
	for {
		q.mu.Lock()
		next, ok := q.sp.Next()
		if !ok && q.n > 0 {
			s.handOver()
		}
		q.on = ok
		q.mu.Unlock()
		if !ok {
			select {
			case <-q.kick:
				continue
			case <-s.stopping:
				return
			}
		}
		if next != seq {
			seq, skip = next, 0
		}
		n, err := q.sp.Read(seq, skip, func(payload []byte, count int) error {
			var ok bool
			if batch, ok = decodeRecords(batch[:0], payload, count); !ok {
				return spool.ErrBadRecord
			}
			return s.replay(batch)
		})
		skip += n
		switch {
		case err == nil || errors.Is(err, spool.ErrCorrupt):
			var d *spool.Damage
			if errors.As(err, &d) {
				s.spoolLost.Add(uint64(d.Lost))
				s.logger.Error("kafka: spool segment damaged; its intact records were sent", "dir", s.cfg.SpoolDir, "error", err)
			}
			if err := q.sp.Remove(seq); err != nil {
				s.logger.Error("kafka: cannot remove a sent spool segment", "error", err)
			}
			skip, wait = 0, 100*time.Millisecond
		default:
			if !errors.Is(err, errNotNow) {
				s.logger.Error("kafka: cannot read the spool", "dir", s.cfg.SpoolDir, "error", err)
			}
			t := time.NewTimer(wait)
			wait = min(2*wait, 10*time.Second)
			select {
			case <-t.C:
			case <-s.stopping:
				t.Stop()
				return
			}
		}
	}
}

// handOver gives the pending records to the client, in order, once the
// spool on disk is sent: new records go to the brokers again behind them;
// q.mu held. The client's buffer then holds at most markers besides them
// (pendingMax is half of it), so Produce does not wait for room.
func (s *Sink) handOver() {
	q := s.spooler
	rs, ok := decodeRecords(nil, q.buf, q.n)
	q.buf, q.n = q.buf[:0], 0
	if !ok { // not expected: this process encoded them
		s.failed.Add(uint64(q.n))
		return
	}
	for _, r := range rs {
		s.outstanding.Add(1)
		s.client.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			if err != nil { // a promise called at once (a closed client) must not wait for q.mu
				go s.delivered(r, err)
				return
			}
			s.delivered(r, nil)
		})
	}
}

// replay produces the records of one spool record and waits for all of them.
func (s *Sink) replay(batch []*kgo.Record) error {
	var wg sync.WaitGroup
	var failed, refused int
	var mu sync.Mutex
	wg.Add(len(batch))
	for _, r := range batch {
		s.client.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			mu.Lock()
			switch {
			case err == nil:
			case spoolable(err) || errors.Is(err, context.Canceled):
				failed++
			default:
				refused++
				s.logFailure(r, err)
			}
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	if failed > 0 {
		return errNotNow // all again later: the acknowledged ones too
	}
	s.replayed.Add(uint64(len(batch) - refused))
	s.failed.Add(uint64(refused))
	return nil
}

// decodeRecords appends the count records of a payload to rs.
func decodeRecords(rs []*kgo.Record, p []byte, count int) ([]*kgo.Record, bool) {
	field := func() ([]byte, bool, bool) { // bytes, nil, ok
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, false, false
		}
		b := p[k : k+int(n)]
		p = p[k+int(n):]
		return b, false, true
	}
	for range count {
		topic, _, ok1 := field()
		kn, k := binary.Uvarint(p)
		if !ok1 || k <= 0 || (kn > 0 && kn-1 > uint64(len(p)-k)) {
			return rs, false
		}
		var key []byte
		if kn > 0 {
			key = append([]byte(nil), p[k:k+int(kn-1)]...)
			p = p[k+int(kn-1):]
		} else {
			p = p[k:]
		}
		value, _, ok := field()
		if !ok || len(topic) == 0 {
			return rs, false
		}
		rs = append(rs, &kgo.Record{Topic: string(topic), Key: key, Value: append([]byte(nil), value...)})
	}
	return rs, len(p) == 0
}
