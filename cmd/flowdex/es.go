package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowdex/flowdex/cmd/config"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/retention"
)

// newElasticsearch makes the Elasticsearch sink of output name.
func newElasticsearch(name string, o config.Output, cfg *config.Config, logger *slog.Logger) (*esOutput, error) {
	ec := elasticsearch.DefaultConfiguration()
	ec.URLs = o.URLs
	ec.Username = o.Username
	o.PasswordFile = cfg.Resolve(o.PasswordFile) // like every path, relative to the configuration
	password, err := secret(o)
	if err != nil {
		return nil, err
	}
	ec.Password = password
	o.APIKeyFile = cfg.Resolve(o.APIKeyFile)
	if ec.APIKey, err = readSecret("api_key", o.APIKey, o.APIKeyFile, o.APIKeyEnv); err != nil {
		return nil, err
	}
	ec.CACert = cfg.Resolve(o.CACert)
	ec.InsecureSkipVerify = o.TLSInsecure
	ec.Index = o.Index
	if ec.IndexLocation, err = config.LoadLocation(o.IndexTimezone); err != nil {
		return nil, err
	}
	ec.DocType = o.DocType
	ec.Template = *o.Template
	ec.TemplateName = o.TemplateName
	ec.IndexBodyFile = cfg.Resolve(o.IndexBodyFile)
	ec.Shards = o.Shards
	if o.Replicas != nil {
		ec.Replicas = *o.Replicas
	}
	ec.RefreshInterval = o.RefreshInterval
	ec.TimestampFields = o.TimestampFields
	ec.FlushDocs = o.FlushDocs // -1: no count limit
	ec.FlushBytes = o.FlushBytes
	ec.FlushInterval = o.FlushInterval.Duration
	ec.Workers = o.Workers
	ec.MaxRetries = *o.MaxRetries
	ec.DeadLetterFile = cfg.Resolve(o.DeadLetterFile)
	if ec.DeadLetterFile != "" {
		// found now rather than when the first rejected document needs it: the
		// directory exists, or Start can make it under an existing one
		if err := creatableDir(filepath.Dir(ec.DeadLetterFile)); err != nil {
			return nil, fmt.Errorf("dead_letter_file %s: %w", ec.DeadLetterFile, err)
		}
	}
	if o.SpoolDir != "" {
		ec.SpoolDir = cfg.Resolve(o.SpoolDir)
		if err := creatableDir(ec.SpoolDir); err != nil {
			return nil, fmt.Errorf("spool_dir %s: %w", ec.SpoolDir, err)
		}
	}
	if o.SpoolMaxBytes > 0 {
		ec.SpoolMaxBytes = o.SpoolMaxBytes
	}
	if o.RequestTimeout.Duration > 0 {
		ec.RequestTimeout = o.RequestTimeout.Duration
	}
	if ec.InputLocation, err = inputLocation(name, cfg); err != nil {
		return nil, err
	}
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

// inputLocation is the time zone of the naive timestamps of the documents that
// reach output name; the pipelines writing to it must agree.
func inputLocation(name string, cfg *config.Config) (*time.Location, error) {
	var zone string
	agree := func(z string) error {
		if zone != "" && !strings.EqualFold(zone, z) {
			return fmt.Errorf("pipelines writing to it have timestamps in different time zones (%s, %s): give them one timezone (pmacct inputs) or the same timestamps_utc (flows)", zone, z)
		}
		zone = z
		return nil
	}
	for _, p := range cfg.Pipelines {
		if !slices.Contains(p.Outputs, name) {
			continue
		}
		for _, in := range cfg.Inputs {
			z := ""
			switch {
			case !in.IsFlow() && in.Pipeline == p.Name:
				z = in.Timezone
			case in.IsFlow() && slices.Contains(in.Pipelines, p.Name):
				// flowdex writes flow times itself: local time unless timestamps_utc
				z = "Local"
				if p.TimestampsUTC {
					z = "UTC"
				}
			default:
				continue
			}
			if err := agree(z); err != nil {
				return nil, err
			}
		}
	}
	return config.LoadLocation(zone)
}

// secret returns the password from the configuration, a file or the environment.
func secret(o config.Output) (string, error) {
	return readSecret("password", o.Password, o.PasswordFile, o.PasswordEnv)
}

// readSecret is a secret given in the configuration, in a file (NAME_file)
// or in an environment variable (NAME_env).
func readSecret(name, value, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s_env: %s is not set", name, env)
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

func (e *esOutput) report() deliveryReport {
	s := e.Stats()
	return deliveryReport{Written: s.Written, Indexed: s.Indexed, Duplicates: s.Duplicates, Failed: s.Failed,
		DeadLettered: s.DeadLettered, Retried: s.Retried, DeadLetterFile: e.deadLetter,
		Spooled: uint64(s.SpoolDocs), SpoolDir: e.spoolDir}
}
