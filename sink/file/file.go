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

	"github.com/flowdex/flowdex/aggregate/document"
)

// Configuration of a file sink.
type Configuration struct {
	// Path of the output file, appended to; "-" is standard output.
	Path string
	// Stdout is where "-" writes; nil: os.Stdout.
	Stdout io.Writer
}

// DefaultConfiguration writes to standard output.
func DefaultConfiguration() Configuration { return Configuration{Path: "-"} }

// Sink writes NDJSON. It is safe for concurrent use.
type Sink struct {
	cfg     Configuration
	mu      sync.Mutex
	w       *bufio.Writer
	closer  io.Closer
	buf     []byte
	written uint64
}

// New returns an inert sink; Start opens the file.
func New(cfg Configuration) *Sink { return &Sink{cfg: cfg} }

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
	return nil
}

// Write appends one document as a line. The document is not kept.
func (s *Sink) Write(_ context.Context, doc *document.Document, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = doc.AppendJSON(s.buf[:0], document.Pmacct)
	s.buf = append(s.buf, '\n')
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("file sink %s: %w", s.cfg.Path, err)
	}
	s.written++
	return nil
}

// Flush writes out what is buffered.
func (s *Sink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Flush()
}

// Stop flushes and closes the output.
func (s *Sink) Stop(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("file sink %s: %w", s.cfg.Path, err)
	}
	return nil
}

// Written returns the number of documents written.
func (s *Sink) Written() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}
