package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/retention"
	"github.com/flowdex/flowdex/sink/file"
)

// output is what a pipeline writes to. Flush sends what Write has buffered:
// pipelines call it at the end of each purge.
type output interface {
	Start(ctx context.Context) error
	Write(ctx context.Context, doc *document.Document, id string, t time.Time) error
	Flush(ctx context.Context) error
	Stop(ctx context.Context) error
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
		fc.Stdout = stdout
		return printOutput{file.New(fc)}, nil
	case *config.ElasticsearchOutput:
		return newElasticsearch(name, o, logger)
	}
	return nil, fmt.Errorf("output %q: unknown type", name)
}

// printOutput adapts the file sink, which writes each document as it comes.
type printOutput struct{ *file.Sink }

func (p printOutput) Write(ctx context.Context, doc *document.Document, id string, _ time.Time) error {
	return p.Sink.Write(ctx, doc, id)
}

func (p printOutput) report() DeliveryReport {
	n := p.Written()
	return DeliveryReport{Written: n, Indexed: n}
}

// newElasticsearch makes the Elasticsearch sink of output name.
func newElasticsearch(name string, o *config.ElasticsearchOutput, logger *slog.Logger) (*esOutput, error) {
	ec := elasticsearch.DefaultConfiguration()
	ec.URLs = o.URLs
	ec.Username = o.Username
	var err error
	if ec.Password, err = readSecret("password", o.Password, o.PasswordFile, o.PasswordEnv); err != nil {
		return nil, err
	}
	if ec.APIKey, err = readSecret("api_key", o.APIKey, o.APIKeyFile, o.APIKeyEnv); err != nil {
		return nil, err
	}
	ec.CACert = o.CACert
	ec.InsecureSkipVerify = o.TLSInsecure
	ec.Index = o.Index
	ec.IndexLocation = o.IndexTimezone.Get()
	ec.DocType = o.DocType
	ec.Template = o.Template
	ec.TemplateName = o.TemplateName
	ec.IndexBodyFile = o.IndexBodyFile
	ec.Shards = o.Shards
	if o.Replicas != nil {
		ec.Replicas = *o.Replicas
	}
	ec.RefreshInterval = o.RefreshInterval
	ec.FlushDocs = o.FlushDocs // -1: no count limit
	ec.FlushBytes = o.FlushBytes
	ec.FlushInterval = o.FlushInterval.Duration
	ec.Workers = o.Workers
	ec.MaxRetries = o.MaxRetries
	ec.DeadLetterFile = o.DeadLetterFile
	if ec.DeadLetterFile != "" {
		// found now rather than when the first rejected document needs it: the
		// directory exists, or Start can make it under an existing one
		if err := creatableDir(filepath.Dir(ec.DeadLetterFile)); err != nil {
			return nil, setting.Errorf("dead_letter_file", "%s: %w", ec.DeadLetterFile, err)
		}
	}
	if o.SpoolDir != "" {
		ec.SpoolDir = o.SpoolDir
		if err := creatableDir(ec.SpoolDir); err != nil {
			return nil, setting.Errorf("spool_dir", "%s: %w", ec.SpoolDir, err)
		}
	}
	ec.SpoolMaxBytes = o.SpoolMaxBytes
	ec.RequestTimeout = o.RequestTimeout.Duration
	s, err := elasticsearch.New(ec, logger.With("output", name))
	if err != nil {
		return nil, err
	}
	out := &esOutput{Sink: s, deadLetter: ec.DeadLetterFile, spoolDir: ec.SpoolDir, sinkConfig: ec}
	if out.retention, err = newRetention(name, o, ec, logger); err != nil {
		return nil, err
	}
	return out, nil
}

// readSecret is a secret given in the configuration, in a file (NAME_file)
// or in an environment variable (NAME_env).
func readSecret(name, value, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", setting.Key(name+"_file", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", setting.Errorf(name+"_env", "%s is not set", env)
		}
		return v, nil
	}
	return value, nil
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

// Start makes the dead-letter file's directory, then starts the sink.
func (e *esOutput) Start(ctx context.Context) error {
	if e.deadLetter != "" {
		if err := os.MkdirAll(filepath.Dir(e.deadLetter), 0o755); err != nil {
			return fmt.Errorf("dead-letter file: %w", err)
		}
	}
	return e.Sink.Start(ctx)
}

// creatableDir reports an error unless dir is a directory or can be made inside
// the nearest directory above it that exists.
func creatableDir(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		switch {
		case err == nil && st.IsDir():
			return nil
		case err == nil:
			return fmt.Errorf("%s is not a directory", d)
		case !errors.Is(err, os.ErrNotExist):
			return err
		case filepath.Dir(d) == d:
			return fmt.Errorf("no directory above %s exists", dir)
		}
	}
}

func (e *esOutput) report() DeliveryReport {
	s := e.Stats()
	return DeliveryReport{Written: s.Written, Indexed: s.Indexed, Duplicates: s.Duplicates, Failed: s.Failed,
		DeadLettered: s.DeadLettered, Retried: s.Retried, DeadLetterFile: e.deadLetter,
		Spooled: uint64(s.SpoolDocs), SpoolDir: e.spoolDir}
}
