// Package file writes documents as pmacct's print plugin does: with
// print_output json, one JSON object per line, pmacct's key order and
// separators, appended as they come; with its file habits (purge.go), the
// files of each purge: csv, markers, names with time codes and variables,
// rewritten or appended to, a latest link, a trigger.
package file

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/setting"
)

// Configuration of a file sink.
type Configuration struct {
	// Path of the output file, appended to; "-" is standard output.
	Path string `toml:"file"`
	// Stdout is where "-" writes; nil: os.Stdout.
	Stdout io.Writer `toml:"-"`
	// FlushInterval bounds how long a line waits in the buffer: people
	// follow these files. Pipelines also call Flush at the end of each purge.
	FlushInterval setting.Duration `toml:"flush_interval"`

	// The print plugin's habits (purge.go). Format is print_output: json,
	// csv or formatted (Separator: print_output_separator, one character, or "\t",
	// "\s"). Markers is print_markers. Append is print_output_file_append,
	// true by default in flowdex: false rewrites each file at each purge, as
	// pmacct does by default (losing the earlier purges of a time bin).
	// LatestFile is print_latest_file, a symbolic link to the last file
	// written; TriggerExec is print_trigger_exec, a program run after each
	// purge that wrote something, without arguments, not waited for. Path
	// takes pmacct's time codes (%Y %m %d %H %M %S %s %w %W %z: of the
	// document's time bin, or of the purge without bins) and $peer_src_ip,
	// $tag, $tag2: a file per value.
	Format      string `toml:"format"`
	Separator   string `toml:"separator,omitempty"`
	Markers     bool   `toml:"markers,omitempty"`
	Append      *bool  `toml:"append,omitempty"` // nil: true
	LatestFile  string `toml:"latest_file,omitempty"`
	TriggerExec string `toml:"trigger_exec,omitempty"`
	// UTC names files in UTC (timestamps_utc), else local time.
	UTC bool `toml:"-"`
	// Name is the writer's in markers: the pipeline's.
	Name string `toml:"-"`
	// Logger logs what goes wrong outside a Write (a trigger that fails).
	Logger *slog.Logger `toml:"-"`
}

// DefaultConfiguration writes to standard output, a second at most after a
// line is written.
func DefaultConfiguration() Configuration {
	appendTo := true
	return Configuration{Path: "-", FlushInterval: setting.Duration{Duration: time.Second}, Format: "json", Append: &appendTo}
}

// Sink writes NDJSON. It is safe for concurrent use.
type Sink struct {
	cfg     Configuration
	mu      sync.Mutex
	w       *bufio.Writer
	closer  io.Closer
	bufs    sync.Pool // *[]byte: each Write encodes outside the lock
	written uint64
	dirty   bool // written to since the last flush
	err     error

	stop chan struct{}
	done chan struct{}

	// purge mode (purge.go)
	purge                 bool
	name                  *name
	sep                   byte
	files                 map[string]*pending
	order                 []string
	stdoutHeader          bool
	triggers, triggerErrs uint64
	now                   func() time.Time
}

// Validate reports a setting New would replace, naming its key.
func (cfg Configuration) Validate() error {
	if cfg.FlushInterval.Duration <= 0 {
		return setting.Errorf("flush_interval", "%v: expected a positive duration, e.g. \"1s\"", cfg.FlushInterval.Duration)
	}
	_, err := cfg.compile()
	return err
}

// compiled is what a configuration gives a sink.
type compiled struct {
	name *name
	sep  byte
}

func (cfg Configuration) compile() (compiled, error) {
	var c compiled
	switch cfg.Format {
	case "", "json":
	case "csv", "formatted":
	default:
		return c, setting.Errorf("format", "%q: expected json, csv or formatted", cfg.Format)
	}
	switch s := cfg.Separator; {
	case s == "":
		c.sep = ','
	case s == `\t`:
		c.sep = '\t'
	case s == `\s`:
		c.sep = ' '
	case len(s) == 1:
		c.sep = s[0]
	default:
		return c, setting.Errorf("separator", "%q: expected one character, or \\t or \\s", s)
	}
	if cfg.Separator != "" && cfg.Format != "csv" {
		return c, setting.Errorf("separator", "a separator for format %q (expected format = \"csv\")", cfg.Format)
	}
	if cfg.Path != "-" && cfg.Path != "" {
		n, err := parseName(cfg.Path)
		if err != nil {
			return c, setting.Errorf("file", "%s: %v", cfg.Path, err)
		}
		c.name = n
	} else if cfg.rewrite() {
		return c, setting.Errorf("append", "standard output is appended to (expected a file to rewrite)")
	}
	if l := cfg.LatestFile; l != "" {
		switch {
		case strings.ContainsAny(l, "%$"):
			return c, setting.Errorf("latest_file", "%s: a fixed name (pmacct refuses time codes; flowdex variables too)", l)
		case c.name == nil:
			return c, setting.Errorf("latest_file", "a link to standard output (expected a file)")
		}
	}
	return c, nil
}

// New returns an inert sink; Start opens the file.
func New(cfg Configuration) *Sink {
	if cfg.FlushInterval.Duration <= 0 {
		cfg.FlushInterval = DefaultConfiguration().FlushInterval
	}
	s := &Sink{cfg: cfg, now: time.Now, purge: cfg.purgeMode()}
	c, _ := cfg.compile() // Validate said why
	s.name, s.sep = c.name, c.sep
	s.files = map[string]*pending{}
	return s
}

func (s *Sink) logf(format string, args ...any) {
	if s.cfg.Logger != nil {
		s.cfg.Logger.Warn(fmt.Sprintf(format, args...), "output", s.cfg.Name)
	}
}

// Start opens the output.
func (s *Sink) Start(context.Context) error {
	out := s.cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	if s.purge {
		s.w = bufio.NewWriterSize(out, 64<<10) // standard output; files are opened per purge
		return nil
	}
	if s.cfg.Path != "-" && s.cfg.Path != "" {
		f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("file sink: %w", err)
		}
		out, s.closer = f, f
	}
	s.w = bufio.NewWriterSize(out, 64<<10)
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.tick()
	return nil
}

// tick writes out, every FlushInterval, what was buffered meanwhile.
func (s *Sink) tick() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.FlushInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_ = s.Flush(context.Background()) // an error is kept for the next Write and Stop
		}
	}
}

// WriteAt is Write of a document whose time (its time bin) is t, which
// names its file in purge mode.
func (s *Sink) WriteAt(ctx context.Context, doc *document.Document, id string, t time.Time) error {
	if s.purge {
		return s.keep(doc, t)
	}
	return s.Write(ctx, doc, id)
}

// Write appends one document as a line. The document is not kept.
func (s *Sink) Write(_ context.Context, doc *document.Document, _ string) error {
	if s.purge {
		return s.keep(doc, s.now())
	}
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer s.bufs.Put(bp)
	*bp = append(doc.AppendJSON((*bp)[:0], document.Pmacct), '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if _, err := s.w.Write(*bp); err != nil {
		s.err = fmt.Errorf("file sink %s: %w", s.cfg.Path, err)
		return s.err
	}
	s.written++
	s.dirty = true
	return nil
}

// Flush writes out what is buffered.
func (s *Sink) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.purge {
		return s.writePurge()
	}
	return s.flushLocked()
}

func (s *Sink) flushLocked() error {
	if !s.dirty || s.err != nil {
		return s.err
	}
	s.dirty = false
	if err := s.w.Flush(); err != nil {
		s.err = fmt.Errorf("file sink %s: %w", s.cfg.Path, err)
	}
	return s.err
}

// Stop flushes and closes the output.
func (s *Sink) Stop(context.Context) error {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.purge {
		err = s.writePurge()
	} else {
		err = s.flushLocked()
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("file sink %s: %w", s.cfg.Path, cerr)
		}
	}
	return err
}

// Written returns the number of documents written.
func (s *Sink) Written() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}
