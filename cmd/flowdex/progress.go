package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowdex/flowdex/aggregate/engine"
)

// progressEvery is how often the progress line is redrawn.
const progressEvery = time.Second

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// terminal is standard error when it is a terminal: log lines and the
// progress line share it, the progress line redrawn below each log line.
type terminal struct {
	mu   sync.Mutex
	w    io.Writer
	line string // the progress line shown, "" if none
}

// stderrFor returns what commands log to: a terminal that keeps a progress
// line under the log, or stderr itself when it is not a terminal.
func stderrFor(stderr io.Writer) io.Writer {
	if isTerminal(stderr) {
		return &terminal{w: stderr}
	}
	return stderr
}

func (t *terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line != "" {
		io.WriteString(t.w, "\r\033[K")
	}
	n, err := t.w.Write(p)
	if t.line != "" {
		io.WriteString(t.w, t.line)
	}
	return n, err
}

// show replaces the progress line; final writes it for good.
func (t *terminal) show(line string, final bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	io.WriteString(t.w, "\r\033[K"+line)
	t.line = line
	if final {
		io.WriteString(t.w, "\n")
		t.line = ""
	}
}

// showProgress draws on stderr, when it is a terminal, how far the inputs
// of e have got (records, rate, bytes read of the total, time left), every
// second, until done is called; done writes the last figures on a line of
// their own. Elsewhere (a log file, a pipe, systemd) it writes nothing.
func showProgress(e *engine.Engine, stderr io.Writer) (done func()) {
	term, ok := stderr.(*terminal)
	if !ok {
		return func() {}
	}
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				term.show(progressLine(e.Progress(), now.Sub(start), false), false)
			}
		}
	})
	return func() {
		close(stop)
		wg.Wait()
		term.show(progressLine(e.Progress(), time.Since(start), true), true)
	}
}

// progressLine says how far p has got after elapsed: while it runs, or, when
// done, in all.
func progressLine(p engine.Progress, elapsed time.Duration, done bool) string {
	secs := max(elapsed.Seconds(), 1e-3)
	rate := float64(p.Records) / secs
	s := "flowdex: " + thousands(p.Records) + " records"
	if done {
		s += " in " + elapsed.Round(100*time.Millisecond).String() + " (" + thousands(uint64(rate)) + "/s)"
	} else {
		s += ", " + thousands(uint64(rate)) + "/s"
	}
	switch {
	case p.Size > 0 && !done:
		s += fmt.Sprintf(", %s of %s (%d%%)", megabytes(p.Read), megabytes(p.Size), 100*min(p.Read, p.Size)/p.Size)
		if byteRate := float64(p.Read) / secs; byteRate > 0 && p.Read < p.Size {
			left := time.Duration(float64(p.Size-p.Read) / byteRate * float64(time.Second))
			s += ", " + clock(left) + " left"
		}
	case p.Read > 0:
		s += ", " + megabytes(p.Read) + " read"
	}
	return s
}

// thousands writes n with a comma every three digits.
func thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func megabytes(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

// clock writes a duration as h:mm:ss or m:ss.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
