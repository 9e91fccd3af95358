package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/sink/spool"
)

// A spool record (see package spool) holds messages in order, one entry
// each:
//
//	0 | kind | topic | key | value | headers
//
// kind is 0 for a record, 1 for a marker (purge_init, purge_close); topic
// and value are each a uvarint length and its bytes, the key likewise but
// with a length one more (0 for no key), and headers a uvarint count, then
// each header's key and value as topic's. The leading 0 tells such an entry
// from one of the first version, topic, key and value alone, whose topic's
// length (never 0) came first: a spool left by that version is still read,
// as records without headers. A spool of this version is not readable by
// the first (it counts its records lost).
const (
	entryV2     = 0
	kindRecord  = 0
	kindMarker  = 1
	maxHeaders  = 64 // a bound on what a decoded entry may claim
	entryHeader = 2  // entryV2 and kind
)

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
	buf  []byte        // entries not appended yet
	n    int           // their number
	nrec int           // of which records (the others are markers)
	on   bool          // records are queued (pending or on disk): new ones go behind them
	kick chan struct{} // wakes the drain
}

// spoolEntry queues r, a record or a marker, behind what is queued.
func (s *Sink) spoolEntry(r *kgo.Record, marker bool) error {
	q := s.spooler
	q.mu.Lock()
	defer q.mu.Unlock()
	return s.addLocked(r, marker)
}

// addLocked appends a record or a marker to the pending batch, and the batch
// to the spool when it is full; q.mu held.
func (s *Sink) addLocked(r *kgo.Record, marker bool) error {
	q := s.spooler
	kind := byte(kindRecord)
	if marker {
		kind = kindMarker
	} else {
		q.nrec++
	}
	q.buf = append(q.buf, entryV2, kind)
	q.buf = appendField(q.buf, r.Topic)
	if r.Key == nil {
		q.buf = binary.AppendUvarint(q.buf, 0)
	} else {
		q.buf = binary.AppendUvarint(q.buf, uint64(len(r.Key))+1)
		q.buf = append(q.buf, r.Key...)
	}
	q.buf = appendField(q.buf, r.Value)
	q.buf = binary.AppendUvarint(q.buf, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		q.buf = appendField(q.buf, h.Key)
		q.buf = appendField(q.buf, h.Value)
	}
	q.n++
	q.on = true
	if q.n >= s.pendingMax || len(q.buf) >= s.pendingMaxBytes {
		return s.flushPendingLocked()
	}
	return nil
}

func appendField[T string | []byte](dst []byte, b T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// flushPendingLocked appends the pending entries to the spool; q.mu held. The
// records the spool cannot take (full, disk full) are counted failed, its
// markers lost with them.
func (s *Sink) flushPendingLocked() error {
	q := s.spooler
	if q.n == 0 {
		return nil
	}
	n, nrec := q.n, q.nrec
	err := q.sp.Append(n, func(dst []byte) []byte { return append(dst, q.buf...) })
	q.buf, q.n, q.nrec = q.buf[:0], 0, 0
	if err != nil {
		s.failed.Add(uint64(nrec))
		if ok, held := s.errLog.Allow(); ok {
			s.logger.Error("kafka: cannot spool; records failed", "dir", s.cfg.SpoolDir, "records", nrec,
				"markers", n-nrec, "error", err, "similar_errors_held_back", held)
		}
		return err
	}
	s.spooled.Add(uint64(nrec))
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
// retries, or could not be reached (kgo fails the records with the dial's
// error when it cannot get a producer ID: brokers down before the first
// record), or the sink closed; a refusal of the record itself (too large,
// not authorised) does not get better by waiting.
func spoolable(err error) bool {
	return errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) ||
		errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.DeadlineExceeded) || kerr.IsRetriable(err) ||
		isNetError(err)
}

func isNetError(err error) bool {
	_, ok := errors.AsType[net.Error](err)
	return ok || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
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
	var batch []entry
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
			if batch, ok = decodeEntries(batch[:0], payload, count); !ok {
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

// handOver gives the pending entries to the client, in order, once the
// spool on disk is sent: new records go to the brokers again behind them;
// q.mu held. The client's buffer then holds at most markers besides them
// (pendingMax is half of it), so Produce does not wait for room.
func (s *Sink) handOver() {
	q := s.spooler
	es, ok := decodeEntries(nil, q.buf, q.n)
	nrec := q.nrec
	q.buf, q.n, q.nrec = q.buf[:0], 0, 0
	if !ok { // not expected: this process encoded them
		s.failed.Add(uint64(nrec))
		return
	}
	for _, e := range es {
		promise := s.delivered
		if e.marker {
			promise = s.markerDelivered
		}
		s.outstanding.Add(1)
		s.client.Produce(context.Background(), e.r, func(r *kgo.Record, err error) {
			if err != nil { // a promise called at once (a closed client) must not wait for q.mu
				go promise(r, err)
				return
			}
			promise(r, nil)
		})
	}
}

// replay produces the entries of one spool record and waits for all of them.
func (s *Sink) replay(batch []entry) error {
	var wg sync.WaitGroup
	var failed int
	var refused, refusedMarkers, markers uint64
	var mu sync.Mutex
	wg.Add(len(batch))
	for _, e := range batch {
		if e.marker {
			markers++
		}
		s.client.Produce(context.Background(), e.r, func(r *kgo.Record, err error) {
			mu.Lock()
			switch {
			case err == nil:
			case spoolable(err) || errors.Is(err, context.Canceled):
				failed++
			case e.marker:
				refusedMarkers++
				s.logFailure(r, err)
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
	s.replayed.Add(uint64(len(batch)) - markers - refused)
	s.markers.Add(markers - refusedMarkers)
	s.failed.Add(refused)
	return nil
}

// entry is a message read back from the spool.
type entry struct {
	r      *kgo.Record
	marker bool
}

// decodeEntries appends the count entries of a payload to es.
func decodeEntries(es []entry, p []byte, count int) ([]entry, bool) {
	d := decoder{p: p}
	for range count {
		var e entry
		v2 := len(d.p) > 0 && d.p[0] == entryV2
		if v2 {
			if len(d.p) < entryHeader || d.p[1] > kindMarker {
				return es, false
			}
			e.marker = d.p[1] == kindMarker
			d.p = d.p[entryHeader:]
		}
		topic := d.field()
		var key []byte
		if kn := d.uvarint(); kn > 0 {
			key = bytes.Clone(d.bytes(kn - 1))
		}
		e.r = &kgo.Record{Topic: string(topic), Key: key, Value: bytes.Clone(d.field())}
		if v2 {
			n := d.uvarint()
			if n > maxHeaders {
				return es, false
			}
			for range n {
				k := d.field()
				e.r.Headers = append(e.r.Headers, kgo.RecordHeader{Key: string(k), Value: bytes.Clone(d.field())})
			}
		}
		if d.bad || len(topic) == 0 {
			return es, false
		}
		es = append(es, e)
	}
	return es, !d.bad && len(d.p) == 0
}

// decoder reads the fields of spool entries; bad once one is cut short.
type decoder struct {
	p   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	n, k := binary.Uvarint(d.p)
	if k <= 0 {
		d.bad = true
		return 0
	}
	d.p = d.p[k:]
	return n
}

func (d *decoder) bytes(n uint64) []byte {
	if d.bad || n > uint64(len(d.p)) {
		d.bad = true
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *decoder) field() []byte { return d.bytes(d.uvarint()) }
