package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/collector/kafka"
	"github.com/flowdex/flowdex/collector/pmacct"
	"github.com/flowdex/flowdex/internal/kafkaclient"
)

// kafkaInput reads pmacct JSON messages from Kafka into its pipeline: the
// consumer's handler. Each message is read as a pmacct file of its own
// (pmacct's kafka_multi_values puts several records in one, a line each);
// its documents' ids derive from topic, partition, offset and line, so that
// a message read again after a crash or a rebalance indexes nothing twice.
// A message of one record that carries its id (flowdex's kafka output, see
// headerID) keeps that id instead: the same record sent twice by the output
// is then one document too.
type kafkaInput struct {
	name     string
	cfg      *config.KafkaInput
	p        *pipeline
	c        *counters
	logger   *slog.Logger
	consumer *kafka.Consumer

	zone    *time.Location
	workers []kafkaWorker // one per consumer worker

	deadLetter *os.File // nil without dead_letter_file
	dirty      bool     // written to since the last Sync
	badLog     ratelog.Limiter

	mu                                 sync.Mutex // deadLetter against Stop
	messages, records, markers, badMsg atomic.Uint64
	deadLettered, headerIDs            atomic.Uint64
}

// kafkaWorker is the reading state of one of the consumer's workers.
type kafkaWorker struct {
	body   bytes.Reader
	reader *pmacct.Reader
	ids    map[kafkaPartition]*idMaker
}

type kafkaPartition struct {
	topic     string
	partition int32
}

func newKafkaInput(in *config.KafkaInput, p *pipeline, c *counters, logger *slog.Logger) *kafkaInput {
	logger = logger.With("input", in.Name)
	k := &kafkaInput{name: in.Name, cfg: in, p: p, c: c, logger: logger, zone: in.Timezone.Get(),
		consumer: kafka.New(in.Configuration, logger), badLog: ratelog.Limiter{Every: time.Second}}
	k.workers = make([]kafkaWorker, k.consumer.Workers())
	for i := range k.workers {
		w := &k.workers[i]
		w.ids = map[kafkaPartition]*idMaker{}
		w.reader = pmacct.NewReader(&w.body, pmacct.Options{Format: pmacct.JSON}, "kafka input "+strconv.Quote(in.Name), logger)
	}
	return k
}

// start opens the dead-letter file and connects the consumer: a broker that
// does not answer or a topic that does not exist fails the start.
func (k *kafkaInput) start(ctx context.Context) error {
	if f := k.cfg.DeadLetterFile; f != "" {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return fmt.Errorf("dead-letter file: %w", err)
		}
		fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("dead-letter file: %w", err)
		}
		k.deadLetter = fh
	}
	if err := k.consumer.Start(ctx); err != nil {
		k.close()
		return err
	}
	return nil
}

// run consumes until ctx is done, then logs what the input did.
func (k *kafkaInput) run(ctx context.Context) error {
	err := k.consumer.Run(ctx, k)
	st := k.consumer.Stats()
	k.logger.Info("kafka input stopped", "messages", k.messages.Load(), "records", k.records.Load(), "markers", k.markers.Load(),
		"bad_messages", k.badMsg.Load(), "dead_lettered", k.deadLettered.Load(), "commits", st.Commits, "commit_errors", st.CommitErrors,
		"partitions_assigned", st.Assigned, "partitions_revoked", st.Revoked, "partitions_lost", st.Lost)
	k.close()
	return err
}

func (k *kafkaInput) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.deadLetter != nil {
		if err := k.deadLetter.Close(); err != nil {
			k.logger.Error("dead-letter file", "error", err)
		}
		k.deadLetter = nil
	}
}

// Message reads one message's records into the pipeline, with the reading
// state of the worker.
func (k *kafkaInput) Message(ctx context.Context, worker int, r *kgo.Record) error {
	k.messages.Add(1)
	w := &k.workers[worker]
	part := kafkaPartition{r.Topic, r.Partition}
	ids := w.ids[part]
	if ids == nil {
		ids = newIDMaker("kafka|" + r.Topic + "|" + strconv.FormatInt(int64(r.Partition), 10))
		w.ids[part] = ids
	}
	ids.offset = r.Offset
	ids.given = headerID(r)
	fromHeader := ids.given != ""
	w.body.Reset(r.Value)
	w.reader.Reset(&w.body)
	before := w.reader.Stats()
	err := k.p.consume(ctx, w.reader, ids, k.zone, k.c, k.logger)
	ids.given = ""
	if err != nil {
		return err
	}
	after := w.reader.Stats()
	k.records.Add(uint64(after.Records - before.Records))
	if fromHeader {
		k.headerIDs.Add(uint64(after.Records - before.Records))
	}
	k.markers.Add(uint64(after.Markers - before.Markers))
	if after.BadLines > before.BadLines || after.Records+after.Markers == before.Records+before.Markers {
		k.bad(r, after.BadLines-before.BadLines)
	}
	return nil
}

// headerID is the document id r carries (kafkaclient.DocumentID), as a
// string, when r holds one line: several records cannot share an id, and
// those of a multi-line message keep their offset and line ids. "" without.
//
// The id is used as it is, not namespaced by topic or partition: it is the
// one the collector's pipeline made (flows.go, the one its own
// Elasticsearch output would use), a hash of the pipeline's name, a random
// number drawn at the collector's start and the flush time in nanoseconds,
// then the entry's place in the flush. Two collectors' ids collide only if
// the three are equal (the pipeline name and the nanosecond may well be:
// the random number is there for that) or by a 64-bit hash collision:
// negligible. The copies of a replayed record can only differ in where
// they are in the log, so a namespace of topic, partition or producer
// would make them two documents again. Whoever can write to the topic
// could pick ids, but could as well write records.
func headerID(r *kgo.Record) string {
	id := kafkaclient.DocumentID(r)
	if id == nil || bytes.IndexByte(bytes.TrimRight(r.Value, "\r\n"), '\n') >= 0 {
		return ""
	}
	return string(id)
}

// bad counts, logs and dead-letters a message that is not (all) pmacct
// JSON; its good lines, if any, were indexed, and its offset is committed
// with the batch's: it cannot block its partition.
func (k *kafkaInput) bad(r *kgo.Record, badLines int64) {
	n := k.badMsg.Add(1)
	if ok, suppressed := k.badLog.Allow(); ok {
		k.logger.Warn("kafka: a message that is not pmacct JSON", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
			"bad_lines", badLines, "snippet", snippet(r.Value), "bad_messages", n, "suppressed", suppressed)
	}
	if k.deadLetter == nil {
		return
	}
	line, _ := json.Marshal(struct {
		Topic     string    `json:"topic"`
		Partition int32     `json:"partition"`
		Offset    int64     `json:"offset"`
		Timestamp time.Time `json:"timestamp"`
		Message   string    `json:"message"`
	}{r.Topic, r.Partition, r.Offset, r.Timestamp, string(r.Value)})
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.deadLetter == nil {
		return
	}
	if _, err := k.deadLetter.Write(append(line, '\n')); err != nil {
		k.logger.Error("dead-letter file: write failed", "file", k.cfg.DeadLetterFile, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "error", err)
		return
	}
	k.dirty = true
	k.deadLettered.Add(1)
}

// snippetLen bounds the part of a bad message logged.
const snippetLen = 120

func snippet(b []byte) string {
	if len(b) > snippetLen {
		return strconv.Quote(string(b[:snippetLen])) + "…"
	}
	return strconv.Quote(string(b))
}

// Handled returns a wait for the documents of the messages read so far:
// until every output of the pipeline has delivered them (an output that
// cannot tell them from later ones waits for those too), and the
// dead-letter file is on disk.
func (k *kafkaInput) Handled() func(context.Context) error {
	waits := make([]func(context.Context) error, len(k.p.outputs))
	for i, o := range k.p.outputs {
		waits[i] = o.Sync
		if m, ok := o.output.(marker); ok {
			mark := m.Mark()
			waits[i] = func(ctx context.Context) error { return m.SyncTo(ctx, mark) }
		}
	}
	return func(ctx context.Context) error {
		var errs []error
		for i, o := range k.p.outputs {
			if err := waits[i](ctx); err != nil {
				errs = append(errs, fmt.Errorf("output %q: %w", o.name, err))
			}
		}
		k.mu.Lock()
		if k.dirty && k.deadLetter != nil {
			if err := k.deadLetter.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("dead-letter file: %w", err))
			} else {
				k.dirty = false
			}
		}
		k.mu.Unlock()
		return errors.Join(errs...)
	}
}
