package elasticsearch

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"sync"
)

// deadLetterFile is opened on first use and appended to. It holds whole flow
// records: only the owner may read it.
type deadLetterFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
	torn bool // a torn record could not be cut off: the next write starts a line
}

// write appends p, which is n records of one line each, and returns how many
// of them are in the file whole. A short write (a full disk) leaves no torn
// record behind: the file stays one JSON object per line.
func (d *deadLetterFile) write(p []byte, n int) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return 0, err
		}
		d.f = f
	}
	if d.torn {
		if _, err := d.f.Write([]byte{'\n'}); err != nil {
			return 0, err
		}
		d.torn = false
	}
	k, err := d.f.Write(p)
	if err == nil {
		return n, nil
	}
	whole := bytes.LastIndexByte(p[:k], '\n') + 1
	if whole < k {
		// O_APPEND: the offset is the end of what was written
		end, serr := d.f.Seek(0, io.SeekEnd)
		if serr != nil || d.f.Truncate(end-int64(k-whole)) != nil {
			d.torn = true
		}
	}
	return bytes.Count(p[:whole], []byte{'\n'}), err
}

// appendCompact appends a JSON value on one line, as a dead-letter record
// must be (an error object from a proxy may be indented).
func appendCompact(dst, raw []byte) []byte {
	if !bytes.ContainsAny(raw, "\r\n") {
		return append(dst, raw...)
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return append(dst, errorJSON("unknown", string(raw))...)
	}
	return append(dst, b.Bytes()...)
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
