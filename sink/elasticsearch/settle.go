package elasticsearch

import (
	"context"
	"sync"
)

// Documents are numbered in the order Write accepts them (Stats.Written);
// settlement follows, batch by batch, the documents whose fate is decided:
// indexed, already there, dead-lettered, failed or spooled (on disk, sent
// later). Batches finish out of order (workers in parallel, retries), so
// the settled mark is the last document before the oldest batch still out.

// span is the numbers of a batch's documents.
type span struct{ first, last uint64 }

type settlement struct {
	mu      sync.Mutex
	out     []span // batches handed to the workers and not finished, in order
	handed  uint64 // the last document handed to the workers
	changed chan struct{}
}

// sent records a batch handed to the workers.
func (st *settlement) sent(sp span) {
	st.mu.Lock()
	st.out = append(st.out, sp)
	st.handed = sp.last
	st.mu.Unlock()
}

// done records a finished batch.
func (st *settlement) done(first uint64) {
	st.mu.Lock()
	for i, sp := range st.out {
		if sp.first == first {
			st.out = append(st.out[:i], st.out[i+1:]...)
			break
		}
	}
	st.notifyLocked()
	st.mu.Unlock()
}

func (st *settlement) notifyLocked() {
	if st.changed != nil {
		close(st.changed)
		st.changed = nil
	}
}

// handedOut is the last document handed to the workers.
func (st *settlement) handedOut() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.handed
}

// mark is the last document settled, and a channel closed when it may move.
func (st *settlement) mark() (uint64, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.handed
	if len(st.out) > 0 {
		m = st.out[0].first - 1
	}
	if st.changed == nil {
		st.changed = make(chan struct{})
	}
	return m, st.changed
}

// Sync hands what is buffered to the workers and waits until every document
// Write accepted before it is settled: indexed, already there,
// dead-lettered, failed or spooled. A consumer commits its source's
// position (a Kafka offset) only after Sync, so that a crash makes it read
// again what Elasticsearch may not hold; ids make the repeat harmless.
func (s *Sink) Sync(ctx context.Context) error { return s.SyncTo(ctx, s.Mark()) }

// Mark is the number of the last document Write accepted: SyncTo(ctx, Mark())
// later waits for those documents only, not for those written meanwhile.
func (s *Sink) Mark() uint64 { return s.written.Load() }

// SyncTo waits until every document up to mark is settled. What is buffered
// goes to the workers first if it holds some of them (later documents
// usually fill the bulk body and send it before).
func (s *Sink) SyncTo(ctx context.Context, mark uint64) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	if s.settle.handedOut() < mark {
		s.flushLocked()
	}
	s.unlock()
	for {
		m, changed := s.settle.mark()
		if m >= mark {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
