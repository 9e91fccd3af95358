// Package kafka publishes documents to Apache Kafka as pmacct's kafka plugin
// does: one pmacct JSON record per message, the bytes the print output
// writes for it (without the newline), to a topic named by a pattern
// (kafka_topic) under a partition key (kafka_partition_key), with pmacct's
// purge_init and purge_close messages around each purge when asked. Unlike
// pmacct's, each record carries its document id in a header
// (kafkaclient.IDHeader), so that flowdex's kafka input indexes a record
// sent twice (a spool replay) once.
//
// The producer is franz-go's kgo with its defaults on what matters for
// delivery: acks from all in-sync replicas and idempotent writes, so a
// retried produce request cannot write a record twice, and up to five
// requests in flight per broker without reordering a partition. Its buffer
// is bounded (max_buffered_records, max_buffered_bytes): when it is full,
// Write waits, and the pipeline with it, as it does for the Elasticsearch
// output.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/internal/kafkaclient"
	"github.com/flowdex/flowdex/sink/spool"
)

// DefaultTopic is pmacct's kafka_topic default.
const DefaultTopic = "pmacct.acct"

// Configuration of a Kafka output. The connection's keys (brokers, TLS,
// SASL) are kafkaclient's, at the same level as the others.
type Configuration struct {
	kafkaclient.Configuration
	// Topic is pmacct's kafka_topic: a name, or a pattern with $variables
	// (see variables) filled from each record.
	Topic string `toml:"topic"`
	// PartitionKey is pmacct's kafka_partition_key: the message key, from
	// which Kafka picks the partition; "" sends records without a key.
	PartitionKey string `toml:"partition_key"`
	// Compression of the record batches: "none", "gzip", "snappy", "lz4" or
	// "zstd" (librdkafka's compression.codec, which pmacct's kafka plugin
	// takes from kafka_config_file). The brokers store the batches as they
	// come, and consumers decompress them.
	Compression string `toml:"compression"`
	// Markers writes pmacct's purge_init and purge_close messages around
	// each purge (print_markers).
	Markers bool `toml:"markers"`
	// MaxBufferedRecords and MaxBufferedBytes bound what waits for the
	// brokers' acknowledgement; Write blocks when either is reached.
	MaxBufferedRecords int `toml:"max_buffered_records"`
	MaxBufferedBytes   int `toml:"max_buffered_bytes"`
	// DeliveryTimeout is how long a record may wait for the brokers before
	// it is failed (librdkafka's message.timeout.ms, pmacct's producer).
	DeliveryTimeout setting.Duration `toml:"delivery_timeout"`
	// StopGrace is how long, once the daemon is told to stop, what is
	// buffered has to be acknowledged; what is not then is counted failed.
	StopGrace setting.Duration `toml:"stop_grace"`
	// SpoolDir keeps, on disk, the records the brokers did not take: not
	// acknowledged within SpoolAfter, failed after the client's retries, or
	// still buffered when StopGrace ends. While anything is spooled, new
	// records join the queue on disk; a drain produces it oldest first when
	// the brokers answer, and a restart goes on with it. Empty: no spool;
	// such records are counted failed.
	SpoolDir string `toml:"spool_dir,omitempty"`
	// SpoolMaxBytes caps the spool; records that do not fit are counted
	// failed, with an error saying the spool is full.
	SpoolMaxBytes int64 `toml:"spool_max_bytes"`
	// SpoolAfter is, with a spool, how long a record waits for the brokers
	// before it goes to the spool (in place of DeliveryTimeout).
	SpoolAfter setting.Duration `toml:"spool_after"`
}

// DefaultConfiguration is pmacct's topic keyed by exporter on a local
// broker, 10000 records or 64 MiB in memory at most.
func DefaultConfiguration() Configuration {
	return Configuration{
		Configuration:      kafkaclient.DefaultConfiguration(),
		Topic:              DefaultTopic,
		PartitionKey:       "$peer_src_ip",
		Compression:        "snappy",
		MaxBufferedRecords: 10000,
		MaxBufferedBytes:   64 << 20,
		DeliveryTimeout:    setting.Duration{Duration: 5 * time.Minute},
		StopGrace:          setting.Duration{Duration: 15 * time.Second},
		SpoolMaxBytes:      1 << 30,
		SpoolAfter:         setting.Duration{Duration: 30 * time.Second},
	}
}

// Validate reports every setting New would refuse, each a setting.KeyError
// naming its key.
func (c Configuration) Validate() error {
	errs := []error{c.Configuration.Validate()}
	bad := func(key, format string, args ...any) { errs = append(errs, setting.Errorf(key, format, args...)) }
	topic, err := parsePattern(c.Topic)
	if err != nil {
		bad("topic", "%q: %v", c.Topic, err)
	} else if len(topic) == 0 {
		bad("topic", "empty (expected a topic name, e.g. %q)", DefaultTopic)
	}
	if _, err := parsePattern(c.PartitionKey); err != nil {
		bad("partition_key", "%q: %v", c.PartitionKey, err)
	}
	if _, static := topic.static(); c.Markers && err == nil && !static {
		bad("markers", "markers with a topic of variables (%q): a purge would span several topics (expected a topic without $variables, or markers = false)", c.Topic)
	}
	if _, ok := codecs[c.Compression]; !ok {
		bad("compression", "%q: expected one of none, gzip, snappy, lz4, zstd", c.Compression)
	}
	if c.MaxBufferedRecords <= 0 {
		bad("max_buffered_records", "%d: expected a positive number, e.g. 10000", c.MaxBufferedRecords)
	}
	if c.MaxBufferedBytes <= 0 {
		bad("max_buffered_bytes", "%d: expected a positive size, e.g. 67108864", c.MaxBufferedBytes)
	}
	if c.DeliveryTimeout.Duration <= 0 {
		bad("delivery_timeout", "%s: expected a positive duration, e.g. \"5m\"", c.DeliveryTimeout)
	}
	if c.StopGrace.Duration <= 0 {
		bad("stop_grace", "%s: expected a positive duration, e.g. \"15s\"", c.StopGrace)
	}
	errs = append(errs, spool.CheckLimits(c.SpoolMaxBytes, c.SpoolAfter)...)
	if c.SpoolDir != "" {
		if err := spool.CheckDir(c.SpoolDir); err != nil {
			bad("spool_dir", "%s: %v", c.SpoolDir, err)
		}
	}
	return errors.Join(errs...)
}

// codecs are the compressions by name.
var codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// LogValue shows the configuration, its password hidden.
func (c Configuration) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("connection", c.Configuration),
		slog.String("topic", c.Topic),
		slog.String("partition_key", c.PartitionKey),
		slog.String("compression", c.Compression),
		slog.Bool("markers", c.Markers),
		slog.Int("max_buffered_records", c.MaxBufferedRecords),
		slog.Int("max_buffered_bytes", c.MaxBufferedBytes),
		slog.Duration("delivery_timeout", c.DeliveryTimeout.Duration),
		slog.Duration("stop_grace", c.StopGrace.Duration),
		slog.String("spool_dir", c.SpoolDir),
		slog.Int64("spool_max_bytes", c.SpoolMaxBytes),
		slog.Duration("spool_after", c.SpoolAfter.Duration),
	)
}

// Stats are the sink's counters.
type Stats struct {
	Written  uint64 // records Write accepted
	Produced uint64 // records the brokers acknowledged
	Failed   uint64 // records given up: refused, or (without a spool) delivery timeout or not acknowledged at stop
	Retried  uint64 // produce requests that failed on their connection and were sent again
	Markers  uint64 // purge_init and purge_close messages acknowledged
	Queued   uint64 // records written, not yet acknowledged, failed nor spooled

	Spooled      uint64 // records written to the spool (each time)
	Replayed     uint64 // records read back from the spool and acknowledged (maybe again: see the README)
	SpoolLost    uint64 // spooled records and markers lost to damaged spool records
	SpoolBytes   int64  // what the spool holds now
	SpoolRecords int64  // records it holds now, and markers
}

// maxTopics bounds the interned names of a topic pattern.
const maxTopics = 4096

// Sink is a Kafka output. Write and Flush are safe for concurrent use.
type Sink struct {
	cfg         Configuration
	logger      *slog.Logger
	name        string // pmacct's writer_id: the output's name and the pid
	topic, key  pattern
	staticTopic string // the topic when it has no variable
	static      bool

	client    *kgo.Client
	pool      sync.Pool // *kgo.Record, with their Key and Value buffers
	stopWatch func() bool
	stopAt    atomic.Pointer[time.Time] // when the daemon was told to stop

	mu         sync.Mutex
	topics     map[string]string // dynamic topic names, interned
	scratch    []byte
	inPurge    bool
	purgeStart time.Time
	purged     int
	closed     bool

	spooler *spooler // nil without SpoolDir
	// records gathered before a spool append: half the client's buffer at most
	pendingMax, pendingMaxBytes int
	stopping                    chan struct{}
	drained                     chan struct{}

	written, produced, failed, retried, markers atomic.Uint64
	spooled, replayed, spoolLost                atomic.Uint64
	outstanding                                 atomic.Int64 // records and markers produced, their promise not yet called
	errLog                                      ratelog.Limiter
}

// New checks cfg and returns an inert sink; Start connects. name is the
// output's, in pmacct's writer_id of the markers.
func New(name string, cfg Configuration, logger *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, logger: logger, name: name + "/" + strconv.Itoa(os.Getpid()), topics: map[string]string{}}
	s.topic, _ = parsePattern(cfg.Topic)
	s.key, _ = parsePattern(cfg.PartitionKey)
	s.staticTopic, s.static = s.topic.static()
	s.errLog.Every = 10 * time.Second
	s.pool.New = func() any { return &kgo.Record{} }
	return s, nil
}

// startTimeout bounds the checks of Start.
const startTimeout = 30 * time.Second

// Start connects, checks that a broker answers and, for a topic without
// variables, that the topic exists: flowdex does not create topics. ctx is
// the daemon's: its end starts StopGrace.
func (s *Sink) Start(ctx context.Context) error {
	opts, err := s.cfg.Configuration.Options(s.logger)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	opts = append(opts,
		kgo.ProducerBatchCompression(codecs[s.cfg.Compression]),
		kgo.MaxBufferedRecords(s.cfg.MaxBufferedRecords),
		kgo.MaxBufferedBytes(s.cfg.MaxBufferedBytes),
		kgo.RecordDeliveryTimeout(s.deliveryTimeout()),
		kgo.WithHooks(retryHook{&s.retried}),
	)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := client.Ping(cctx); err != nil {
		client.Close()
		return fmt.Errorf("kafka: brokers %s: %w", s.cfg.Where(), err)
	}
	if s.static {
		topics, err := kadm.NewClient(client).ListTopics(cctx, s.staticTopic)
		if err == nil {
			err = topics[s.staticTopic].Err
		}
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			err = fmt.Errorf("topic %q does not exist (flowdex does not create topics: create it with kafka-topics.sh --create)", s.staticTopic)
		}
		if err != nil {
			client.Close()
			return fmt.Errorf("kafka: brokers %s: topic %q: %w", s.cfg.Where(), s.staticTopic, err)
		}
	}
	if s.cfg.SpoolDir != "" {
		sp, err := spool.Open(s.cfg.SpoolDir, s.cfg.SpoolMaxBytes, spool.Options{Entries: "records"})
		if err != nil {
			client.Close()
			return fmt.Errorf("kafka: %w", err)
		}
		s.spooler = &spooler{sp: sp, on: sp.Active(), kick: make(chan struct{}, 1)}
		s.pendingMax = max(1, min(pendingRecords, s.cfg.MaxBufferedRecords/2))
		s.pendingMaxBytes = max(1, min(pendingBytes, s.cfg.MaxBufferedBytes/2))
		if b := sp.Bytes(); b > 0 {
			s.logger.Info("kafka: the spool holds records of an earlier run; sending them first", "dir", s.cfg.SpoolDir,
				"records", sp.Entries(), "bytes", b)
		}
		s.stopping, s.drained = make(chan struct{}), make(chan struct{})
	}
	s.client = client
	if s.spooler != nil {
		go s.drain()
	}
	s.stopWatch = context.AfterFunc(ctx, func() {
		now := time.Now()
		s.stopAt.Store(&now)
	})
	return nil
}

// Write publishes doc, with id (if not "") in the record's
// kafkaclient.IDHeader; it blocks while the buffer is full. A record the
// brokers do not take is counted failed, not returned: Write only fails once
// the sink is stopped.
func (s *Sink) Write(ctx context.Context, doc *document.Document, id string) error {
	r := s.pool.Get().(*kgo.Record)
	r.Value = doc.AppendJSON(r.Value[:0], document.Pmacct)
	r.Key = s.key.appendTo(r.Key[:0], doc)
	if len(r.Key) == 0 {
		r.Key = nil // no key: kgo's partitioner picks (a nil key is not hashed)
	}
	setID(r, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.pool.Put(r)
		return errors.New("kafka: output stopped")
	}
	r.Topic = s.topicOf(doc)
	if s.cfg.Markers && !s.inPurge {
		s.inPurge, s.purgeStart, s.purged = true, time.Now(), 0
		s.produceMarker(ctx, s.markerJSON(false))
	}
	s.purged++
	s.written.Add(1)
	if q := s.spooler; q != nil {
		q.mu.Lock()
		if q.on { // behind what is queued, in order
			_ = s.addLocked(r, false) // a failure is counted
			q.mu.Unlock()
			s.putRecord(r)
			return nil
		}
		q.mu.Unlock()
	}
	s.outstanding.Add(1)
	s.client.Produce(ctx, r, s.delivered)
	return nil
}

// deliveryTimeout is how long the client tries a record: SpoolAfter with a
// spool, then the spool takes it.
func (s *Sink) deliveryTimeout() time.Duration {
	if s.cfg.SpoolDir != "" {
		return min(s.cfg.SpoolAfter.Duration, s.cfg.DeliveryTimeout.Duration)
	}
	return s.cfg.DeliveryTimeout.Duration
}

// setID puts id in r's IDHeader, reusing the header and its buffer of the
// record's last use: no allocation once the pool is warm.
func setID(r *kgo.Record, id string) {
	if id == "" {
		r.Headers = r.Headers[:0]
		return
	}
	var v []byte
	if cap(r.Headers) > 0 {
		v = r.Headers[:1][0].Value[:0]
	}
	r.Headers = append(r.Headers[:0], kgo.RecordHeader{Key: kafkaclient.IDHeader, Value: append(v, id...)})
}

func (s *Sink) putRecord(r *kgo.Record) {
	*r = kgo.Record{Key: r.Key[:0], Value: r.Value[:0], Headers: r.Headers[:0]}
	s.pool.Put(r)
}

// topicOf is the record's topic; s.mu held.
func (s *Sink) topicOf(doc *document.Document) string {
	if s.static {
		return s.staticTopic
	}
	s.scratch = s.topic.appendTo(s.scratch[:0], doc)
	if t, ok := s.topics[string(s.scratch)]; ok {
		return t
	}
	t := string(s.scratch)
	if len(s.topics) < maxTopics {
		s.topics[t] = t
	}
	return t
}

// delivered is the promise of a record.
func (s *Sink) delivered(r *kgo.Record, err error) {
	s.settle(r, err, false)
	s.putRecord(r)
}

// markerDelivered is the promise of a marker.
func (s *Sink) markerDelivered(r *kgo.Record, err error) { s.settle(r, err, true) }

// settle counts a record or marker the brokers took, spools one they did
// not take in time, or counts the record failed (a marker is logged only).
func (s *Sink) settle(r *kgo.Record, err error, marker bool) {
	switch {
	case err == nil && marker:
		s.markers.Add(1)
	case err == nil:
		s.produced.Add(1)
	case s.spooler != nil && spoolable(err):
		_ = s.spoolEntry(r, marker) // a failure is counted or logged
	default:
		if !marker {
			s.failed.Add(1)
		}
		s.logFailure(r, err)
	}
	s.outstanding.Add(-1)
}

func (s *Sink) logFailure(r *kgo.Record, err error) {
	if ok, held := s.errLog.Allow(); ok {
		s.logger.Error("kafka: record not delivered", "brokers", s.cfg.Where(), "topic", r.Topic,
			"partition", r.Partition, "error", err, "similar_errors_held_back", held)
	}
}

// markerJSON is pmacct's compose_purge_init_json or
// compose_purge_close_json as jansson writes them; s.mu held.
func (s *Sink) markerJSON(closing bool) []byte {
	b := []byte(`{"event_type": "purge_init", "writer_id": `)
	if closing {
		b = []byte(`{"event_type": "purge_close", "writer_id": `)
	}
	b = document.AppendString(b, s.name)
	if closing {
		b = append(b, `, "purged_entries": `...)
		b = strconv.AppendInt(b, int64(s.purged), 10)
		b = append(b, `, "total_entries": `...)
		b = strconv.AppendInt(b, int64(s.purged), 10)
		b = append(b, `, "duration": `...)
		b = strconv.AppendInt(b, int64(time.Since(s.purgeStart)/time.Second), 10)
	}
	return append(b, '}')
}

// produceMarker publishes a marker to the (static) topic, without a key
// unless the partition key has no variable; s.mu held. Markers take the
// records' path: while records are queued in the spool, behind them, and
// to the spool when the brokers do not take them, so that a replay keeps
// them around their records.
func (s *Sink) produceMarker(ctx context.Context, value []byte) {
	r := &kgo.Record{Topic: s.staticTopic, Value: value}
	if k, ok := s.key.static(); ok && k != "" {
		r.Key = []byte(k)
	}
	if q := s.spooler; q != nil {
		q.mu.Lock()
		if q.on {
			_ = s.addLocked(r, true) // a failure is logged
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
	}
	s.outstanding.Add(1)
	s.client.Produce(ctx, r, s.markerDelivered)
}

// Flush ends a purge. With markers, it waits until the purge's records are
// acknowledged, then publishes purge_close after them (pmacct sleeps a
// second instead); without, kgo sends records as they come and there is
// nothing to do.
func (s *Sink) Flush(ctx context.Context) error {
	if !s.cfg.Markers {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inPurge || s.closed {
		return nil
	}
	err := s.client.Flush(ctx)
	s.produceMarker(ctx, s.markerJSON(true))
	s.inPurge = false
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// Sync waits until every record written before is acknowledged or failed.
func (s *Sink) Sync(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	if err := s.client.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	s.flushPending() // what the brokers did not take is on disk
	return nil
}

// Stop waits StopGrace at most (from the daemon's stop, else from now) for
// what is buffered to be acknowledged, then closes the client: what is left
// is failed, and counted so.
func (s *Sink) Stop(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	if s.cfg.Markers {
		_ = s.Flush(ctx) // the last purge's purge_close; an error is counted and logged as the records'
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stopWatch()
	start := time.Now()
	if at := s.stopAt.Load(); at != nil {
		start = *at
	}
	gctx, cancel := context.WithDeadline(ctx, start.Add(s.cfg.StopGrace.Duration))
	defer cancel()
	if err := s.client.Flush(gctx); err != nil {
		s.logger.Warn("kafka: stop_grace is over; what the brokers did not acknowledge is counted failed",
			"brokers", s.cfg.Where(), "stop_grace", s.cfg.StopGrace.Duration, "records", s.Stats().Queued)
	}
	if s.spooler != nil {
		close(s.stopping)
	}
	s.client.Close() // fails what is still buffered, through the promises (to the spool, if any)
	s.awaitPromises()
	if q := s.spooler; q != nil {
		<-s.drained // the records it was producing stay in the spool
		s.flushPending()
		if err := q.sp.Close(); err != nil {
			s.logger.Error("kafka: closing the spool", "dir", s.cfg.SpoolDir, "error", err)
		}
		if b := q.sp.Bytes(); b > 0 {
			s.logger.Warn("kafka: records left in the spool, sent at the next start", "dir", s.cfg.SpoolDir,
				"records", q.sp.Entries(), "bytes", b)
		}
	}
	if n := s.outstanding.Load(); n > 0 { // not expected: Close fails every buffered record through its promise
		s.logger.Error("kafka: records neither acknowledged nor failed after close", "records", n, "waited", promiseWait)
	}
	if held := s.errLog.Pending(); held > 0 {
		s.logger.Error("kafka: more records not delivered", "brokers", s.cfg.Where(), "count", held)
	}
	return nil
}

// promiseWait bounds how long Stop waits for the promises of what Close
// failed.
const promiseWait = 10 * time.Second

// awaitPromises waits until every record and marker produced has had its
// promise called, or promiseWait. kgo calls the promises of the records
// Close fails from a goroutine of its own, after Close returns (records
// waiting for a producer ID, when the brokers were down from the start, are
// among them): without the wait they would miss the spool, and the counts.
func (s *Sink) awaitPromises() {
	for deadline := time.Now().Add(promiseWait); s.outstanding.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// SpoolDir is the spool's directory, "" without one.
func (s *Sink) SpoolDir() string { return s.cfg.SpoolDir }

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	st := Stats{Written: s.written.Load(), Produced: s.produced.Load(), Failed: s.failed.Load(),
		Retried: s.retried.Load(), Markers: s.markers.Load(),
		Spooled: s.spooled.Load(), Replayed: s.replayed.Load(), SpoolLost: s.spoolLost.Load()}
	if q := s.spooler; q != nil {
		st.SpoolBytes, st.SpoolRecords = q.sp.Bytes(), q.sp.Entries()
	}
	if done := st.Produced + st.Failed + st.Spooled; st.Written > done {
		st.Queued = st.Written - done
	}
	return st
}

// retryHook counts produce requests that failed on their connection: kgo
// sends their records again.
type retryHook struct{ n *atomic.Uint64 }

func (h retryHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	const produce = 0
	if key == produce && e2e.Err() != nil {
		h.n.Add(1)
	}
}
