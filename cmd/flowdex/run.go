package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowdex/flowdex/cmd/config"
	"github.com/flowdex/flowdex/collector/pmacct"
)

// cmdRun is the daemon: it runs every input until it ends (a file read once, standard
// input at its end) or, for followed files, until SIGINT or SIGTERM, then flushes every
// output.
func cmdRun(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// SIGHUP reloads the enrichment files (watchEnrichment); from here to the
	// exit it never ends the daemon, not while it starts nor while it flushes
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	if done, status := parseFlags(fs, args); done {
		return status
	}
	cfg, err := cf.load(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		return exitUsage
	}
	sess, status := startSession(cfg, stdout, stderr)
	if sess == nil {
		return status
	}
	ctx, logger := sess.ctx, sess.logger
	var c counters
	var web *httpServer
	var inputFailed, inputsDone atomic.Bool
	if cfg.HTTP.Listen != "" {
		if web, err = newHTTPServer(cfg.HTTP.Listen, sess.graph, &c, logger); err != nil {
			fmt.Fprintln(stderr, "flowdex:", err)
			sess.finish()
			return exitStartup
		}
		// ready once every flow input receives; no longer from the first
		// signal or the end of the inputs (the caches and outputs are
		// flushed then), nor once an input has failed
		web.inputsUp = func() bool {
			if ctx.Err() != nil || inputsDone.Load() || inputFailed.Load() {
				return false
			}
			for _, fi := range sess.flowInputs {
				if !fi.bound.Load() {
					return false
				}
			}
			return true
		}
		web.start()
		defer web.stop()
	}
	logger.Info("flowdex started", "version", versionString(), "config", cfg.File, "inputs", len(cfg.Inputs), "outputs", len(sess.outputs))
	sess.startRetention()
	stopEnrichment := sess.watchEnrichment(ctx, logger) // SIGHUP reloads the enrichment files

	var wg sync.WaitGroup
	errs := make(chan error, len(cfg.Inputs))
	loops, stopLoops := context.WithCancel(ctx)
	var loopsDone sync.WaitGroup
	for _, fp := range sess.flowPipelines {
		loopsDone.Go(func() { fp.refreshLoop(loops, &c, logger) })
	}
	for _, fi := range sess.flowInputs {
		wg.Go(func() {
			if err := fi.run(ctx); err != nil {
				inputFailed.Store(true)
				logger.Error("input stopped", "input", fi.cfg.Name, "error", err)
				errs <- fmt.Errorf("input %q: %w", fi.cfg.Name, err)
			}
		})
	}
	for i := range cfg.Inputs {
		in := &cfg.Inputs[i]
		if in.IsFlow() {
			continue
		}
		p := sess.pipelines[in.Pipeline]
		wg.Go(func() {
			if err := runInput(ctx, in, cfg, p, stdin, &c, logger); err != nil && !errors.Is(err, context.Canceled) {
				inputFailed.Store(true)
				logger.Error("input stopped", "input", in.Name, "error", err)
				errs <- fmt.Errorf("input %q: %w", in.Name, err)
			}
		})
	}
	wg.Wait()
	inputsDone.Store(true)
	close(errs)
	stopLoops()
	loopsDone.Wait()
	// what the caches hold goes out now, as pmacct's plugins flush at exit
	for _, fp := range sess.flowPipelines {
		fp.flush(context.WithoutCancel(ctx), time.Now(), &c, logger)
		st := fp.cache.Stats()
		logger.Info("pipeline stopped", "pipeline", fp.name, "records", st.Records, "filtered_out", st.Filtered, "sampled_out", st.Sampled,
			"flushes", st.Flushes, "aggregates_written", st.Flushed)
	}
	for _, fi := range sess.flowInputs {
		fi.saveTemplates()
	}
	stopEnrichment()
	logger.Info("flushing outputs")
	reports, stopErr := sess.finish()
	for name, r := range reports {
		logger.Info("output stopped", "output", name, "written", r.Written, "indexed", r.Indexed,
			"duplicates", r.Duplicates, "failed", r.Failed, "dead_lettered", r.DeadLettered)
		if r.Failed > 0 || r.DeadLettered > 0 {
			status = exitData // documents that did not arrive: the exit status says so
		}
	}
	logger.Info("flowdex stopped", "lines", c.lines.Load(), "records", c.records.Load(),
		"markers", c.markers.Load(), "bad_lines", c.badLines.Load(), "write_errors", c.writeErrors.Load(), "lost_bytes", c.lostBytes.Load())
	if c.writeErrors.Load() > 0 || c.lostBytes.Load() > 0 {
		status = exitData
	}
	for err := range errs {
		fmt.Fprintln(stderr, "flowdex:", err)
		status = exitData
	}
	if stopErr != nil {
		fmt.Fprintln(stderr, "flowdex:", stopErr)
		status = exitData
	}
	return status
}

// runInput reads one input into its pipeline.
func runInput(ctx context.Context, in *config.Input, cfg *config.Config, p *pipeline, stdin io.Reader, c *counters, logger *slog.Logger) error {
	if !in.Follow {
		reader, origin, closeInput, err := openInput(ctx, in, cfg, stdin, logger)
		if err != nil {
			return err
		}
		defer closeInput()
		return p.consume(ctx, reader, origin, c, logger)
	}
	opts, err := readerOptions(in)
	if err != nil {
		return err
	}
	fl := &pmacct.Follower{Path: cfg.Resolve(in.File), Poll: in.Poll.Duration}
	if _, err := os.Stat(fl.Path); err != nil {
		logger.Warn("waiting for pmacct to write the file", "input", in.Name, "file", fl.Path, "error", err)
	}
	for {
		gen, err := fl.Next(ctx)
		if err != nil {
			return err
		}
		logger.Debug("reading", "input", in.Name, "file", fl.Path, "origin", gen.Origin)
		err = p.consume(ctx, pmacct.NewReader(gen, opts, fl.Path, logger), gen.Origin, c, logger)
		gen.Close()
		p.flush(context.WithoutCancel(ctx), logger) // a purge of pmacct's was read
		if lost := gen.Lost(); lost > 0 {
			c.lostBytes.Add(uint64(lost))
			logger.Error("part of a pmacct purge was never read: the file was rewritten first", "input", in.Name, "file", fl.Path, "bytes", lost)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// a followed file is pmacct's: keep following it after a read error
			logger.Error("reading failed, reopening", "input", in.Name, "file", fl.Path, "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(in.Poll.Duration):
			}
		}
	}
}
