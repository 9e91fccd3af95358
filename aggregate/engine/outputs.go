package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/retention"
	"github.com/flowdex/flowdex/sink/file"
	"github.com/flowdex/flowdex/sink/kafka"
)

// output is what a pipeline writes to. Flush sends what Write has buffered:
// pipelines call it at the end of each purge. Sync also waits until what
// Write accepted before it is delivered (or kept for later, as a spool
// does): a consumer commits its source's position after it.
type output interface {
	Start(ctx context.Context) error
	Write(ctx context.Context, doc *document.Document, id string, t time.Time) error
	Flush(ctx context.Context) error
	Sync(ctx context.Context) error
	Stop(ctx context.Context) error
}

// marker is an output whose Sync can wait for part of what it was given:
// the documents written before Mark (the Elasticsearch output). A Kafka
// input commits one batch while the next is written.
type marker interface {
	Mark() uint64
	SyncTo(ctx context.Context, mark uint64) error
}

// DeliveryReport is what an output says about its documents after Stop.
type DeliveryReport struct {
	Written, Indexed, Duplicates, Failed, DeadLettered, Retried uint64
	DeadLetterFile                                              string
	Spooled                                                     uint64 // documents waiting in the spool at stop
	SpoolDir                                                    string
}

type reporter interface{ report() DeliveryReport }

type namedOutput struct {
	name string
	output
}

// newOutput makes output name of cfg; an error is a setting.KeyError
// naming the key at fault where it can.
func newOutput(name string, cfg *config.Config, stdout io.Writer, logger *slog.Logger) (output, error) {
	switch o := cfg.Outputs[name].(type) {
	case *config.PrintOutput:
		fc := o.Configuration
		fc.Stdout, fc.Name, fc.Logger = stdout, name, logger.With("output", name)
		return printOutput{file.New(fc)}, nil
	case *config.ElasticsearchOutput:
		return newElasticsearch(name, o, logger)
	case *config.KafkaOutput:
		s, err := kafka.New(name, o.Configuration, logger.With("output", name))
		if err != nil {
			return nil, err
		}
		return kafkaOutput{s}, nil
	}
	return nil, fmt.Errorf("output %q: unknown type", name)
}

// printOutput adapts the file sink, which writes each document as it comes.
type printOutput struct{ *file.Sink }

func (p printOutput) Write(ctx context.Context, doc *document.Document, id string, t time.Time) error {
	return p.Sink.WriteAt(ctx, doc, id, t)
}

// Sync writes what is buffered out: the file sink holds nothing else.
func (p printOutput) Sync(ctx context.Context) error { return p.Flush(ctx) }

func (p printOutput) report() DeliveryReport {
	n := p.Written()
	return DeliveryReport{Written: n, Indexed: n}
}

// kafkaOutput adapts the Kafka sink, whose messages carry the document's id
// in a header: flowdex's kafka input indexes a record the sink sent twice
// (a spool replay) as one document.
type kafkaOutput struct{ *kafka.Sink }

func (k kafkaOutput) Write(ctx context.Context, doc *document.Document, id string, _ time.Time) error {
	return k.Sink.Write(ctx, doc, id)
}

// report counts as indexed what the brokers acknowledged.
func (k kafkaOutput) report() DeliveryReport {
	s := k.Stats()
	return DeliveryReport{Written: s.Written, Indexed: s.Produced + s.Replayed, Failed: s.Failed + s.SpoolLost, Retried: s.Retried,
		Spooled: uint64(s.SpoolRecords), SpoolDir: k.SpoolDir()}
}

// newElasticsearch makes the Elasticsearch sink of output name, and its
// retention.
func newElasticsearch(name string, o *config.ElasticsearchOutput, logger *slog.Logger) (*esOutput, error) {
	s, err := elasticsearch.New(o.Configuration, logger.With("output", name))
	if err != nil {
		return nil, err
	}
	out := &esOutput{Sink: s, deadLetter: o.DeadLetterFile, spoolDir: o.SpoolDir, sinkConfig: o.Configuration}
	if out.retention, err = newRetention(name, o, logger); err != nil {
		return nil, err
	}
	return out, nil
}

type esOutput struct {
	*elasticsearch.Sink
	deadLetter string
	spoolDir   string
	retention  *retention.Retention        // nil without retention; started by the daemon only
	sinkConfig elasticsearch.Configuration // for the web view's searches: the same nodes, TLS and credentials
}

// Stop ends retention's loop, then stops the sink.
func (e *esOutput) Stop(ctx context.Context) error {
	if e.retention != nil {
		e.retention.Stop()
	}
	return e.Sink.Stop(ctx)
}

// Start makes the dead-letter file's directory (the owner's only, as the
// file: they hold flow records), then starts the sink.
func (e *esOutput) Start(ctx context.Context) error {
	if e.deadLetter != "" {
		if err := os.MkdirAll(filepath.Dir(e.deadLetter), 0o700); err != nil {
			return fmt.Errorf("dead-letter file: %w", err)
		}
	}
	return e.Sink.Start(ctx)
}

func (e *esOutput) report() DeliveryReport {
	s := e.Stats()
	return DeliveryReport{Written: s.Written, Indexed: s.Indexed, Duplicates: s.Duplicates, Failed: s.Failed,
		DeadLettered: s.DeadLettered, Retried: s.Retried, DeadLetterFile: e.deadLetter,
		Spooled: uint64(s.SpoolDocs), SpoolDir: e.spoolDir}
}
