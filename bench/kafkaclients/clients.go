package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/twmb/franz-go/pkg/kgo"
)

// producerFunc connects a client's producer to o.topic. send queues one
// record for partition p, without waiting; the client calls ack for n
// records acknowledged, or with the error of a record that failed. stop
// flushes and closes.
type producerFunc func(ctx context.Context, o options, ack func(n int, err error)) (send func(key, value []byte, p int32), stop func() error, err error)

// consumerFunc reads o.topic in group o.group, hands each record to t.seen
// and, after each batch, commits it and tells t.committed; it returns
// (having left the group) once t.done is closed.
type consumerFunc func(ctx context.Context, o options, t *tracker) error

type client struct {
	producer producerFunc
	consumer consumerFunc
}

var clientsByName = map[string]client{
	"franz-go": {franzProducer, franzConsumer},
	"sarama":   {saramaProducer, saramaConsumer},
	"kafka-go": {kafkaGoProducer, kafkaGoConsumer},
}

// produce sends o.records records, at most o.inflight unacknowledged, and
// measures from the first send to the last acknowledgement.
func produce(ctx context.Context, o options, values [][]byte, newProducer producerFunc) (result, error) {
	var (
		r       result
		start   usage
		acked   atomic.Int64
		once    sync.Once
		failure error
	)
	sem := make(chan struct{}, o.inflight)
	done := make(chan struct{})
	finish := func(err error) {
		once.Do(func() {
			failure = err
			if err == nil {
				start.since(&r)
			}
			close(done)
		})
	}
	ack := func(n int, err error) {
		if err != nil {
			finish(err)
			return
		}
		for range n {
			<-sem
		}
		if acked.Add(int64(n)) == int64(o.records) {
			finish(nil)
		}
	}
	send, stop, err := newProducer(ctx, o, ack)
	if err != nil {
		return r, err
	}
	start = now()
send:
	for i := range o.records {
		select {
		case sem <- struct{}{}:
		case <-done:
			break send
		case <-ctx.Done():
			finish(ctx.Err())
			break send
		}
		k, v := message(i, values)
		send(k, v, partitionOf(k))
	}
	select {
	case <-done:
	case <-ctx.Done():
		finish(ctx.Err())
	}
	stopErr := stop()
	r.Records = acked.Load()
	return r, errors.Join(failure, stopErr)
}

// tracker checks what a consumer reads (each partition's offsets in order,
// none twice or skipped) and stamps the end of the phase.
type tracker struct {
	records int64
	// per partition, each written by the one goroutine reading it
	next                 [partitions]int64
	keyBytes, valueBytes [partitions]int64

	startOnce sync.Once
	start     usage
	committed atomic.Int64
	commits   atomic.Int64
	doneOnce  sync.Once
	done      chan struct{}
	err       error
	r         result
}

// seen checks one record; the first starts the clock (the group is joined).
func (t *tracker) seen(p int32, offset int64, key, value []byte) error {
	t.startOnce.Do(func() { t.start = now() })
	if p < 0 || p >= partitions {
		return fmt.Errorf("record of partition %d", p)
	}
	if offset != t.next[p] {
		return fmt.Errorf("partition %d: offset %d, expected %d (a record skipped or read twice)", p, offset, t.next[p])
	}
	t.next[p]++
	t.keyBytes[p] += int64(len(key))
	t.valueBytes[p] += int64(len(value))
	return nil
}

// committedBatch counts a commit of n records; the last stops the clock.
func (t *tracker) committedBatch(n int) {
	t.commits.Add(1)
	if t.committed.Add(int64(n)) == t.records {
		t.finish(nil)
	}
}

func (t *tracker) finish(err error) {
	t.doneOnce.Do(func() {
		t.err = err
		if err == nil {
			t.start.since(&t.r)
		}
		close(t.done)
	})
}

// consume reads o.records records and measures from the first record to the
// commit of the last.
func consume(ctx context.Context, o options, run consumerFunc) (result, error) {
	t := &tracker{records: int64(o.records), done: make(chan struct{})}
	begin := time.Now()
	err := run(ctx, o, t)
	returned := time.Now()
	if err == nil {
		select {
		case <-t.done:
		default:
			err = errors.New("the consumer returned before the last commit")
		}
	}
	t.finish(err)
	r := t.r
	r.Records, r.Commits, r.Offsets = t.committed.Load(), t.commits.Load(), t.next
	r.KeyBytes, r.ValueBytes = sum(t.keyBytes), sum(t.valueBytes)
	if err == nil && t.err == nil {
		r.Join, r.Leave = t.start.at.Sub(begin), returned.Sub(t.start.at.Add(r.Wall))
	}
	return r, errors.Join(err, t.err)
}

// franz-go: flowdex's settings (sink/kafka, collector/kafka) with the
// defaults of kgo otherwise: acks from all in-sync replicas and idempotence
// are kgo's defaults, linger 10 ms, batches up to 1 MB.

func franzProducer(ctx context.Context, o options, ack func(int, error)) (func([]byte, []byte, int32), func() error, error) {
	codec := kgo.NoCompression()
	if o.codec == "snappy" {
		codec = kgo.SnappyCompression()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), kgo.DefaultProduceTopic(o.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(o.inflight),
		kgo.ProducerBatchCompression(codec))
	if err != nil {
		return nil, nil, err
	}
	// records are reused, as the kafka output does
	pool := &sync.Pool{New: func() any { return new(kgo.Record) }}
	promise := func(r *kgo.Record, err error) {
		*r = kgo.Record{}
		pool.Put(r)
		ack(1, err)
	}
	send := func(k, v []byte, p int32) {
		r := pool.Get().(*kgo.Record)
		r.Key, r.Value, r.Partition = k, v, p
		cl.Produce(ctx, r, promise)
	}
	return send, func() error { cl.Close(); return nil }, nil
}

func franzConsumer(ctx context.Context, o options, t *tracker) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), kgo.ConsumerGroup(o.group), kgo.ConsumeTopics(o.topic),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
	if err != nil {
		return err
	}
	defer cl.Close()
	var batch []*kgo.Record
	for {
		select {
		case <-t.done:
			return nil
		default:
		}
		fs := cl.PollRecords(ctx, o.pollRecords)
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("fetch %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		batch = batch[:0]
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if err := t.seen(r.Partition, r.Offset, r.Key, r.Value); err != nil {
				return err
			}
			batch = append(batch, r)
		}
		if len(batch) > 0 {
			if err := cl.CommitRecords(ctx, batch...); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			t.committedBatch(len(batch))
		}
		cl.AllowRebalance()
	}
}

// sarama: the protocol version is the newest sarama knows (it does not
// negotiate one); idempotence needs one request in flight per broker.

func saramaConfig(o options) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "kafkaclients"
	cfg.Version = sarama.MaxVersion
	return cfg
}

func saramaProducer(_ context.Context, o options, ack func(int, error)) (func([]byte, []byte, int32), func() error, error) {
	cfg := saramaConfig(o)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	if o.codec == "snappy" {
		cfg.Producer.Compression = sarama.CompressionSnappy
	}
	p, err := sarama.NewAsyncProducer(o.brokers, cfg)
	if err != nil {
		return nil, nil, err
	}
	pool := &sync.Pool{New: func() any { return new(sarama.ProducerMessage) }}
	var wg sync.WaitGroup
	wg.Go(func() {
		for m := range p.Successes() {
			*m = sarama.ProducerMessage{}
			pool.Put(m)
			ack(1, nil)
		}
	})
	wg.Go(func() {
		for e := range p.Errors() {
			ack(0, e.Err)
		}
	})
	send := func(k, v []byte, part int32) {
		m := pool.Get().(*sarama.ProducerMessage)
		m.Topic, m.Key, m.Value, m.Partition = o.topic, sarama.ByteEncoder(k), sarama.ByteEncoder(v), part
		p.Input() <- m
	}
	stop := func() error {
		err := p.Close()
		wg.Wait()
		return err
	}
	return send, stop, nil
}

func saramaConsumer(ctx context.Context, o options, t *tracker) error {
	cfg := saramaConfig(o)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	g, err := sarama.NewConsumerGroup(o.brokers, o.group, cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	h := saramaHandler{t: t, max: o.pollRecords, mu: new(sync.Mutex), pending: new(int)}
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{o.topic}, h); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() {
		for err := range g.Errors() {
			select {
			case errc <- err:
			default:
			}
		}
	}()
	select {
	case <-t.done:
		return nil
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// saramaHandler reads each claim (partition) in its own goroutine, a batch
// being what its channel holds (up to max), and marks it; the group's
// marked offsets are committed once max records have been marked since the
// last commit, and at the end. (A commit after each claim's batch, at most
// its channel's 256 messages, made some 4000 synchronous commits per 1M
// records: the commits, not the client, then set the pace.)
type saramaHandler struct {
	t       *tracker
	max     int
	mu      *sync.Mutex
	pending *int // marked, not committed; under mu
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	msgs := c.Messages()
	for {
		var m *sarama.ConsumerMessage
		select {
		case m = <-msgs:
		case <-s.Context().Done():
			return nil
		}
		if m == nil {
			return nil // revoked
		}
		n, last := 0, m
		for m != nil {
			if err := h.t.seen(m.Partition, m.Offset, m.Key, m.Value); err != nil {
				h.t.finish(err)
				return err
			}
			n, last = n+1, m
			if n == h.max {
				break
			}
			select {
			case m = <-msgs:
			default:
				m = nil
			}
		}
		s.MarkMessage(last, "")
		h.mu.Lock()
		*h.pending += n
		if *h.pending >= h.max || h.t.committed.Load()+int64(*h.pending) == h.t.records {
			s.Commit() // synchronous; its errors go to the group's Errors
			h.t.committedBatch(*h.pending)
			*h.pending = 0
		}
		h.mu.Unlock()
	}
}

// kafka-go: no idempotent producer. Its batch defaults (100 messages, 1 s
// timeout) are raised to batches bounded by bytes (1 MiB, its default) and
// franz-go's 10 ms linger.

func kafkaGoProducer(ctx context.Context, o options, ack func(int, error)) (func([]byte, []byte, int32), func() error, error) {
	w := &kafka.Writer{
		Addr:  kafka.TCP(o.brokers...),
		Topic: o.topic,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int {
			return int(partitionOf(m.Key))
		}),
		RequiredAcks: kafka.RequireAll,
		Async:        true,
		BatchSize:    o.inflight,
		BatchTimeout: 10 * time.Millisecond,
		Completion:   func(ms []kafka.Message, err error) { ack(len(ms), err) },
	}
	if o.codec == "snappy" {
		w.Compression = compress.Snappy
	}
	send := func(k, v []byte, _ int32) {
		if err := w.WriteMessages(ctx, kafka.Message{Key: k, Value: v}); err != nil {
			ack(0, err)
		}
	}
	return send, w.Close, nil
}

// kafkaGoConsumer commits every o.pollRecords records: the Reader hands out
// one message at a time and has no "what is buffered" poll, so a batch is a
// count (a real consumer would add a timer).
func kafkaGoConsumer(ctx context.Context, o options, t *tracker) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: o.brokers, GroupID: o.group, Topic: o.topic, StartOffset: kafka.FirstOffset})
	defer r.Close()
	var last [partitions]kafka.Message
	var has [partitions]bool
	commit := make([]kafka.Message, 0, partitions)
	n := 0
	for consumed := 0; consumed < o.records; {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		if err := t.seen(int32(m.Partition), m.Offset, m.Key, m.Value); err != nil {
			return err
		}
		last[m.Partition], has[m.Partition] = m, true
		n++
		consumed++
		if n < o.pollRecords && consumed < o.records {
			continue
		}
		commit = commit[:0]
		for p := range last {
			if has[p] {
				commit = append(commit, last[p])
			}
		}
		if err := r.CommitMessages(ctx, commit...); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		t.committedBatch(n)
		n, has = 0, [partitions]bool{}
	}
	return nil
}
