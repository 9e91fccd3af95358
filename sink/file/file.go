// Package file writes documents as pmacct's print plugin does with print_output: json:
// one JSON object per line, pmacct's key order and separators.
package file

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
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
}

// DefaultConfiguration writes to standard output, a second at most after a
// line is written.
func DefaultConfiguration() Configuration {
	return Configuration{Path: "-", FlushInterval: setting.Duration{Duration: time.Second}}
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
}

// Validate reports a setting New would replace, naming its key.
func (cfg Configuration) Validate() error {
	if cfg.FlushInterval.Duration <= 0 {
		return setting.Errorf("flush_interval", "%v: expected a positive duration, e.g. \"1s\"", cfg.FlushInterval.Duration)
	}
	return nil
}

// New returns an inert sink; Start opens the file.
func New(cfg Configuration) *Sink {
	if cfg.FlushInterval.Duration <= 0 {
		cfg.FlushInterval = DefaultConfiguration().FlushInterval
	}
	return &Sink{cfg: cfg}
}

// Start opens the output.
func (s *Sink) Start(context.Context) error {
	out := s.cfg.Stdout
	if out == nil {
		out = os.Stdout
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

// Write appends one document as a line. The document is not kept.
func (s *Sink) Write(_ context.Context, doc *document.Document, _ string) error {
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
	err := s.flushLocked()
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
