// Package kafka reads messages from Kafka topics as a member of a consumer
// group (franz-go), batch by batch, and commits a batch's offsets only once
// its handler says everything the batch gave it is delivered: a crash or a
// rebalance redelivers what was not committed, never skips it. What the
// messages hold is the handler's business (flowdex's engine reads pmacct
// JSON from them).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/internal/kafkaclient"
)

// Configuration of a consumer: the connection, the topics and the group.
type Configuration struct {
	kafkaclient.Configuration
	// Topics are read whole, every partition.
	Topics []string `toml:"topics"`
	// Group is the consumer group: indexers of one group share the
	// partitions, and the group's committed offsets are where a restarted
	// one resumes.
	Group string `toml:"group"`
	// Format of the messages: "json", pmacct's (one record per line, as the
	// kafka plugin writes with kafka_multi_values or without).
	Format string `toml:"format"`
	// MaxPollRecords bounds a batch; 0, the default, makes a batch of what
	// the last fetch from each broker gave (franz-go holds one at a time,
	// of at most 1 MiB per partition, 50 MiB per broker). A batch's offsets
	// are committed once its records are delivered, while the next batch is
	// read: two batches at most are in memory. A fetch gives each partition
	// its share; a smaller bound gives a batch the records of one or two
	// partitions, whose worker then works alone.
	MaxPollRecords int `toml:"max_poll_records"`
	// Workers read the messages of a batch in parallel, each its own
	// partitions (one partition's messages stay in order); 0 is one per CPU.
	Workers int `toml:"workers"`
	// SessionTimeout is how long the group waits for a member that stopped
	// answering (killed, cut off) before its partitions go to the others.
	SessionTimeout setting.Duration `toml:"session_timeout"`
}

// DefaultConfiguration is group "flowdex", pmacct JSON, batches of a fetch,
// Kafka's session timeout (45 s); the topics are the user's to give.
func DefaultConfiguration() Configuration {
	return Configuration{Configuration: kafkaclient.DefaultConfiguration(), Group: "flowdex", Format: "json",
		SessionTimeout: setting.Duration{Duration: 45 * time.Second}}
}

// Validate reports every setting the consumer could not use, naming its key.
func (c Configuration) Validate() error {
	errs := []error{c.Configuration.Validate()}
	if len(c.Topics) == 0 {
		errs = append(errs, setting.Errorf("topics", "no topic (expected e.g. [\"pmacct.acct\"])"))
	}
	for _, t := range c.Topics {
		if t == "" {
			errs = append(errs, setting.Errorf("topics", "an empty topic name"))
		}
	}
	if c.Group == "" {
		errs = append(errs, setting.Errorf("group", "empty (expected a consumer group id, e.g. \"flowdex\")"))
	}
	if c.Format != "json" {
		errs = append(errs, setting.Errorf("format", "%q: expected \"json\" (pmacct's kafka plugin output)", c.Format))
	}
	if c.Workers < 0 {
		errs = append(errs, setting.Errorf("workers", "%d: expected 0 (one per CPU) or more", c.Workers))
	}
	if c.MaxPollRecords < 0 {
		errs = append(errs, setting.Errorf("max_poll_records", "%d: expected 0 (a fetch) or a positive number, e.g. 10000", c.MaxPollRecords))
	}
	if c.SessionTimeout.Duration < time.Second {
		errs = append(errs, setting.Errorf("session_timeout", "%v: expected a duration of 1s or more (the brokers' group.min.session.timeout.ms is 6s by default)", c.SessionTimeout.Duration))
	}
	return errors.Join(errs...)
}

// Handler takes the messages of each batch, then says when what they gave
// it is delivered.
type Handler interface {
	// Message handles one message; an error stops the worker's part of the
	// batch there (the consumer is stopping). Workers call it at once, each
	// with its number (0 <= worker < Workers()): one partition's messages go
	// to one worker at a time, in order, so that a handler can keep its
	// reading state per worker.
	Message(ctx context.Context, worker int, r *kgo.Record) error
	// Handled returns a wait for everything the messages handled so far gave
	// the handler: once the wait returns nil it is delivered, and the offsets
	// of those messages are committed. The wait runs while later messages
	// are handled.
	Handled() func(ctx context.Context) error
}

// Stats are the consumer's counters.
type Stats struct {
	Messages     uint64 // handled
	Batches      uint64 // polled with at least one message
	Commits      uint64 // offset commits that succeeded
	CommitErrors uint64 // offset commits (or syncs before them) that failed: the batch comes again
	FetchErrors  uint64
	Assigned     uint64 // partitions given to this member, one per partition
	Revoked      uint64 // partitions taken back in a rebalance
	Lost         uint64 // partitions lost (session expired): not committed, they come again
}

// Lag is one partition's consumer lag: the high watermark of its last fetch
// less the offset committed.
type Lag struct {
	Topic     string
	Partition int32
	Lag       int64
}

// Consumer is one member of a consumer group.
type Consumer struct {
	cfg    Configuration
	logger *slog.Logger
	client *kgo.Client

	messages, batches, commits, commitErrors, fetchErrors atomic.Uint64
	assigned, revoked, lost                               atomic.Uint64
	errLog                                                ratelog.Limiter

	workers   int
	perWorker [][]*kgo.Record // a batch's records by worker, reused

	mu        sync.Mutex
	positions map[partition]*position // of the partitions owned

	commitMu sync.Mutex // the commit of pending: Run's, or onRevoked's
	pending  *batch     // handled, not yet committed
}

// batch is what a poll gave, handled: its records and the wait for what
// they became.
type batch struct {
	records []*kgo.Record
	wait    func(ctx context.Context) error
}

type partition struct {
	topic string
	id    int32
}

type position struct{ high, committed int64 }

// New returns a consumer of cfg; Start connects it.
func New(cfg Configuration, logger *slog.Logger) *Consumer {
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &Consumer{cfg: cfg, logger: logger, workers: workers, perWorker: make([][]*kgo.Record, workers),
		positions: map[partition]*position{}, errLog: ratelog.Limiter{Every: 10 * time.Second}}
}

// Workers is how many goroutines call the handler's Message at once.
func (c *Consumer) Workers() int { return c.workers }

// startTimeout bounds the checks of Start.
const startTimeout = 30 * time.Second

// Start connects to the brokers, checks that every topic exists and joins
// the group: an unreachable broker, refused credentials or a missing topic
// is an error naming the brokers and the cause.
func (c *Consumer) Start(ctx context.Context) error {
	opts, err := c.cfg.Options(c.logger)
	if err != nil {
		return err
	}
	opts = append(opts, kgo.WithLogger(kgoLogger{c.logger}))
	// the checks use a client of their own: the group's joins the group (and
	// its goroutines run) only once they pass
	check, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka brokers %s: %w", c.cfg.Where(), err)
	}
	err = c.check(ctx, check)
	check.Close()
	if err != nil {
		return fmt.Errorf("kafka brokers %s: %w", c.cfg.Where(), err)
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumerGroup(c.cfg.Group),
		kgo.ConsumeTopics(c.cfg.Topics...),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(c.cfg.SessionTimeout.Duration),
		// no rebalance between a poll and its commit: what was handled is
		// committed before its partitions go to another member
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.WithPools(new(recordPool)),
	)...)
	if err != nil {
		return fmt.Errorf("kafka brokers %s: %w", c.cfg.Where(), err)
	}
	c.client = cl
	return nil
}

// check pings the brokers and looks the topics up.
func (c *Consumer) check(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return err
	}
	topics, err := kadm.NewClient(cl).ListTopics(ctx, c.cfg.Topics...)
	if err != nil {
		return err
	}
	for _, t := range c.cfg.Topics {
		switch d, ok := topics[t]; {
		case !ok:
			return fmt.Errorf("topic %q: %w", t, kerr.UnknownTopicOrPartition)
		case d.Err != nil:
			return fmt.Errorf("topic %q: %w", t, d.Err)
		}
	}
	return nil
}

// Run reads batches into h until ctx is done. A batch's offsets are
// committed once h's wait for it returns, while the next batch is handled
// (the outputs deliver one batch while the next is read), or before a poll
// that has no message at hand. At the end it
// commits what was handled and leaves the group, so that the others take
// the partitions at once.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	defer c.client.Close()
	for {
		if c.client.BufferedFetchRecords() == 0 {
			// the poll would wait for new messages: the pending batch is
			// committed now, not when they come
			c.commitPending(ctx)
		}
		fetches := c.client.PollRecords(ctx, c.cfg.MaxPollRecords) // 0: PollFetches
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return
			}
			c.fetchErrors.Add(1)
			if ok, suppressed := c.errLog.Allow(); ok {
				c.logger.Error("kafka: fetch failed, retrying", "topic", topic, "partition", p, "error", err, "suppressed", suppressed)
			}
		})
		c.mu.Lock()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if pos := c.positions[partition{fp.Topic, fp.Partition}]; pos != nil && fp.HighWatermark > 0 {
				pos.high = fp.HighWatermark
			}
		})
		c.mu.Unlock()
		// the batch before is committed while this one is read: its wait
		// returns as the outputs deliver it, and the commit is a round trip
		committed := make(chan struct{})
		go func() {
			defer close(committed)
			c.commitPending(ctx)
		}()
		var b *batch
		if done := c.handle(ctx, h, fetches.Records()); len(done) > 0 {
			b = &batch{records: done, wait: h.Handled()}
		}
		<-committed
		c.commitMu.Lock()
		c.pending = b
		if ctx.Err() != nil {
			c.commitLocked(ctx)
		}
		c.commitMu.Unlock()
		// a rebalance may now run: onRevoked commits the pending batch first
		c.client.AllowRebalance()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// handle gives the records to h, each worker its partitions' in order,
// and returns those handled: all of them unless ctx ended.
func (c *Consumer) handle(ctx context.Context, h Handler, records []*kgo.Record) []*kgo.Record {
	if c.workers == 1 {
		for i, r := range records {
			if h.Message(ctx, 0, r) != nil {
				return records[:i]
			}
		}
		return records
	}
	per := c.perWorker
	for _, r := range records {
		w := int(uint32(r.Partition)) % c.workers
		per[w] = append(per[w], r)
	}
	var wg sync.WaitGroup
	for w := range per {
		if len(per[w]) == 0 {
			continue
		}
		wg.Go(func() {
			for i, r := range per[w] {
				if h.Message(ctx, w, r) != nil {
					per[w] = per[w][:i]
					return
				}
			}
		})
	}
	wg.Wait()
	done := records[:0] // per holds its own copies of the pointers
	for w := range per {
		done = append(done, per[w]...)
		clear(per[w])
		per[w] = per[w][:0]
	}
	return done
}

// recordPool lends franz-go the memory of fetched batches (the records and
// their decompressed bytes), which comes back once a batch's offsets are
// committed or given up (recycle): allocated afresh, it cost the kafka input
// a tenth of its CPU in garbage collection.
type recordPool struct {
	bytes, records sync.Pool // *[]byte, *[]kgo.Record
}

func (p *recordPool) GetDecompressBytes([]byte, kgo.CompressionCodecType) []byte {
	if b, ok := p.bytes.Get().(*[]byte); ok {
		return *b
	}
	return nil // franz-go allocates what it needs, and puts it back
}

func (p *recordPool) PutDecompressBytes(b []byte) { p.bytes.Put(&b) }

func (p *recordPool) GetRecords(n int) []kgo.Record {
	if r, ok := p.records.Get().(*[]kgo.Record); ok && cap(*r) >= n {
		return (*r)[:0]
	}
	return make([]kgo.Record, 0, n)
}

func (p *recordPool) PutRecords(r []kgo.Record) { p.records.Put(&r) }

// recycle gives the records' memory back to the pool: nothing may use them
// after (the handler copies what it keeps).
func recycle(records []*kgo.Record) {
	for _, r := range records {
		r.Recycle()
	}
}

// commitTimeout bounds one batch's wait and commit at stop.
const commitTimeout = time.Minute

// afterStop is ctx, except that its end (the daemon stopping) leaves grace
// more before the context returned ends: a stop does not cut short the
// delivery and commit of a batch in hand.
func afterStop(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		timer = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return out, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// commitPending commits the pending batch, if any (commitLocked under commitMu).
func (c *Consumer) commitPending(ctx context.Context) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.commitLocked(ctx)
}

// commitLocked waits until the pending batch is delivered and commits its
// offsets; a stop, before or during, leaves it commitTimeout. It holds
// commitMu.
func (c *Consumer) commitLocked(ctx context.Context) {
	b := c.pending
	if b == nil {
		return
	}
	c.pending = nil
	defer recycle(b.records)
	c.batches.Add(1)
	c.messages.Add(uint64(len(b.records)))
	ctx, cancel := afterStop(ctx, commitTimeout)
	defer cancel()
	if err := b.wait(ctx); err != nil {
		c.commitErrors.Add(1)
		c.logger.Error("kafka: the outputs did not confirm a batch: its offsets are not committed, it will be read again", "messages", len(b.records), "error", err)
		return
	}
	if err := c.client.CommitRecords(ctx, b.records...); err != nil {
		c.commitErrors.Add(1)
		c.logger.Error("kafka: commit failed: the batch will be read again (its documents keep their ids)", "group", c.cfg.Group, "messages", len(b.records), "error", err)
		return
	}
	c.commits.Add(1)
	c.mu.Lock()
	for _, r := range b.records {
		if pos := c.positions[partition{r.Topic, r.Partition}]; pos != nil && r.Offset+1 > pos.committed {
			pos.committed = r.Offset + 1
		}
	}
	c.mu.Unlock()
}

func (c *Consumer) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	offsets := c.committedOffsets(ctx, cl, assigned)
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range assigned {
		for _, p := range ps {
			c.assigned.Add(1)
			c.positions[partition{topic, p}] = &position{committed: offsets[partition{topic, p}]}
		}
	}
	c.logger.Info("kafka: partitions assigned", "group", c.cfg.Group, "partitions", describe(assigned))
}

// committedOffsets are the group's committed offsets of the partitions, for
// the lag until this member commits its own.
func (c *Consumer) committedOffsets(ctx context.Context, cl *kgo.Client, ps map[string][]int32) map[partition]int64 {
	out := map[partition]int64{}
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, c.cfg.Group)
	if err != nil {
		return out
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && slices.Contains(ps[o.Topic], o.Partition) {
			out[partition{o.Topic, o.Partition}] = o.At
		}
	})
	return out
}

// onRevoked runs between polls (BlockRebalanceOnPoll), while Run waits in
// the next: it commits the batch still pending before the partitions go,
// and forgets them.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	c.commitPending(ctx)
	c.forget(revoked, &c.revoked)
	c.logger.Info("kafka: partitions revoked", "group", c.cfg.Group, "partitions", describe(revoked))
}

// onLost: the group went on without this member, whose commits would now be
// refused; the pending batch is read again by the partitions' new owners.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.commitMu.Lock()
	if c.pending != nil {
		recycle(c.pending.records)
		c.pending = nil
	}
	c.commitMu.Unlock()
	c.forget(lost, &c.lost)
	c.logger.Warn("kafka: partitions lost (the group went on without this member): what was not committed is read again", "group", c.cfg.Group, "partitions", describe(lost))
}

func (c *Consumer) forget(ps map[string][]int32, n *atomic.Uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ids := range ps {
		for _, p := range ids {
			n.Add(1)
			delete(c.positions, partition{topic, p})
		}
	}
}

func describe(ps map[string][]int32) string {
	var s []byte
	for _, topic := range slices.Sorted(maps.Keys(ps)) {
		if len(s) > 0 {
			s = append(s, ' ')
		}
		s = append(s, topic...)
		for i, p := range slices.Sorted(slices.Values(ps[topic])) {
			if i == 0 {
				s = append(s, ':')
			} else {
				s = append(s, ',')
			}
			s = strconv.AppendInt(s, int64(p), 10)
		}
	}
	return string(s)
}

// Close leaves the group and closes the connections of a consumer started
// and not run (Run closes them at its end).
func (c *Consumer) Close() {
	if c.client != nil {
		c.client.Close()
	}
}

// Stats returns the counters so far.
func (c *Consumer) Stats() Stats {
	return Stats{Messages: c.messages.Load(), Batches: c.batches.Load(), Commits: c.commits.Load(), CommitErrors: c.commitErrors.Load(),
		FetchErrors: c.fetchErrors.Load(), Assigned: c.assigned.Load(), Revoked: c.revoked.Load(), Lost: c.lost.Load()}
}

// Lags returns the lag of every partition owned, by topic and partition.
func (c *Consumer) Lags() []Lag {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Lag, 0, len(c.positions))
	for p, pos := range c.positions {
		out = append(out, Lag{Topic: p.topic, Partition: p.id, Lag: max(pos.high-pos.committed, 0)})
	}
	slices.SortFunc(out, func(a, b Lag) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// kgoLogger passes franz-go's warnings and errors (retries, broker
// connections lost) to the logger.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	k.l.Log(context.Background(), lv, "kafka: "+msg, keyvals...)
}
