package elasticsearch

import (
	"os"
	"sync"
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

// logSuppressed reports, at Stop, the messages the limiters held back.
func (s *Sink) logSuppressed() {
	if n := s.rejected.Pending(); n > 0 {
		s.logger.Warn("elasticsearch: more documents rejected than logged", "not_logged", n)
	}
	if n := s.gaveUp.Pending(); n > 0 {
		s.logger.Warn("elasticsearch: more documents not delivered than logged", "not_logged", n)
	}
	s.retrying.Pending()
}
