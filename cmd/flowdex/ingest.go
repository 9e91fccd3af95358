package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/flowdex/flowdex/aggregate/engine"
	"github.com/flowdex/flowdex/aggregate/engine/config"
)

// cmdIngest reads pmacct output once, to its end, and delivers it: what p2es does
// from cron or a print_trigger_exec, without its silent losses. The exit status is 0
// only when every record reached every output.
func cmdIngest(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf configFlags
	cf.register(fs)
	input := fs.String("input", "", "read this `file` instead of the configured input (\"-\": standard input)")
	format := fs.String("format", "", "input format: json, csv or auto (default: as configured)")
	deadLetter := fs.String("dead-letter", "", "write documents Elasticsearch rejects to this `file` (default: flowdex-<output>-dead-letter.ndjson)")
	replay := fs.String("dead-letter-replay", "", "send the documents of this dead-letter `file` again, instead of reading pmacct output")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: flowdex ingest [-c flowdex.toml | --p2es-config plugin.conf] [--input FILE] [--format json|csv|auto]\n"+
			"       flowdex ingest [-c flowdex.toml | --p2es-config plugin.conf] --dead-letter-replay FILE [--dead-letter FILE]\n\n"+
			"Reads pmacct's JSON or CSV (print plugin file, or `pmacct -s -O json -e` on stdin) once and indexes it.\n"+
			"Prints a one-line summary; exits 0 only when every record was indexed.\n\n"+
			"With --dead-letter-replay, sends each document of a dead-letter file again to the configuration's\n"+
			"elasticsearch output, into the index of its record, with its id as a create: replaying twice indexes\n"+
			"nothing twice (counted as already there), but a record without an id is indexed again each time.\n"+
			"Lines that are not dead-letter records are counted with their numbers; documents that fail again go\n"+
			"to the output's dead-letter file (or --dead-letter), which must be another file.\n\n")
		fs.PrintDefaults()
	}
	if done, status := parseFlags(fs, args); done {
		return status
	}
	cfg, err := cf.load(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "flowdex:", err)
		return exitUsage
	}
	if *replay != "" {
		if *input != "" || *format != "" {
			fmt.Fprintln(stderr, "flowdex: --dead-letter-replay reads a dead-letter file: give no --input or --format")
			return exitUsage
		}
		return replayDeadLetters(cfg, absPath(*replay), *deadLetter, stdout, stderrFor(stderr))
	}
	if len(cfg.Inputs) != 1 {
		fmt.Fprintf(stderr, "flowdex: ingest reads one input, the configuration has %d\n", len(cfg.Inputs))
		return exitUsage
	}
	in, ok := cfg.Inputs[0].(*config.PmacctInput)
	if !ok {
		c := cfg.Inputs[0].Common()
		fmt.Fprintf(stderr, "flowdex: ingest reads pmacct output; input %q is %s: use flowdex run (replay = FILE reads a pcap once)\n", c.Name, c.Type)
		return exitUsage
	}
	if *input != "" {
		in.File = absPath(*input) // relative to where the command runs, not to the configuration
	}
	if *format != "" {
		if err := in.Format.UnmarshalText([]byte(*format)); err != nil {
			fmt.Fprintln(stderr, "flowdex ingest: --format:", err)
			return exitUsage
		}
	}
	for name, o := range cfg.Outputs {
		if es, ok := o.(*config.ElasticsearchOutput); ok {
			switch {
			case *deadLetter != "":
				es.DeadLetterFile = absPath(*deadLetter)
			case es.DeadLetterFile == "":
				// named after the input: p2es plugins run from one directory keep apart
				es.DeadLetterFile = absPath("flowdex-" + in.Name + "-" + name + "-dead-letter.ndjson")
			}
		}
	}
	stderr = stderrFor(stderr)
	e, ctx, finish, status := startEngine(cfg, stdin, stdout, stderr)
	if e == nil {
		if status == exitStartup && in.File == "-" {
			// `pmacct -s -e` has already cleared its table: keep what it sent
			saveStdin(stdin, in.Name, stderr)
		}
		return status
	}
	defer finish()
	progressDone := showProgress(e, stderr)
	outputs, consumeErr := e.Ingest(ctx)
	progressDone()
	reports, stopErr := e.Stop()
	c := e.Counters()

	var total engine.DeliveryReport
	for _, r := range reports {
		total.Written += r.Written
		total.Indexed += r.Indexed
		total.Duplicates += r.Duplicates
		total.Failed += r.Failed
		total.DeadLettered += r.DeadLettered
		total.Retried += r.Retried
		total.Spooled += r.Spooled
	}
	// every record must reach every output of its pipeline; failed counts those that
	// did not, dead-lettered those of them kept in a dead-letter file
	wanted := c.Records * uint64(outputs)
	// spooled documents are safe on disk, sent by the next run with the same spool
	delivered := total.Indexed + total.Duplicates + total.Spooled
	failed := wanted - min(delivered, wanted)
	printSummary(stdout, c.Lines, c.Records, total.Indexed, total.Duplicates, failed, total.DeadLettered, total.Retried,
		c.Markers, c.BadLines)
	if c.InvalidUTF8 > 0 { // kept, but the source writes bytes that are not text
		fmt.Fprintf(stderr, "flowdex: %d lines held bytes that are not UTF-8, indexed with U+FFFD in their place (the log names the first)\n", c.InvalidUTF8)
	}
	for name, r := range reports {
		if r.Spooled > 0 {
			fmt.Fprintf(stderr, "flowdex: output %q: %d documents wait in the spool %s: the next run sends them\n", name, r.Spooled, r.SpoolDir)
		}
		if r.DeadLettered > 0 {
			fmt.Fprintf(stderr, "flowdex: output %q: %d documents rejected, kept in %s\n", name, r.DeadLettered, r.DeadLetterFile)
		}
	}
	status = readStatus(stderr, consumeErr, stopErr)
	if failed > 0 || total.Failed > 0 || c.BadLines > 0 || c.WriteErrors > 0 {
		status = exitData
	}
	return status
}

// readStatus reports why reading the input ended early (readErr), or why
// stopping the outputs failed, and gives the exit status that makes.
func readStatus(stderr io.Writer, readErr, stopErr error) int {
	switch {
	case errors.Is(readErr, context.Canceled):
		fmt.Fprintln(stderr, "flowdex: interrupted: the input was not read to its end")
	case readErr != nil:
		fmt.Fprintln(stderr, "flowdex:", readErr)
	case stopErr != nil:
		fmt.Fprintln(stderr, "flowdex:", stopErr)
	default:
		return exitOK
	}
	return exitData
}

// printSummary prints ingest's one line.
func printSummary(stdout io.Writer, lines, records, indexed, duplicates, failed, deadLettered, retried, markers, bad uint64) {
	fmt.Fprintf(stdout, "flowdex ingest: read %d lines, %d records; indexed %d (%d already there), failed %d, dead-lettered %d, retried %d; skipped markers %d, bad lines %d\n",
		lines, records, indexed, duplicates, failed, deadLettered, retried, markers, bad)
}

// absPath makes a path given on the command line absolute, so that it stays
// relative to the working directory whatever the configuration file's place.
func absPath(p string) string {
	if p == "-" || p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// saveStdin keeps standard input in a file when nothing could be delivered, and
// says where.
func saveStdin(stdin io.Reader, name string, stderr io.Writer) {
	path := absPath(fmt.Sprintf("flowdex-%s-unsent-%s.json", name, time.Now().UTC().Format("20060102T150405.000Z")))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		var n int64
		n, err = io.Copy(f, stdin)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			fmt.Fprintf(stderr, "flowdex: nothing was indexed; standard input (%d bytes) is saved in %s: index it later with --input %s\n", n, path, path)
			return
		}
	}
	fmt.Fprintf(stderr, "flowdex: nothing was indexed, and standard input could not be saved (%v): its records are lost\n", err)
}
