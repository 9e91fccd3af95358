package pmacct

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Generation is one life of a followed file: from when pmacct creates or rewrites
// it until the next rewrite. Its Reader returns complete lines only, waiting for
// pmacct to finish a line, and io.EOF when the file is rewritten, replaced or
// removed, or when the context ends.
type Generation struct {
	// Origin names this generation (path, inode, modification time at open): the
	// same bytes at the same line of another generation are another record.
	Origin string
	r      *followReader
}

// Read implements io.Reader.
func (g *Generation) Read(p []byte) (int, error) { return g.r.Read(p) }

// Close releases the file.
func (g *Generation) Close() error { return g.r.f.Close() }

// Follower follows a pmacct print-plugin output file, as pmacct writes it: rewritten
// at every purge (print_output_file_append false) or appended to (true).
type Follower struct {
	Path string
	Poll time.Duration
}

// Next waits until the file exists and returns its current generation.
func (fl *Follower) Next(ctx context.Context) (*Generation, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(fl.Path)
		if err == nil {
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, err
			}
			first, _ := firstLine(f)
			r := &followReader{ctx: ctx, f: f, path: fl.Path, poll: fl.Poll, ino: inode(st), first: first}
			origin := fmt.Sprintf("%s|%d|%d", fl.Path, inode(st), st.ModTime().UnixNano())
			return &Generation{Origin: origin, r: r}, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(fl.Poll):
		}
	}
}

type followReader struct {
	ctx     context.Context
	f       *os.File
	path    string
	poll    time.Duration
	ino     uint64
	first   []byte // the first line when opened: a rewrite changes it...
	tail    []byte // ...or the last bytes read, which a rewrite moves
	offset  int64  // bytes read from the file
	pending []byte // read but not yet returned: complete lines first, then a partial one
	ready   int    // how much of pending ends with a newline
	buf     []byte
}

func (r *followReader) Read(p []byte) (int, error) {
	for r.ready == 0 {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.pending[:r.ready])
	r.pending = r.pending[n:]
	r.ready -= n
	return n, nil
}

// fill reads what pmacct has appended, or reports the end of the generation.
// pmacct rewrites the file in place (truncate, write), so the first line is checked
// before and after each read: bytes of the next purge are never taken for an append.
func (r *followReader) fill() error {
	if r.buf == nil {
		r.buf = make([]byte, 64<<10)
	}
	if r.rotated() {
		return io.EOF
	}
	n, err := r.f.ReadAt(r.buf, r.offset)
	if n > 0 {
		if r.offset == 0 && r.first == nil {
			r.first, _ = firstLine(bytes.NewReader(r.buf[:n]))
		} else if r.changed() {
			return io.EOF
		}
		r.offset += int64(n)
		r.pending = append(r.pending, r.buf[:n]...)
		r.tail = append(r.tail, r.buf[:n]...)
		if extra := len(r.tail) - tailSize; extra > 0 {
			r.tail = append(r.tail[:0], r.tail[extra:]...)
		}
		if i := bytes.LastIndexByte(r.pending, '\n'); i >= 0 {
			r.ready = i + 1
		}
		return nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	select {
	case <-r.ctx.Done():
		return io.EOF
	case <-time.After(r.poll):
	}
	return nil
}

// rotated reports whether the file was rewritten, replaced or removed since opened.
func (r *followReader) rotated() bool {
	st, err := os.Stat(r.path)
	if err != nil || inode(st) != r.ino {
		return true
	}
	if st.Size() < r.offset {
		return true // truncated
	}
	return r.changed()
}

// tailSize is how much of what was last read is kept to recognise a rewrite.
const tailSize = 256

// changed reports whether the bytes already read are no longer in the file: its
// first line or the last bytes read differ. pmacct's markers and stamp_updated make
// each purge's content differ; two purges identical to the byte where the first
// one ended are taken for an append.
func (r *followReader) changed() bool {
	if r.first != nil {
		cur, err := firstLine(io.NewSectionReader(r.f, 0, int64(len(r.first))))
		if err != nil || !bytes.Equal(cur, r.first) {
			return true
		}
	}
	if len(r.tail) > 0 {
		cur := make([]byte, len(r.tail))
		if _, err := r.f.ReadAt(cur, r.offset-int64(len(r.tail))); err != nil || !bytes.Equal(cur, r.tail) {
			return true
		}
	}
	return false
}

// firstLine returns the first complete line, newline included, or nil.
func firstLine(r io.Reader) ([]byte, error) {
	buf := make([]byte, 4096)
	n, err := io.ReadFull(r, buf)
	if n == 0 {
		return nil, err
	}
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		return buf[:i+1], nil
	}
	return nil, nil
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
