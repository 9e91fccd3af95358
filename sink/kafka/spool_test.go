package kafka

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/internal/kafkatest"
)

// waitFor polls cond (a counter) for up to d.
func waitFor(t *testing.T, s *Sink, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s (stats %+v)", d, what, s.Stats())
		}
	}
}

// consumeValues reads topic from the start until every value of want is
// seen; it returns how many records were read more than once.
func consumeValues(t *testing.T, brokers []string, topic string, want map[string]bool) int {
	t.Helper()
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := map[string]int{}
	missing := len(want)
	dups := 0
	for missing > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d records of %d missing after 60 s", missing, len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if seen[v]++; seen[v] > 1 {
				dups++
			} else if want[v] {
				missing--
			}
		})
	}
	return dups
}

// publisher writes numbered records of 4 exporters until stopped.
type publisher struct {
	s    *Sink
	next atomic.Int64
	mu   sync.Mutex
	want map[string]bool
	stop chan struct{}
	done chan struct{}
}

func publish(t *testing.T, s *Sink, from int64, every time.Duration) *publisher {
	p := &publisher{s: s, want: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	p.next.Store(from)
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
			i := p.next.Add(1)
			d := doc("192.0.2."+strconv.Itoa(int(i%4)+1), int(i))
			p.mu.Lock()
			p.want[string(d.AppendJSON(nil, document.Pmacct))] = true
			p.mu.Unlock()
			if err := s.Write(context.Background(), d); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	return p
}

func (p *publisher) end() map[string]bool { close(p.stop); <-p.done; return p.want }

// One broker of three stopped and started while records flow, then two of
// them, so that the topic takes nothing: with a spool, every record ends up in the topic. The spool takes
// over when no broker answers for spool_after, memory stays bounded, and
// the spool drains when the brokers are back. A stop while they are down
// ends within stop_grace with the records in the spool, and the next start
// sends them.
func TestBrokersDownSpool(t *testing.T) {
	c := kafkatest.NewCluster(t)
	topic := c.Topic("kspool", 4)
	cfg := DefaultConfiguration()
	cfg.Brokers, cfg.Topic = c.Brokers, topic
	cfg.SpoolDir = t.TempDir()
	cfg.SpoolAfter.Duration = time.Second
	cfg.StopGrace.Duration = 2 * time.Second
	cfg.MaxBufferedRecords = 200
	s := started(t, cfg)

	// (a) one broker stopped and started again while records flow
	p := publish(t, s, 0, time.Millisecond)
	waitFor(t, s, 10*time.Second, "no record produced", func() bool { st := s.Stats(); return st.Produced+st.Replayed > 100 })
	c.StopBroker(1)
	before := s.Stats().Written
	waitFor(t, s, 20*time.Second, "no record written with a broker down", func() bool { return s.Stats().Written > before+500 })
	c.StartBroker(1)
	before = s.Stats().Written
	waitFor(t, s, 20*time.Second, "no record written once it is back", func() bool { return s.Stats().Written > before+500 })

	// (b) two brokers of three stopped for longer than spool_after: no
	// partition has the two in-sync replicas its writes need, and a node
	// alone cannot restart a combined cluster that lost its quorum
	c.StopBroker(1)
	c.StopBroker(2)
	waitFor(t, s, 30*time.Second, "nothing spooled with two brokers down", func() bool { return s.Stats().Spooled > 0 })
	before = s.Stats().Written
	waitFor(t, s, 30*time.Second, "writes blocked with the spool on", func() bool { return s.Stats().Written > before+1000 })
	maxQueued := uint64(0)
	if q := s.Stats().Queued; q > maxQueued {
		maxQueued = q
	}
	if maxQueued > uint64(cfg.MaxBufferedRecords+pendingRecords) {
		t.Errorf("%d records in memory, more than the buffer (%d) and a pending spool batch (%d)", maxQueued, cfg.MaxBufferedRecords, pendingRecords)
	}
	c.StartBroker(1)
	c.StartBroker(2)
	want := p.end()
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, 60*time.Second, "the spool does not drain", func() bool { return s.Stats().SpoolRecords == 0 })
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	t.Logf("stats %+v", st)
	if st.Failed != 0 || st.SpoolLost != 0 || st.Replayed < st.Spooled || st.Written != uint64(len(want)) {
		t.Errorf("stats %+v for %d records", st, len(want))
	}
	dups := consumeValues(t, c.Brokers, topic, want)
	t.Logf("%d records, every one in the topic, %d read more than once", len(want), dups)

	// (c) stopped while the brokers take nothing: within stop_grace, to the spool
	s = started(t, cfg)
	c.StopBroker(1)
	c.StopBroker(2)
	p = publish(t, s, 1_000_000, 100*time.Microsecond)
	before = s.Stats().Written
	waitFor(t, s, 30*time.Second, "no record written", func() bool { return s.Stats().Written > before+300 })
	want = p.end()
	start := time.Now()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > cfg.StopGrace.Duration+2*time.Second {
		t.Errorf("stop took %v, stop_grace is %v", d, cfg.StopGrace)
	}
	if st := s.Stats(); st.Failed != 0 || st.SpoolRecords == 0 || st.Queued != 0 {
		t.Errorf("after the stop: %+v; want every record spooled", st)
	}
	c.StartBroker(1)
	c.StartBroker(2)
	s = started(t, cfg)
	waitFor(t, s, 60*time.Second, "the spool of the earlier run does not drain", func() bool { return s.Stats().SpoolRecords == 0 })
	s.Stop(context.Background())
	dups = consumeValues(t, c.Brokers, topic, want)
	t.Logf("after a restart: %d records, every one in the topic, %d read more than once", len(want), dups)
}
