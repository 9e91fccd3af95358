package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/internal/kafkaclient"
	"github.com/flowdex/flowdex/internal/kafkatest"
	"github.com/flowdex/flowdex/sink/spool"
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
			if err := s.Write(context.Background(), d, "id-"+strconv.FormatInt(i, 10)); err != nil {
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

// describe shows what of an entry the spool must keep.
func describe(es []entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "marker=%v topic=%q key=%q nilkey=%v value=%q headers=%q\n", e.marker, e.r.Topic, e.r.Key, e.r.Key == nil, e.r.Value, e.r.Headers)
	}
	return b.String()
}

// Spool entries keep a record's topic, key (or its absence), value and
// headers, and tell markers from records; a spool of the first version
// (topic, key and value alone) is still read, as records without headers;
// an entry cut short or of an unknown kind is refused.
func TestSpoolEntries(t *testing.T) {
	s := &Sink{spooler: &spooler{}, pendingMax: 1 << 20, pendingMaxBytes: 1 << 30}
	in := []entry{
		{r: &kgo.Record{Topic: "t", Key: []byte("192.0.2.1"), Value: []byte(`{"packets": 1}`),
			Headers: []kgo.RecordHeader{{Key: kafkaclient.IDHeader, Value: []byte("kLuQjyx1MQE0000000001AAAAAAAAAAA")}}}},
		{r: &kgo.Record{Topic: "t", Value: []byte(`{"event_type": "purge_close"}`)}, marker: true},
		{r: &kgo.Record{Topic: "t2", Key: []byte{}, Value: []byte{}, Headers: []kgo.RecordHeader{{Key: "a", Value: nil}, {Key: "b", Value: []byte("c")}}}},
	}
	for _, e := range in {
		if err := s.addLocked(e.r, e.marker); err != nil {
			t.Fatal(err)
		}
	}
	q := s.spooler
	if q.n != 3 || q.nrec != 2 {
		t.Errorf("%d entries, %d records pending; want 3 and 2", q.n, q.nrec)
	}
	got, ok := decodeEntries(nil, q.buf, q.n)
	if want := describe(in); !ok || describe(got) != want {
		t.Errorf("decoded (ok %v):\n%s\nwant:\n%s", ok, describe(got), want)
	}
	for cut := range len(q.buf) {
		if _, ok := decodeEntries(nil, q.buf[:cut], q.n); ok {
			t.Errorf("an entry cut at %d of %d bytes decoded", cut, len(q.buf))
		}
	}
	if _, ok := decodeEntries(nil, append([]byte{entryV2, 7}, q.buf[2:]...), q.n); ok {
		t.Error("an entry of kind 7 decoded")
	}

	// the first version: "t" without a key, "t" with the key "k"
	old := []byte("\x01t\x00\x02v1\x01t\x02k\x01w")
	got, ok = decodeEntries(nil, old, 2)
	want := []entry{{r: &kgo.Record{Topic: "t", Value: []byte("v1")}}, {r: &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("w")}}}
	if !ok || describe(got) != describe(want) {
		t.Errorf("first version (ok %v):\n%s\nwant:\n%s", ok, describe(got), describe(want))
	}
	if _, ok := decodeEntries(nil, old, 3); ok {
		t.Error("3 entries decoded of 2")
	}
}

// Markers take the records' path. Written while the spool holds an earlier
// run's records (in the spool's first version), each purge's purge_init,
// records and purge_close queue behind them; after the replay the topic
// holds, in order, the earlier records, then each purge between its
// markers, its records with their ids.
func TestMarkersSpooledInOrder(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "kmarkers", 1)
	dir := t.TempDir()
	const earlier, batch = 10000, 500
	sp, err := spool.Open(dir, 1<<30, spool.Options{Entries: "records"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 0; i < earlier; i += batch {
		err := sp.Append(batch, func(dst []byte) []byte {
			for j := i; j < i+batch; j++ {
				v := fmt.Sprintf(`{"earlier": %d}`, j)
				want = append(want, v)
				dst = appendField(dst, topic)
				dst = binary.AppendUvarint(dst, 0) // no key
				dst = appendField(dst, v)
			}
			return dst
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfiguration()
	cfg.Brokers, cfg.Topic, cfg.Markers, cfg.SpoolDir = brokers, topic, true, dir
	s := started(t, cfg)
	ctx := context.Background()
	const purges, per = 3, 200
	ids := map[string]string{} // by value
	for p := range purges {
		want = append(want, "purge_init")
		for i := range per {
			d := doc("192.0.2.1", p*per+i)
			v := string(d.AppendJSON(nil, document.Pmacct))
			want = append(want, v)
			ids[v] = fmt.Sprintf("id-%d-%d", p, i)
			if err := s.Write(ctx, d, ids[v]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		want = append(want, "purge_close")
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, 60*time.Second, "the spool does not drain", func() bool { return s.Stats().SpoolRecords == 0 })
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written != purges*per || st.Produced+st.Replayed != earlier+purges*per || st.Markers != 2*purges ||
		st.Failed != 0 || st.SpoolLost != 0 {
		t.Errorf("stats %+v; want %d written, %d produced or replayed, %d markers", st, purges*per, earlier+purges*per, 2*purges)
	}

	var got []string
	for _, r := range consume(t, brokers, topic, len(want)) {
		v := string(r.Value)
		switch {
		case strings.Contains(v, `"purge_init"`):
			v = "purge_init"
		case strings.Contains(v, `"purge_close"`):
			v = "purge_close"
		}
		if id := string(kafkaclient.DocumentID(r)); id != ids[v] {
			t.Errorf("record %s: id %q, want %q", v, id, ids[v])
		}
		got = append(got, v)
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("message %d of %d is %s, want %s (after %q)", i, len(want), got[i], want[i], want[max(0, i-2):i])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d messages, want %d", len(got), len(want))
	}
}

// The spool takes what waiting may fix, down to brokers that could not be
// dialled (kgo's error when it cannot get a producer ID), not a refusal of
// the record.
func TestSpoolable(t *testing.T) {
	_, dial := net.Dial("tcp", "127.0.0.1:1")
	if dial == nil {
		t.Fatal("a connection to port 1")
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{kgo.ErrRecordTimeout, true},
		{kerr.NotEnoughReplicas, true},
		{fmt.Errorf("unable to initialize a producer ID due to request failures: %w", dial), true},
		{io.EOF, true},
		{kerr.MessageTooLarge, false},
		{kerr.TopicAuthorizationFailed, false},
		{errors.New("something else"), false},
	} {
		if got := spoolable(c.err); got != c.want {
			t.Errorf("%v: spoolable %v, want %v", c.err, got, c.want)
		}
	}
}
