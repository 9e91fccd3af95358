package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/sink/elasticsearch"
)

// deadLetterRecord is what replay reads of a dead-letter record (see the
// sink's appendDeadLetter).
type deadLetterRecord struct {
	Index    *string         `json:"index"`
	ID       *string         `json:"id"`
	Document json.RawMessage `json:"document"`
}

// maxBadLinesLogged bounds the log of a file that is not a dead-letter file.
const maxBadLinesLogged = 20

// replayDeadLetters sends the documents of dead-letter file path again to the
// configuration's Elasticsearch output, each to the index of its record, with
// its id as a create (a second replay finds them there: duplicates), and
// prints ingest's summary. Documents that fail again go to the output's
// dead-letter file (deadLetter when given), which must be another file.
func replayDeadLetters(cfg *config.Config, path, deadLetter string, stdout, stderr io.Writer) int {
	var names []string
	for name, o := range cfg.Outputs {
		if _, ok := o.(*config.ElasticsearchOutput); ok {
			names = append(names, name)
		}
	}
	if len(names) != 1 {
		slices.Sort(names)
		fmt.Fprintf(stderr, "flowdex: --dead-letter-replay sends to one elasticsearch output; the configuration has %d (%s)\n", len(names), strings.Join(names, ", "))
		return exitUsage
	}
	name := names[0]
	es := *cfg.Outputs[name].(*config.ElasticsearchOutput)
	switch {
	case deadLetter != "":
		es.DeadLetterFile = absPath(deadLetter)
	case es.DeadLetterFile == "":
		es.DeadLetterFile = absPath("flowdex-replay-" + name + "-dead-letter.ndjson")
	}
	if sameFile(path, es.DeadLetterFile) {
		fmt.Fprintf(stderr, "flowdex: %s is the dead-letter file of output %q: move it aside and replay the copy, or give --dead-letter another file\n", path, name)
		return exitUsage
	}
	// a one-shot replay does not spool: what fails again is dead-lettered, and
	// the spool stays the daemon's
	es.SpoolDir = ""
	in, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		return exitUsage
	}
	defer in.Close()

	logger, closer, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		return exitUsage
	}
	if closer != nil {
		defer closer.Close()
	}
	logger = logger.With("output", name)
	sink, err := elasticsearch.New(es.Configuration, logger)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		return exitUsage
	}
	ctx, cancel := notifyContext()
	defer cancel()
	if err := os.MkdirAll(filepath.Dir(es.DeadLetterFile), 0o700); err != nil {
		fmt.Fprintln(stderr, "flowdex: dead-letter file:", err)
		return exitStartup
	}
	if err := sink.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		return exitStartup
	}
	lines, records, bad, readErr := sendDeadLetters(ctx, sink, in, path, logger)
	if bad > maxBadLinesLogged {
		logger.Warn("dead-letter replay: more lines skipped than logged", "file", path, "not_logged", bad-maxBadLinesLogged)
	}
	stopErr := sink.Stop(context.WithoutCancel(ctx))
	st := sink.Stats()

	failed := records - min(st.Indexed+st.Duplicates, records)
	printSummary(stdout, lines, records, st.Indexed, st.Duplicates, failed, st.DeadLettered, st.Retried, 0, bad)
	if st.DeadLettered > 0 {
		fmt.Fprintf(stderr, "flowdex: output %q: %d documents rejected, kept in %s\n", name, st.DeadLettered, es.DeadLetterFile)
	}
	status := readStatus(stderr, readErr, stopErr)
	if failed > 0 || bad > 0 {
		status = exitData
	}
	return status
}

// sendDeadLetters writes each record of r to sink; a line that is not a
// dead-letter record is logged with its number, counted, and skipped.
func sendDeadLetters(ctx context.Context, sink *elasticsearch.Sink, r io.Reader, path string, logger *slog.Logger) (lines, records, bad uint64, err error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var line []byte
	for {
		line = line[:0]
		for { // a record longer than the buffer comes in pieces
			chunk, rerr := br.ReadSlice('\n')
			line = append(line, chunk...)
			if rerr == bufio.ErrBufferFull {
				continue
			}
			if rerr == io.EOF && len(line) == 0 {
				return lines, records, bad, nil
			}
			if rerr != nil && rerr != io.EOF {
				return lines, records, bad, rerr
			}
			break
		}
		lines++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec deadLetterRecord
		werr := json.Unmarshal(line, &rec)
		switch {
		case werr != nil:
		case rec.Index == nil || len(rec.Document) == 0 || rec.Document[0] != '{':
			werr = errors.New(`not a dead-letter record (expected "index" and "document" objects)`)
		default:
			id := ""
			if rec.ID != nil {
				id = *rec.ID
			}
			werr = sink.WriteRaw(ctx, *rec.Index, id, rec.Document)
			if errors.Is(werr, context.Canceled) || errors.Is(werr, elasticsearch.ErrStopped) {
				return lines, records, bad, werr
			}
		}
		if werr != nil {
			bad++
			if bad <= maxBadLinesLogged {
				logger.Warn("dead-letter replay: line skipped", "file", path, "line", lines, "error", werr)
			}
			continue
		}
		records++
	}
}

// sameFile reports whether a and b name one file (or would, once created).
func sameFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(ia, ib)
	}
	return filepath.Clean(absPath(a)) == filepath.Clean(absPath(b))
}
