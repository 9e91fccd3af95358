package pmacct

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// MaxReadAhead bounds what a followed file's reader holds that its consumer has
// not taken yet. pmacct rewrites the file at each purge: what is not read by then
// is gone, so the file is read as soon as it grows, not when the consumer asks.
const MaxReadAhead = 256 << 20

// Generation is one life of a followed file: from when pmacct creates or rewrites
// it until the next rewrite. Reading it returns complete lines only, waiting for
// pmacct to finish a line, and io.EOF when the file is rewritten, replaced or
// removed, or when the context ends.
type Generation struct {
	// Origin names this generation by path, inode and first line: stable across
	// restarts of flowdex, different for each purge pmacct writes.
	Origin string
	r      *followReader
}

// Read implements io.Reader.
func (g *Generation) Read(p []byte) (int, error) { return g.r.read(p) }

// Close stops reading ahead and releases the file.
func (g *Generation) Close() error {
	g.r.stop()
	return g.r.f.Close()
}

// Lost returns how many bytes of this generation were never read: pmacct rewrote
// the file before flowdex could read them (read-ahead full), or its last line was
// never finished. Valid once Read has returned io.EOF.
func (g *Generation) Lost() int64 {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	return g.r.lost
}

// Follower follows a pmacct print-plugin output file, as pmacct writes it: rewritten
// at every purge (print_output_file_append false) or appended to (true).
type Follower struct {
	Path string
	Poll time.Duration
}

// Next waits until the file exists and has a complete first line, and returns its
// current generation.
func (fl *Follower) Next(ctx context.Context) (*Generation, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(fl.Path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err == nil {
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, err
			}
			if first, _ := firstLine(f); first != nil {
				h := fnv.New64a()
				h.Write(first)
				r := &followReader{f: f, path: fl.Path, poll: fl.Poll, ino: inode(st), first: first}
				r.cond = sync.NewCond(&r.mu)
				ctx, r.cancel = context.WithCancel(ctx)
				go r.readAhead(ctx)
				origin := fmt.Sprintf("%s|%d|%x", fl.Path, inode(st), h.Sum64())
				return &Generation{Origin: origin, r: r}, nil
			}
			f.Close() // empty, or pmacct is still writing the first line
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(fl.Poll):
		}
	}
}

type followReader struct {
	f      *os.File
	path   string
	poll   time.Duration
	ino    uint64
	first  []byte // the first line: a rewrite changes it...
	tail   []byte // ...or the last bytes read, which a rewrite moves
	offset int64  // bytes read from the file
	cancel context.CancelFunc

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte // read ahead, not yet returned: complete lines, then a partial one
	ready   int    // how much of pending ends with a newline
	done    bool   // the generation ended
	err     error  // a read error, reported after pending is drained
	lost    int64
}

func (r *followReader) stop() {
	r.cancel()
	r.mu.Lock()
	r.done = true
	r.cond.Broadcast()
	r.mu.Unlock()
}

func (r *followReader) read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.ready == 0 && !r.done {
		r.cond.Wait()
	}
	if r.ready == 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n := copy(p, r.pending[:r.ready])
	r.pending = r.pending[n:]
	r.ready -= n
	r.cond.Broadcast() // room for the read-ahead
	return n, nil
}

// readAhead reads the file as pmacct writes it until the generation ends.
func (r *followReader) readAhead(ctx context.Context) {
	buf := make([]byte, 64<<10)
	var lastSize int64
	finish := func(err error) {
		r.mu.Lock()
		if lastSize > r.offset {
			r.lost += lastSize - r.offset
		}
		r.lost += int64(len(r.pending) - r.ready) // a last line never finished
		r.pending = r.pending[:r.ready]
		r.err = err
		r.done = true
		r.cond.Broadcast()
		r.mu.Unlock()
	}
	for {
		if ctx.Err() != nil {
			finish(nil)
			return
		}
		st, err := os.Stat(r.path)
		if err != nil || inode(st) != r.ino || st.Size() < r.offset || r.changed() {
			finish(nil) // removed, replaced, truncated or rewritten
			return
		}
		lastSize = st.Size()
		for r.offset < lastSize {
			r.mu.Lock()
			for len(r.pending) >= MaxReadAhead && !r.done {
				r.cond.Wait() // the consumer is behind: what pmacct rewrites now is lost, and counted
			}
			stopped := r.done
			r.mu.Unlock()
			if stopped {
				return
			}
			n, err := r.f.ReadAt(buf, r.offset)
			if n > 0 {
				if r.changed() {
					break // rewritten while reading: the next Stat ends the generation
				}
				r.offset += int64(n)
				r.tail = append(r.tail, buf[:n]...)
				if extra := len(r.tail) - tailSize; extra > 0 {
					r.tail = append(r.tail[:0], r.tail[extra:]...)
				}
				r.mu.Lock()
				r.pending = append(r.pending, buf[:n]...)
				if i := bytes.LastIndexByte(r.pending, '\n'); i >= 0 {
					r.ready = i + 1
				} else if len(r.pending) > DefaultMaxLine {
					r.ready = len(r.pending) // an endless line: the reader counts it as bad
				}
				r.cond.Broadcast()
				r.mu.Unlock()
			}
			if err != nil && !errors.Is(err, io.EOF) {
				finish(err)
				return
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.poll):
		}
	}
}

// tailSize is how much of what was last read is kept to recognise a rewrite.
const tailSize = 256

// changed reports whether the bytes already read are no longer in the file: its
// first line or the last bytes read differ. pmacct's markers and stamp_updated make
// each purge's content differ; two purges identical to the byte where the first
// one ended are taken for an append.
func (r *followReader) changed() bool {
	cur, err := firstLine(io.NewSectionReader(r.f, 0, int64(len(r.first))))
	if err != nil || !bytes.Equal(cur, r.first) {
		return true
	}
	if len(r.tail) > 0 {
		cur := make([]byte, len(r.tail))
		if _, err := r.f.ReadAt(cur, r.offset-int64(len(r.tail))); err != nil || !bytes.Equal(cur, r.tail) {
			return true
		}
	}
	return false
}

// firstLine returns the first complete line, newline included; for a first line
// longer than 64 KiB, its first 64 KiB, which are enough to tell purges apart. It
// returns nil while the first line is incomplete.
func firstLine(r io.Reader) ([]byte, error) {
	buf := make([]byte, 64<<10)
	n, err := io.ReadFull(r, buf)
	if n == 0 {
		return nil, err
	}
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		return buf[:i+1], nil
	}
	if n == len(buf) {
		return buf, nil
	}
	return nil, nil
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
