package elasticsearch

import (
	"os"
	"sync"
	"time"
)

// deadLetterFile is opened on first use and appended to.
type deadLetterFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (d *deadLetterFile) write(p []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		d.f = f
	}
	_, err := d.f.Write(p)
	return err
}

func (d *deadLetterFile) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// limiter lets one log message through per period and counts the others.
type limiter struct {
	mu         sync.Mutex
	every      time.Duration
	last       time.Time
	suppressed uint64
}

// allow reports whether to log now, and how many were suppressed since the
// last message.
func (l *limiter) allow() (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed, l.last = 0, now
	return true, n
}

func (l *limiter) pending() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}

// logSuppressed reports, at Stop, the messages the limiters held back.
func (s *Sink) logSuppressed() {
	if n := s.rejected.pending(); n > 0 {
		s.logger.Warn("elasticsearch: more documents rejected than logged", "not_logged", n)
	}
	if n := s.gaveUp.pending(); n > 0 {
		s.logger.Warn("elasticsearch: more documents not delivered than logged", "not_logged", n)
	}
	s.retrying.pending()
}
