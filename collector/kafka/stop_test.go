package kafka

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/internal/kafkatest"
)

// slowHandler's wait returns when released, or with its context's end, as
// an output's Sync does.
type slowHandler struct {
	waiting chan struct{} // closed when a wait starts
	release chan struct{}
	started bool
}

func (h *slowHandler) Message(context.Context, int, *kgo.Record) error { return nil }

func (h *slowHandler) Handled() func(context.Context) error {
	return func(ctx context.Context) error {
		if !h.started {
			h.started = true
			close(h.waiting)
		}
		select {
		case <-h.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestStopDuringCommit: a stop that comes while the outputs are still
// delivering a batch leaves them commitTimeout; the batch is then
// committed, not read again at the next start.
func TestStopDuringCommit(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "stop", 1)
	cl := kafkatest.Client(t, brokers)
	for i := range 10 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfiguration()
	cfg.Brokers, cfg.Topics, cfg.Group, cfg.Workers = brokers, []string{topic}, topic, 1
	cfg.SessionTimeout.Duration = 10 * time.Second
	c := New(cfg, slog.New(slog.DiscardHandler))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h := &slowHandler{waiting: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	select {
	case <-h.waiting:
	case <-time.After(time.Minute):
		t.Fatal("the batch's wait did not start within a minute")
	}
	stop() // SIGTERM while the outputs deliver the batch
	time.Sleep(200 * time.Millisecond)
	close(h.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Commits != 1 || st.CommitErrors != 0 || st.Messages != 10 {
		t.Errorf("stats %+v: want the batch of 10 committed once", st)
	}
	offsets, err := kafkatest.Admin(t, brokers).FetchOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offsets.Lookup(topic, 0); !ok || o.At != 10 {
		t.Errorf("the group's offset is %+v; want 10, the batch committed", o)
	}
}
