package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/flow"
)

// Run is the daemon: it serves the HTTP endpoints, runs retention and reads
// every input until it ends (a file read once, standard input at its end, a
// replay) or ctx is done (sockets, interfaces, followed files), then flushes
// every pipeline's cache, as pmacct's plugins do at exit, and saves the
// NetFlow templates. A socket input reads what its socket buffers hold
// before it ends, and its sockets stay bound: Stop flushes the outputs, then
// closes them. The error joins those of the inputs that failed.
func (e *Engine) Run(ctx context.Context) error {
	e.running.Store(&ctx)
	if e.web != nil {
		e.web.start()
	}
	e.startRetention(ctx)

	var wg sync.WaitGroup
	errs := make(chan error, len(e.cfg.Inputs))
	loops, stopLoops := context.WithCancel(ctx)
	var loopsDone sync.WaitGroup
	for _, fp := range e.flowPipelines {
		loopsDone.Go(func() { fp.refreshLoop(loops, &e.counters, e.logger) })
	}
	if e.rib != nil || e.bmpRIB != nil {
		loopsDone.Go(func() { e.freeLabels(loops) })
	}
	for _, fi := range e.flowInputs {
		wg.Go(func() {
			if err := fi.run(ctx); err != nil {
				e.inputFailed.Store(true)
				e.logger.Error("input stopped", "input", fi.name, "error", err)
				errs <- fmt.Errorf("input %q: %w", fi.name, err)
			}
		})
	}
	for _, in := range e.cfg.Inputs {
		in, ok := in.(*config.PmacctInput)
		if !ok {
			continue
		}
		p := e.pipelines[in.Pipeline]
		wg.Go(func() {
			if err := e.runPmacctInput(ctx, in, p); err != nil && !errors.Is(err, context.Canceled) {
				e.inputFailed.Store(true)
				e.logger.Error("input stopped", "input", in.Name, "error", err)
				errs <- fmt.Errorf("input %q: %w", in.Name, err)
			}
		})
	}
	for _, k := range e.kafkaInputs {
		wg.Go(func() {
			if err := k.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				e.inputFailed.Store(true)
				e.logger.Error("input stopped", "input", k.name, "error", err)
				errs <- fmt.Errorf("input %q: %w", k.name, err)
			}
		})
	}
	wg.Wait()
	e.inputsDone.Store(true)
	close(errs)
	stopLoops()
	loopsDone.Wait()
	for _, fp := range e.flowPipelines {
		fp.flush(context.WithoutCancel(ctx), time.Now(), &e.counters, e.logger)
		st := fp.cache.Stats()
		e.logger.Info("pipeline stopped", "pipeline", fp.name, "records", st.Records, "filtered_out", st.Filtered, "sampled_out", st.Sampled,
			"flushes", st.Flushes, "aggregates_written", st.Flushed)
	}
	for _, fi := range e.flowInputs {
		fi.saveTemplates()
	}
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// inputsUp reports whether every flow input receives and the engine is not
// stopping: no longer from the first signal or the end of the inputs (the
// caches and outputs are flushed then), nor once an input has failed.
func (e *Engine) inputsUp() bool {
	ctx := e.running.Load()
	if ctx == nil || (*ctx).Err() != nil || e.inputsDone.Load() || e.inputFailed.Load() {
		return false
	}
	for _, fi := range e.flowInputs {
		if !fi.bound.Load() {
			return false
		}
	}
	return true
}

// freeLabels frees, every minute, the texts of the routes gone (AS paths,
// communities: flow.FreeLabels) once no cache can hold an aggregate made
// while they were there: two refreshes of the slowest pipeline and a
// minute after their last route went.
func (e *Engine) freeLabels(ctx context.Context) {
	grace := time.Minute
	for _, fp := range e.flowPipelines {
		grace = max(grace, 2*fp.refresh+time.Minute)
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n := flow.FreeLabels(now.Add(-grace)); n > 0 {
				e.counters.labelsFreed.Add(uint64(n))
			}
		}
	}
}
