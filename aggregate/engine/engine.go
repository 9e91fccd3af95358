// Package engine runs a flowdex configuration: it builds the inputs, pipelines
// and outputs the configuration describes, moves records from the inputs
// through the pipelines to the outputs, serves the HTTP endpoints and stops
// everything, flushing what the caches and outputs hold. The commands of
// cmd/flowdex parse their command line and drive an Engine; tests drive one
// the same way.
//
// An Engine goes New (inert: everything is built and checked, nothing is
// contacted), Start (outputs started, the HTTP port bound), then Run (the
// daemon: every input until it ends or the context is done, then the caches
// flushed) or Ingest (the one pmacct input, read once), then Stop (outputs
// flushed and stopped, what each delivered reported).
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/enrich"
	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/aggregate/transform"
	"github.com/flowdex/flowdex/collector/bgp"
	"github.com/flowdex/flowdex/collector/bmp"
)

// Options are what an Engine takes from its process.
type Options struct {
	Stdin   io.Reader    // read by a pmacct input of file "-"; nil: os.Stdin
	Stdout  io.Writer    // written by a print output of file "-"; nil: os.Stdout
	Logger  *slog.Logger // nil: slog.Default()
	Version string       // reported by the flowdex_build_info metric
}

// Engine is a built configuration.
type Engine struct {
	cfg    *config.Config
	opts   Options
	logger *slog.Logger

	outputs       []*namedOutput
	pipelines     map[string]*pipeline
	flowPipelines []*flowPipeline // the pipelines that aggregate flows
	flowInputs    []*flowInput
	kafkaInputs   []*kafkaInput
	rib           *routes.RIB   // nil without [bgp]
	bgp           *bgp.Listener // nil without [bgp]
	bmpRIB        *routes.RIB   // the BMP routers' views; nil without [bmp]
	bmp           *bmp.Listener // nil without [bmp]

	counters              counters
	bytesRead, bytesTotal atomic.Int64 // of the files read once (Progress)
	web                   *httpServer  // nil without [http]

	// readiness (/readyz): inputs receiving, none failed, not stopping
	running                 atomic.Pointer[context.Context]
	inputFailed, inputsDone atomic.Bool
}

// counters of what the inputs read.
type counters struct {
	pmacctRecords                                  atomic.Uint64 // pmacct records read (records counts the documents of flows too)
	lines, records, markers, badLines, writeErrors atomic.Uint64
	lostBytes                                      atomic.Uint64 // of followed files, rewritten before they were read
	invalidUTF8                                    atomic.Uint64 // pmacct lines kept with invalid UTF-8
	labelsFreed                                    atomic.Uint64 // texts of routes gone (flow.FreeLabels)
}

// Counters are what the inputs read and the pipelines wrote.
type Counters struct {
	Lines, Records, Markers, BadLines uint64 // pmacct input lines; records also counts flushed aggregates
	WriteErrors                       uint64 // documents an output refused at Write
	LostBytes                         uint64 // of followed pmacct files, rewritten before they were read
	InvalidUTF8                       uint64 // pmacct lines kept with bytes that are not UTF-8 (U+FFFD in their place)
}

// Counters returns the counters so far.
func (e *Engine) Counters() Counters {
	c := &e.counters
	return Counters{Lines: c.lines.Load(), Records: c.records.Load(), Markers: c.markers.Load(), BadLines: c.badLines.Load(),
		WriteErrors: c.writeErrors.Load(), LostBytes: c.lostBytes.Load(), InvalidUTF8: c.invalidUTF8.Load()}
}

// New builds every input, pipeline and output of cfg without starting
// anything, so that check finds the mistakes run would.
func New(cfg *config.Config, o Options) (*Engine, error) {
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, opts: o, logger: o.Logger, pipelines: map[string]*pipeline{}}
	// every mistake is reported, each at its key
	var errs config.Errors
	failed := func(err error, path ...string) { errs = append(errs, cfg.ErrorsAt(err, path...)...) }
	byName := map[string]*namedOutput{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Outputs)) {
		out, err := newOutput(name, cfg, o.Stdout, e.logger)
		if err != nil {
			failed(err, "output", name)
			continue
		}
		n := &namedOutput{name: name, output: out}
		byName[name] = n
		e.outputs = append(e.outputs, n)
	}
	for i := range cfg.Pipelines {
		pc := &cfg.Pipelines[i]
		p := &pipeline{name: pc.Name, times: pc.TimestampFields}
		data, source, baseDir, err := pc.TransformationsJSON(cfg)
		switch {
		case err != nil:
			failed(setting.Key("transformations", err), pipelinePath(i)...)
		case data != nil:
			if p.program, err = transform.Parse(data, source, baseDir); err != nil {
				errs = append(errs, cfg.TransformationsError(i, err))
			}
		}
		if pc.Configuration.Enabled() {
			if p.enricher, err = enrich.New(pc.Configuration); err != nil {
				failed(err, pipelinePath(i)...)
			}
		}
		for _, o := range pc.Outputs {
			if n := byName[o]; n != nil {
				p.outputs = append(p.outputs, n)
			}
		}
		e.pipelines[pc.Name] = p
	}
	for _, in := range cfg.Inputs {
		if k, ok := in.(*config.KafkaInput); ok {
			e.kafkaInputs = append(e.kafkaInputs, newKafkaInput(k, e.pipelines[k.Pipeline], &e.counters, e.logger))
		}
	}
	byPipeline := map[string]*flowPipeline{}
	broken := map[string]bool{} // pipelines that failed to build: reported once
	for i, in := range cfg.Inputs {
		fin, ok := in.(config.FlowInput)
		if !ok {
			continue
		}
		var fps []*flowPipeline
		for _, name := range fin.Targets().Pipelines {
			fp := byPipeline[name]
			if broken[name] {
				continue
			}
			if fp == nil {
				j := slices.IndexFunc(cfg.Pipelines, func(p config.Pipeline) bool { return p.Name == name })
				var err error
				if fp, err = newFlowPipeline(e.pipelines[name], &cfg.Pipelines[j]); err != nil {
					failed(err, pipelinePath(j)...)
					broken[name] = true
					continue
				}
				byPipeline[name] = fp
				e.flowPipelines = append(e.flowPipelines, fp)
			}
			fps = append(fps, fp)
		}
		fi, err := newFlowInput(fin, fps, e.openCounted, e.logger)
		if err != nil {
			failed(err, "input#"+strconv.Itoa(i))
			continue
		}
		e.flowInputs = append(e.flowInputs, fi)
	}
	if cfg.BGP != nil {
		bc, err := cfg.BGP.Configuration()
		if err == nil {
			e.rib = routes.New()
			e.bgp, err = bgp.New(bc, e.rib, e.logger)
		}
		if err != nil {
			failed(err, "bgp")
		}
	}
	if cfg.BMP != nil {
		bc, err := cfg.BMP.Configuration()
		if err == nil {
			e.bmpRIB = routes.New()
			e.bmp, err = bmp.New(bc, e.bmpRIB, e.logger)
		}
		if err != nil {
			failed(err, "bmp")
		}
	}
	if cfg.BGP != nil || cfg.BMP != nil {
		for _, fi := range e.flowInputs {
			var err error
			var agents *routes.AgentMap
			if path := fi.cfg.Targets().BGPAgentMap; path != "" {
				if agents, err = routes.LoadAgentMap(path); err != nil {
					i := slices.IndexFunc(cfg.Inputs, func(in config.Input) bool { return in == config.Input(fi.cfg) })
					failed(setting.Key("bgp_agent_map", err), "input#"+strconv.Itoa(i))
					continue
				}
			}
			fi.bgp = newBGPLookup(e.rib, e.bmpRIB, agents, fi.pipelines)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

// pipelinePath is the path of [[pipeline]] number i, for errors.
func pipelinePath(i int) []string { return []string{"pipeline#" + strconv.Itoa(i)} }

// Start starts the outputs, so that an unreachable Elasticsearch without a
// spool fails the start, then connects the Kafka inputs, so that a broker
// that does not answer or a topic that does not exist does. ctx is the daemon's: its end (SIGTERM) starts the
// outputs' stop_grace.
func (e *Engine) Start(ctx context.Context) error {
	if e.bgp != nil {
		// first: a port in use fails the start before anything else runs
		if err := e.bgp.Start(); err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
	}
	if e.bmp != nil {
		if err := e.bmp.Start(); err != nil {
			e.stopBGP()
			return fmt.Errorf("bmp: %w", err)
		}
	}
	for i, o := range e.outputs {
		if err := o.Start(ctx); err != nil {
			for _, started := range e.outputs[:i] {
				_ = started.Stop(ctx)
			}
			e.stopBGP()
			return fmt.Errorf("output %q: %w", o.name, err)
		}
	}
	for i, k := range e.kafkaInputs {
		if err := k.start(ctx); err != nil {
			for _, started := range e.kafkaInputs[:i] {
				started.consumer.Close()
				started.close()
			}
			for _, o := range e.outputs {
				_ = o.Stop(ctx)
			}
			e.stopBGP()
			return fmt.Errorf("input %q: %w", k.name, err)
		}
	}
	e.logEnrichment("enrichment loaded")
	return nil
}

// Listen binds the HTTP port of [http] (none: nothing), served by Run from
// its start: the daemon's, not a one-shot ingest's, whose configuration may
// be the daemon's own while the daemon holds the port.
func (e *Engine) Listen() error {
	if e.cfg.HTTP.Listen == "" || e.web != nil {
		return nil
	}
	web, err := newHTTPServer(e.cfg.HTTP.Listen, e, e.logger)
	if err != nil {
		return err
	}
	e.web = web
	return nil
}

// HTTPAddr is the address the HTTP endpoints are served on, "" without
// [http]; valid after Listen (with the port chosen when the configuration
// gave 0).
func (e *Engine) HTTPAddr() string {
	if e.web == nil {
		return ""
	}
	return e.web.Addr()
}

// Stop flushes and stops every output, with a context of its own bounded by
// five minutes, so that after a signal what is in flight still reaches
// Elasticsearch, the spool or the dead-letter file; then it closes the flow
// inputs' sockets, which Run left bound. It reports what each output
// delivered.
func (e *Engine) Stop() (map[string]DeliveryReport, error) {
	if e.web != nil {
		defer e.web.stop() // /metrics answers during the last flush
	}
	e.stopBGP()
	e.logEnrichmentStats()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reports := map[string]DeliveryReport{}
	var errs []error
	for _, o := range e.outputs {
		if err := o.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", o.name, err))
		}
		if r, ok := o.output.(reporter); ok {
			reports[o.name] = r.report()
		}
	}
	// the sockets close last: until now they took datagrams, counted
	for _, fi := range e.flowInputs {
		if err := fi.close(); err != nil {
			errs = append(errs, fmt.Errorf("input %q: %w", fi.name, err))
		}
	}
	return reports, errors.Join(errs...)
}

// BGPAddr is the address the BGP listener listens on, "" without [bgp];
// valid after Start.
func (e *Engine) BGPAddr() string {
	if e.bgp == nil {
		return ""
	}
	return e.bgp.Addr().String()
}

// BMPAddr is the address the BMP collector listens on, "" without [bmp];
// valid after Start.
func (e *Engine) BMPAddr() string {
	if e.bmp == nil {
		return ""
	}
	return e.bmp.Addr().String()
}

// stopBGP closes the BGP sessions (Cease, administrative shutdown) and the
// BMP ones.
func (e *Engine) stopBGP() {
	if e.bgp != nil {
		e.bgp.Stop()
	}
	if e.bmp != nil {
		e.bmp.Stop()
	}
}

// Logger is the engine's logger.
func (e *Engine) Logger() *slog.Logger { return e.logger }
