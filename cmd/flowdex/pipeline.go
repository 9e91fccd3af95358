package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/enrich"
	"github.com/flowdex/flowdex/aggregate/transform"
	"github.com/flowdex/flowdex/cmd/config"
	"github.com/flowdex/flowdex/collector/pmacct"
	"github.com/flowdex/flowdex/sink/file"
)

// output is what a pipeline writes to. Flush sends what Write has buffered:
// pipelines call it at the end of each purge.
type output interface {
	Start(ctx context.Context) error
	Write(ctx context.Context, doc *document.Document, id string) error
	Flush(ctx context.Context) error
	Stop(ctx context.Context) error
}

// flush ends a purge: what the outputs hold goes out now.
func (p *pipeline) flush(ctx context.Context, logger *slog.Logger) {
	for _, o := range p.outputs {
		if err := o.Flush(ctx); err != nil {
			logger.Error("flush failed", "pipeline", p.name, "output", o.name, "error", err)
		}
	}
}

// deliveryReport is what an output can say about documents after Stop.
type deliveryReport struct {
	Written, Indexed, Duplicates, Failed, DeadLettered, Retried uint64
	DeadLetterFile                                              string
	Spooled                                                     uint64 // documents waiting in the spool at stop
	SpoolDir                                                    string
}

type reporter interface{ report() deliveryReport }

type namedOutput struct {
	name string
	output
}

type pipeline struct {
	name     string
	enricher *enrich.Enricher   // nil: no enrichment
	program  *transform.Program // nil: no transformations
	outputs  []*namedOutput
}

// graph is what a configuration builds: pipelines and the outputs they share.
type graph struct {
	cfg           *config.Config
	logger        *slog.Logger
	outputs       []*namedOutput
	pipelines     map[string]*pipeline
	flowPipelines []*flowPipeline // the pipelines that aggregate flows
	flowInputs    []*flowInput
}

// build makes every pipeline and output of cfg without starting anything, so that
// check finds the same mistakes run would.
func build(cfg *config.Config, stdout io.Writer, logger *slog.Logger) (*graph, error) {
	f := &graph{cfg: cfg, logger: logger, pipelines: map[string]*pipeline{}}
	byName := map[string]*namedOutput{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Outputs)) {
		o := cfg.Outputs[name]
		var out output
		switch o.Type {
		case "print":
			out = printOutput{file.New(file.Configuration{Path: cfg.Resolve(o.File), Stdout: stdout})}
		case "elasticsearch":
			es, err := newElasticsearch(name, o, cfg, logger)
			if err != nil {
				return nil, fmt.Errorf("%s: output %q: %w", cfg.File, name, err)
			}
			out = es
		default:
			return nil, fmt.Errorf("output %q: unknown type %q", name, o.Type)
		}
		n := &namedOutput{name: name, output: out}
		byName[name] = n
		f.outputs = append(f.outputs, n)
	}
	for i := range cfg.Pipelines {
		pc := &cfg.Pipelines[i]
		p := &pipeline{name: pc.Name}
		data, source, baseDir, err := pc.TransformationsJSON(cfg)
		if err != nil {
			return nil, err
		}
		if data != nil {
			if p.program, err = transform.Parse(data, source, baseDir); err != nil {
				return nil, err
			}
		}
		if ec := pc.Enrichment(cfg); ec.Enabled() {
			if p.enricher, err = enrich.New(ec); err != nil {
				return nil, fmt.Errorf("pipeline %q: %w", pc.Name, err)
			}
		}
		for _, o := range pc.Outputs {
			p.outputs = append(p.outputs, byName[o])
		}
		f.pipelines[pc.Name] = p
	}
	byPipeline := map[string]*flowPipeline{}
	for i := range cfg.Inputs {
		in := &cfg.Inputs[i]
		if !in.IsFlow() {
			continue
		}
		var fps []*flowPipeline
		for _, name := range in.Pipelines {
			fp := byPipeline[name]
			if fp == nil {
				var err error
				if fp, err = newFlowPipeline(f.pipelines[name], cfg.Pipeline(name), cfg); err != nil {
					return nil, err
				}
				byPipeline[name] = fp
				f.flowPipelines = append(f.flowPipelines, fp)
			}
			fps = append(fps, fp)
		}
		fi, err := newFlowInput(in, cfg, fps, logger)
		if err != nil {
			return nil, err
		}
		f.flowInputs = append(f.flowInputs, fi)
	}
	return f, nil
}

func (f *graph) start(ctx context.Context) error {
	for i, o := range f.outputs {
		if err := o.Start(ctx); err != nil {
			for _, started := range f.outputs[:i] {
				_ = started.Stop(ctx)
			}
			return fmt.Errorf("output %q: %w", o.name, err)
		}
	}
	return nil
}

// stop flushes and stops every output and returns what they delivered.
func (f *graph) stop(ctx context.Context) (map[string]deliveryReport, error) {
	reports := map[string]deliveryReport{}
	var errs []error
	for _, o := range f.outputs {
		if err := o.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", o.name, err))
		}
		if r, ok := o.output.(reporter); ok {
			reports[o.name] = r.report()
		}
	}
	return reports, errors.Join(errs...)
}

// counters of what the inputs read.
type counters struct {
	lines, records, markers, badLines, writeErrors atomic.Uint64
	lostBytes                                      atomic.Uint64 // of followed files, rewritten before they were read
}

// consume sends every record of r through pipeline p. origin names the input for
// document ids: the same line of the same origin gets the same id, so a retried or
// repeated delivery cannot index it twice.
func (p *pipeline) consume(ctx context.Context, r *pmacct.Reader, origin string, c *counters, logger *slog.Logger) error {
	ids := newIDMaker(origin)
	last := r.Stats()
	for n := 0; ; n++ {
		if n&255 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := r.Next()
		// the counters move as lines are read (a followed file may not end for days)
		if st := r.Stats(); st.Lines != last.Lines {
			c.lines.Add(uint64(st.Lines - last.Lines))
			c.badLines.Add(uint64(st.BadLines - last.BadLines))
			last = st
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // the read was interrupted
			}
			return err
		}
		if rec.Kind != pmacct.Data {
			c.markers.Add(1)
			continue
		}
		c.records.Add(1)
		id := ids.make(rec.Line, rec.Raw)
		if p.enricher != nil { // before the transformations, which may rename what it adds
			p.enricher.Enrich(rec.Doc)
		}
		if p.program != nil {
			p.program.Apply(rec.Doc)
		}
		for _, o := range p.outputs {
			if err := o.Write(ctx, rec.Doc, id); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.writeErrors.Add(1)
				logger.Error("write failed", "pipeline", p.name, "output", o.name, "line", rec.Line, "error", err)
			}
		}
	}
}

// idMaker derives document ids from the origin, the line number and the
// line: the origin's hash, the line number (fixed width) and the line's hash.
// The ids of one origin share their start and grow with the line, which is
// what Elasticsearch checks fastest (a create looks the id up first): random
// ids cost it a quarter more CPU per document in bench/'s ingest scenario.
// The line's hash keeps a rewritten line from taking an indexed one's id.
type idMaker struct {
	h      hash.Hash64
	prefix []byte // base64 of the origin's hash
	buf    []byte
	sum    [8]byte
}

func newIDMaker(origin string) *idMaker {
	h := fnv.New64a()
	h.Write([]byte(origin))
	return &idMaker{h: h, prefix: base64.RawURLEncoding.AppendEncode(nil, h.Sum(nil))}
}

func (m *idMaker) make(line int, raw []byte) string {
	m.buf = append(m.buf[:0], m.prefix...)
	const hex = "0123456789abcdef"
	for shift := 36; shift >= 0; shift -= 4 { // 10 hex digits: a trillion lines
		m.buf = append(m.buf, hex[uint64(line)>>shift&0xf])
	}
	m.h.Reset()
	m.h.Write(raw)
	binary.BigEndian.PutUint64(m.sum[:], m.h.Sum64()) // Sum's bytes, without its allocation
	m.buf = base64.RawURLEncoding.AppendEncode(m.buf, m.sum[:])
	return string(m.buf)
}

// printOutput adapts the file sink.
type printOutput struct{ *file.Sink }

func (p printOutput) report() deliveryReport {
	n := p.Written()
	return deliveryReport{Written: n, Indexed: n}
}

// interruptible lets a signal end a read that blocks, such as standard input
// waiting for a slow `pmacct -s`: reads fail with the context's error once it is done.
func interruptible(ctx context.Context, r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
	}()
	context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	return pr
}

// notifyContext is cancelled by the first SIGINT or SIGTERM; a second one ends the
// process at once, as an operator who presses Ctrl-C twice expects.
func notifyContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// session is what run and ingest share: the logger, the started outputs and the
// signal context.
type session struct {
	*graph
	ctx      context.Context
	cancel   context.CancelFunc
	closeLog func()
}

// startSession builds and starts what cfg describes. On failure it has reported
// the error and returns the exit status.
func startSession(cfg *config.Config, stdout, stderr io.Writer) (*session, int) {
	logger, closer, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		return nil, exitUsage
	}
	closeLog := func() {
		if closer != nil {
			closer.Close()
		}
	}
	f, err := build(cfg, stdout, logger)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		closeLog()
		return nil, exitUsage
	}
	ctx, cancel := notifyContext()
	if err := f.start(ctx); err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		cancel()
		closeLog()
		return nil, exitStartup
	}
	return &session{graph: f, ctx: ctx, cancel: cancel, closeLog: closeLog}, exitOK
}

// finish flushes and stops every output, with a context of its own so that after
// a signal the data in flight still reaches Elasticsearch or the dead-letter file.
func (s *session) finish() (map[string]deliveryReport, error) {
	defer s.closeLog()
	defer s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return s.stop(ctx)
}
