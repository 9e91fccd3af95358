package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/flowdex/flowdex/aggregate/engine"
	"github.com/flowdex/flowdex/aggregate/engine/config"
)

// cmdRun is the daemon: it runs every input until it ends (a file read once, standard
// input at its end) or, for followed files and sockets, until SIGINT or SIGTERM, then
// flushes every output. SIGHUP reloads the pre_tag_maps and the enrichment files.
func cmdRun(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// from here to the exit SIGHUP never ends the daemon, not while it
	// starts nor while it flushes
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
	stderr = stderrFor(stderr)
	e, ctx, finish, status := startEngine(cfg, stdin, stdout, stderr)
	if e == nil {
		return status
	}
	defer finish()
	if err := e.Listen(); err != nil { // a port in use fails the start
		fmt.Fprintln(stderr, "flowdex:", err)
		_, _ = e.Stop()
		return exitStartup
	}
	go func() {
		for {
			select {
			case <-hup:
				e.Reload()
			case <-ctx.Done():
				return
			}
		}
	}()
	logger := e.Logger()
	logger.Info("flowdex started", "version", versionString(), "config", cfg.File, "inputs", len(cfg.Inputs), "outputs", len(cfg.Outputs))
	progressDone := func() {}
	if e.Progress().Finite { // a file or a capture read once: how far it has got
		progressDone = showProgress(e, stderr)
	}
	runErr := e.Run(ctx)
	progressDone()
	logger.Info("flushing outputs")
	reports, stopErr := e.Stop()
	for name, r := range reports {
		logger.Info("output stopped", "output", name, "written", r.Written, "indexed", r.Indexed,
			"duplicates", r.Duplicates, "failed", r.Failed, "dead_lettered", r.DeadLettered)
		if r.Failed > 0 || r.DeadLettered > 0 {
			status = exitData // documents that did not arrive: the exit status says so
		}
	}
	c := e.Counters()
	logger.Info("flowdex stopped", "lines", c.Lines, "records", c.Records,
		"markers", c.Markers, "bad_lines", c.BadLines, "invalid_utf8", c.InvalidUTF8, "write_errors", c.WriteErrors, "lost_bytes", c.LostBytes)
	if c.WriteErrors > 0 || c.LostBytes > 0 {
		status = exitData
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "flowdex:", runErr)
		status = exitData
	}
	if stopErr != nil {
		fmt.Fprintln(stderr, "flowdex:", stopErr)
		status = exitData
	}
	return status
}

// startEngine builds and starts what cfg describes, with its logger and the
// signal context. On failure it has reported the error and returns the exit
// status; finish cancels the context and closes the log.
func startEngine(cfg *config.Config, stdin io.Reader, stdout, stderr io.Writer) (e *engine.Engine, ctx context.Context, finish func(), status int) {
	logger, closer, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		return nil, nil, nil, exitUsage
	}
	closeLog := func() {
		if closer != nil {
			closer.Close()
		}
	}
	e, err = engine.New(cfg, engine.Options{Stdin: stdin, Stdout: stdout, Logger: logger, Version: versionString()})
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		closeLog()
		return nil, nil, nil, exitUsage
	}
	ctx, cancel := notifyContext()
	if err := e.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		cancel()
		closeLog()
		return nil, nil, nil, exitStartup
	}
	return e, ctx, func() { cancel(); closeLog() }, exitOK
}

// notifyContext is cancelled by the first SIGINT or SIGTERM; a second one ends the
// process at once, as an operator who presses Ctrl-C twice expects.
func notifyContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}
