package kafka

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recorder is a handler that notes which worker got which message, and
// refuses messages from stopAt on (the consumer stopping).
type recorder struct {
	mu     sync.Mutex
	got    map[int32][]int64 // offsets by partition, in the order handled
	worker map[int32]int
	mixed  bool // a partition went to two workers
	stopAt int64
}

func (h *recorder) Message(_ context.Context, worker int, r *kgo.Record) error {
	if h.stopAt > 0 && r.Offset >= h.stopAt {
		return errors.New("stopping")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if w, ok := h.worker[r.Partition]; ok && w != worker {
		h.mixed = true
	}
	h.worker[r.Partition] = worker
	h.got[r.Partition] = append(h.got[r.Partition], r.Offset)
	return nil
}

func (h *recorder) Handled() func(context.Context) error { return nil }

// A batch's records go to the workers by partition: each partition's in
// order, to one worker; handle returns exactly those handled.
func TestHandle(t *testing.T) {
	for _, tt := range []struct {
		name    string
		workers int
		stopAt  int64 // 0: never
	}{
		{"one worker", 1, 0},
		{"two workers", 2, 0},
		{"four workers", 4, 0},
		{"one worker, stopped", 1, 30},
		{"three workers, stopped", 3, 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Configuration{Workers: tt.workers}, slog.New(slog.DiscardHandler))
			if c.Workers() != tt.workers {
				t.Fatalf("Workers() %d", c.Workers())
			}
			var records []*kgo.Record
			for offset := range int64(50) { // interleaved, as a fetch of several partitions
				for p := range int32(5) {
					records = append(records, &kgo.Record{Topic: "t", Partition: p, Offset: offset})
				}
			}
			for round := range 2 { // the worker buffers are reused
				h := &recorder{got: map[int32][]int64{}, worker: map[int32]int{}, stopAt: tt.stopAt}
				done := c.handle(context.Background(), h, slices.Clone(records))
				if h.mixed {
					t.Errorf("round %d: a partition went to two workers", round)
				}
				want := int64(50)
				if tt.stopAt > 0 {
					want = tt.stopAt
				}
				handled := map[int32][]int64{}
				for _, r := range done {
					handled[r.Partition] = append(handled[r.Partition], r.Offset)
				}
				for p := range int32(5) {
					if !slices.Equal(h.got[p], handled[p]) {
						t.Errorf("round %d partition %d: handled %v, returned %v", round, p, h.got[p], handled[p])
					}
					if len(h.got[p]) != int(want) || !slices.IsSorted(h.got[p]) {
						t.Errorf("round %d partition %d: offsets %v, want 0..%d in order", round, p, h.got[p], want-1)
					}
				}
			}
		})
	}
}
