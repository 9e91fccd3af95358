package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/collector/pmacct"
)

// runPmacctInput reads one pmacct input into its pipeline: once, or, for a
// followed file, every version pmacct writes until ctx is done.
func (e *Engine) runPmacctInput(ctx context.Context, in *config.PmacctInput, p *pipeline) error {
	zone := in.Timezone.Get()
	if !in.Follow {
		reader, origin, closeInput, err := e.openInput(ctx, in)
		if err != nil {
			return err
		}
		defer closeInput()
		return p.consume(ctx, reader, newIDMaker(origin), zone, &e.counters, e.logger)
	}
	opts := in.Options()
	fl := &pmacct.Follower{Path: in.File, Poll: in.Poll.Duration}
	if _, err := os.Stat(fl.Path); err != nil {
		e.logger.Warn("waiting for pmacct to write the file", "input", in.Name, "file", fl.Path, "error", err)
	}
	for {
		gen, err := fl.Next(ctx)
		if err != nil {
			return err
		}
		e.logger.Debug("reading", "input", in.Name, "file", fl.Path, "origin", gen.Origin)
		err = p.consume(ctx, pmacct.NewReader(gen, opts, fl.Path, e.logger), newIDMaker(gen.Origin), zone, &e.counters, e.logger)
		gen.Close()
		p.flush(context.WithoutCancel(ctx), e.logger) // a purge of pmacct's was read
		if lost := gen.Lost(); lost > 0 {
			e.counters.lostBytes.Add(uint64(lost))
			e.logger.Error("part of a pmacct purge was never read: the file was rewritten first", "input", in.Name, "file", fl.Path, "bytes", lost)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// a followed file is pmacct's: keep following it after a read error
			e.logger.Error("reading failed, reopening", "input", in.Name, "file", fl.Path, "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(in.Poll.Duration):
			}
		}
	}
}

// ErrNotIngestible is Ingest's error for a configuration it cannot read once.
var ErrNotIngestible = errors.New("ingest reads one pmacct input")

// Ingest reads the configuration's one pmacct input once, to its end, into
// its pipeline: what p2es does from cron or a print_trigger_exec. It returns
// how many outputs each record was to reach.
func (e *Engine) Ingest(ctx context.Context) (outputs int, err error) {
	in, ok := e.cfg.Inputs[0].(*config.PmacctInput)
	if len(e.cfg.Inputs) != 1 || !ok {
		return 0, ErrNotIngestible
	}
	reader, origin, closeInput, err := e.openInput(ctx, in)
	if err != nil {
		return 0, err
	}
	defer closeInput()
	p := e.pipelines[in.Pipeline]
	return len(p.outputs), p.consume(ctx, reader, newIDMaker(origin), in.Timezone.Get(), &e.counters, e.logger)
}

// openInput opens a pmacct input for one pass to its end.
func (e *Engine) openInput(ctx context.Context, in *config.PmacctInput) (*pmacct.Reader, string, func(), error) {
	opts := in.Options()
	if in.File == "-" {
		// the same line of another run from stdin is another record
		origin := "stdin|" + strconv.FormatInt(time.Now().UnixNano(), 10)
		return pmacct.NewReader(interruptible(ctx, e.opts.Stdin), opts, "stdin", e.logger), origin, func() {}, nil
	}
	path := in.File
	fh, err := e.openCounted(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("input %q: %w", in.Name, err)
	}
	st, err := fh.(countedFile).Stat() // the file read, even if path is replaced meanwhile
	if err != nil {
		fh.Close()
		return nil, "", nil, fmt.Errorf("input %q: %w", in.Name, err)
	}
	abs, _ := filepath.Abs(path)
	// re-reading an unchanged file gives the same ids: a double trigger indexes nothing twice;
	// the modification time tells pmacct's next purge, rewritten in place with maybe the
	// very same lines (records without a time), from this one, so a touch re-indexes (README)
	origin := abs + "|" + strconv.FormatInt(st.ModTime().UnixNano(), 10) + "|" + strconv.FormatInt(st.Size(), 10)
	return pmacct.NewReader(fh, opts, path, e.logger), origin, func() { fh.Close() }, nil
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
