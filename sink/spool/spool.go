// Package spool keeps, on disk, what an output could not deliver: a
// directory of segment files, NNNNNNNNNNNNNNNNNNNN.spool, written in
// sequence, each holding records
//
//	"FDS1" | count uint32 | size uint32 | count × ItemBytes | size bytes | CRC-32 of all before it
//
// whose payload (everything between the header and the checksum) is the
// output's own encoding of count entries (documents, messages). Appends are
// synced before they count: a crash leaves at most a torn last record. A
// damaged record (torn, or bytes changed on disk) is skipped, reading goes on
// at the next intact one, and the entries lost are counted. One process
// sends a directory: it is locked (flock) while open, with the holder's pid.
package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/flowdex/flowdex/aggregate/setting"
)

const (
	magic = "FDS1"
	// HeaderBytes is the length of a record's header, before its payload.
	HeaderBytes  = 12
	segmentLimit = 16 << 20 // a new segment after this many bytes
)

var (
	// ErrFull is the error of an append over the cap.
	ErrFull = errors.New("spool full")
	// ErrCorrupt is that of a read that met damaged records (a *Damage).
	ErrCorrupt = errors.New("corrupt record")
	// ErrBadRecord, returned by a Read callback, says an intact record is
	// not one the output can decode: it is skipped and its entries counted lost.
	ErrBadRecord = errors.New("record not decodable")
)

// Options says what a spool's records are.
type Options struct {
	// ItemBytes is the size of the fixed items that start a payload, one per
	// entry (0: none); the header's size is that of the rest.
	ItemBytes int
	// Entries names the entries in messages ("documents", "records").
	Entries string
}

// Spool is a spool directory, open. Its methods are safe for concurrent use.
type Spool struct {
	dir  string
	max  int64
	opt  Options
	lock *os.File // held from Open to Close (see lock)

	mu      sync.Mutex
	segs    []uint64 // closed segments, oldest first
	sizes   map[uint64]int64
	counts  map[uint64]int64  // entries per segment
	unread  map[uint64]Damage // damage found at open in a segment of an earlier run
	entries int64             // entries in every segment
	cur     *os.File          // the segment appended to; nil until needed
	curSeq  uint64
	curSize int64
	total   int64 // bytes in every segment
	active  bool  // something is on disk: new entries queue behind it
	scratch []byte
}

// SegmentName is the file name of segment seq.
func SegmentName(seq uint64) string { return fmt.Sprintf("%020d.spool", seq) }

// Open reads what an earlier run left in dir, which it creates if needed
// and locks; max caps the bytes on disk.
func Open(dir string, max int64, opt Options) (*Spool, error) {
	if opt.Entries == "" {
		opt.Entries = "entries"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lk, err := lock(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		lk.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	sp := &Spool{dir: dir, max: max, opt: opt, lock: lk, sizes: map[uint64]int64{}, counts: map[uint64]int64{}, unread: map[uint64]Damage{}}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".spool")
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			lk.Close()
			return nil, fmt.Errorf("spool: %w", err)
		}
		sp.segs = append(sp.segs, seq)
		sp.sizes[seq] = info.Size()
		sp.total += info.Size()
		n, d := sp.countEntries(filepath.Join(dir, e.Name()))
		sp.counts[seq] = n
		if d.unknown > 0 {
			sp.unread[seq] = d
		}
		sp.entries += n
	}
	slices.Sort(sp.segs)
	if n := len(sp.segs); n > 0 {
		sp.curSeq = sp.segs[n-1]
	}
	sp.active = len(sp.segs) > 0
	return sp, nil
}

// Dir is the spool's directory.
func (sp *Spool) Dir() string { return sp.dir }

// Active reports whether entries are queued on disk: new ones go behind them.
func (sp *Spool) Active() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.active
}

// Entries is how many entries the spool holds.
func (sp *Spool) Entries() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.entries
}

// countEntries adds up the entries of a segment's records, and describes its
// damaged stretches: those whose headers are unreadable hold entries no
// count covers.
func (sp *Spool) countEntries(path string) (int64, Damage) {
	f, err := os.Open(path)
	if err != nil {
		return 0, Damage{}
	}
	defer f.Close()
	sc, err := sp.newScanner(f)
	if err != nil {
		return 0, Damage{}
	}
	var n int64
	for {
		_, items, err := sc.next()
		if err != nil { // the end, or an I/O error: the read will say
			return n + sc.d.headers, sc.d
		}
		n += int64(items)
	}
}

// Bytes is what the spool holds on disk.
func (sp *Spool) Bytes() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.total
}

// Append writes one record of count entries, whose payload encode appends
// to its argument, and syncs it.
func (sp *Spool) Append(count int, encode func([]byte) []byte) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	be := binary.BigEndian
	rec := append(sp.scratch[:0], magic...)
	rec = be.AppendUint32(rec, uint32(count))
	rec = be.AppendUint32(rec, 0)
	rec = encode(rec)
	be.PutUint32(rec[8:], uint32(len(rec)-HeaderBytes-count*sp.opt.ItemBytes))
	rec = be.AppendUint32(rec, crc32.ChecksumIEEE(rec))
	sp.scratch = rec
	if sp.total+int64(len(rec)) > sp.max {
		return fmt.Errorf("%w: %s holds %d bytes, spool_max_bytes is %d", ErrFull, sp.dir, sp.total, sp.max)
	}
	if sp.cur == nil || sp.curSize >= segmentLimit {
		if err := sp.rotate(); err != nil {
			return err
		}
		sp.curSeq++
		f, err := os.OpenFile(filepath.Join(sp.dir, SegmentName(sp.curSeq)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return diskError(err)
		}
		sp.cur, sp.curSize = f, 0
	}
	if _, err := sp.cur.Write(rec); err != nil {
		_ = sp.cur.Truncate(sp.curSize) // no torn record behind the next one
		return diskError(err)
	}
	if err := sp.cur.Sync(); err != nil {
		_ = sp.cur.Truncate(sp.curSize)
		return diskError(err)
	}
	sp.curSize += int64(len(rec))
	sp.total += int64(len(rec))
	sp.counts[sp.curSeq] += int64(count)
	sp.entries += int64(count)
	sp.active = true
	return nil
}

// rotate closes the segment being appended to; reads go to closed ones only.
func (sp *Spool) rotate() error {
	if sp.cur == nil {
		return nil
	}
	err := sp.cur.Close()
	sp.segs = append(sp.segs, sp.curSeq)
	sp.sizes[sp.curSeq] = sp.curSize
	sp.cur = nil
	return diskError(err)
}

func diskError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("spool: disk full: %w", err)
	}
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// Next is the oldest segment to send; false when the spool is empty, which
// also ends the queueing on disk.
func (sp *Spool) Next() (uint64, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if len(sp.segs) == 0 && sp.cur != nil && sp.curSize > 0 {
		if err := sp.rotate(); err != nil {
			return 0, false
		}
	}
	if len(sp.segs) == 0 {
		sp.active = false
		return 0, false
	}
	return sp.segs[0], true
}

// Remove deletes a segment that was sent.
func (sp *Spool) Remove(seq uint64) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	i := slices.Index(sp.segs, seq)
	if i < 0 {
		return nil
	}
	sp.segs = slices.Delete(sp.segs, i, i+1)
	sp.total -= sp.sizes[seq]
	sp.entries -= sp.counts[seq]
	delete(sp.sizes, seq)
	delete(sp.counts, seq)
	delete(sp.unread, seq)
	return diskError(os.Remove(filepath.Join(sp.dir, SegmentName(seq))))
}

// Read calls fn with the payload and entry count of each intact record of
// segment seq after the first skip ones, and returns how many records fn
// took. It stops at fn's first error, but for ErrBadRecord: that record is
// counted damaged and reading goes on. Damaged records are skipped (see
// scanner); a pass to the end that met any returns a *Damage, which says how
// many entries they held. The payload is valid until fn returns.
func (sp *Spool) Read(seq uint64, skip int, fn func(payload []byte, count int) error) (int, error) {
	f, err := os.Open(filepath.Join(sp.dir, SegmentName(seq)))
	if err != nil {
		return 0, diskError(err)
	}
	defer f.Close()
	sc, err := sp.newScanner(f)
	if err != nil {
		return 0, diskError(err)
	}
	var recovered int64 // entries of the records fn took, or would have before skip
	done := 0
	for i := 0; ; {
		rec, n, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return done, diskError(err)
		}
		if i < skip {
			i++
			recovered += int64(n)
			continue
		}
		if err := fn(rec[HeaderBytes:len(rec)-4], n); errors.Is(err, ErrBadRecord) {
			sc.damaged(int64(n), 0) // intact, but not what this output wrote: lost all the same
			continue
		} else if err != nil {
			return done, err
		}
		i++
		recovered += int64(n)
		done++
	}
	if sc.d.stretches == 0 {
		return done, nil
	}
	return done, sp.damage(seq, recovered, sc.d)
}

// damage completes what a pass over segment seq found damaged: the entries
// lost are those the segment held (counted when appended, or at open) less
// those recovered; those of stretches already unreadable at open, which no
// count covers, are estimated from the segment's bytes per entry.
func (sp *Spool) damage(seq uint64, recovered int64, d Damage) *Damage {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	d.Segment = SegmentName(seq)
	d.entries = sp.opt.Entries
	d.Lost = max(0, sp.counts[seq]-recovered)
	if u := sp.unread[seq]; u.unknown > 0 {
		est := int64(u.unknownStretches) // every record holds one entry at least
		if good := sp.sizes[seq] - u.bytes; recovered > 0 && good > 0 {
			est = max(est, (u.unknown*recovered+good/2)/good)
		}
		d.Lost += est
		d.Estimated = est
	}
	return &d
}

// Damage describes the damaged records of a segment.
type Damage struct {
	Segment          string
	stretches        int   // runs of damaged bytes
	bytes            int64 // in them
	headers          int64 // entries the damaged records' headers name, when they could be read
	unknown          int64 // bytes of stretches whose headers could not be read
	unknownStretches int
	entries          string
	Lost             int64 // entries lost, Estimated of them from the bytes
	Estimated        int64
}

func (d *Damage) Error() string {
	msg := fmt.Sprintf("%v in %s: %d damaged stretches (%d bytes) skipped, %d %s lost", ErrCorrupt,
		d.Segment, d.stretches, d.bytes, d.Lost, d.entries)
	if d.Estimated > 0 {
		msg += fmt.Sprintf(" (%d of them estimated from the bytes: those records were unreadable when the spool was opened)", d.Estimated)
	}
	return msg
}

func (d *Damage) Is(target error) bool { return target == ErrCorrupt }

// scanner reads a segment's records in order, resynchronising after a damaged
// one on the next offset where an intact record starts ("FDS1", lengths within
// the file, checksum right), so that one bad record loses only itself.
type scanner struct {
	f         *os.File
	itemBytes int
	size      int64
	off       int64
	rec       []byte
	win       []byte
	d         Damage
}

func (sp *Spool) newScanner(f *os.File) (*scanner, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &scanner{f: f, itemBytes: sp.opt.ItemBytes, size: info.Size()}, nil
}

// next returns the next intact record and its entry count; io.EOF at the end.
func (sc *scanner) next() ([]byte, int, error) {
	for sc.off < sc.size {
		total, n, err := sc.check(sc.off)
		if err != nil {
			return nil, 0, err
		}
		if total > 0 {
			sc.off += total
			return sc.rec, n, nil
		}
		end, err := sc.resync(sc.off + 1)
		if err != nil {
			return nil, 0, err
		}
		if err := sc.account(sc.off, end); err != nil {
			return nil, 0, err
		}
		sc.off = end
	}
	return nil, 0, io.EOF
}

// length is that of a record of n entries and a header's size.
func (sc *scanner) length(n, size int) int64 {
	return int64(HeaderBytes + n*sc.itemBytes + size + 4)
}

// check reads the record at off into sc.rec: its length and entry count if it
// is intact, 0 if not.
func (sc *scanner) check(off int64) (int64, int, error) {
	n, size, ok, err := sc.header(off)
	if err != nil || !ok {
		return 0, 0, err
	}
	total := sc.length(n, size)
	if off+total > sc.size {
		return 0, 0, nil
	}
	sc.rec = slices.Grow(sc.rec[:0], int(total))[:total]
	if _, err := sc.f.ReadAt(sc.rec, off); err != nil {
		return 0, 0, err
	}
	if crc32.ChecksumIEEE(sc.rec[:total-4]) != binary.BigEndian.Uint32(sc.rec[total-4:]) {
		return 0, 0, nil
	}
	return total, n, nil
}

// header reads the header at off: ok when it has the magic and lengths a
// record can have (every entry takes a byte of the rest at least).
func (sc *scanner) header(off int64) (n, size int, ok bool, err error) {
	var hdr [HeaderBytes]byte
	if off+HeaderBytes > sc.size {
		return 0, 0, false, nil
	}
	if _, err := sc.f.ReadAt(hdr[:], off); err != nil {
		return 0, 0, false, err
	}
	n, size = int(binary.BigEndian.Uint32(hdr[4:])), int(binary.BigEndian.Uint32(hdr[8:]))
	ok = string(hdr[:4]) == magic && n > 0 && n <= size && sc.length(n, size) <= 1<<31
	return n, size, ok, nil
}

// resync is the offset of the first intact record at or after from, or the
// end of the file.
func (sc *scanner) resync(from int64) (int64, error) {
	const window = 64 << 10
	if sc.win == nil {
		sc.win = make([]byte, window+len(magic)-1)
	}
	for pos := from; pos < sc.size; pos += window {
		k, err := sc.f.ReadAt(sc.win, pos)
		if err != nil && err != io.EOF {
			return 0, err
		}
		for i := 0; i < min(k, window); {
			j := bytes.Index(sc.win[i:k], []byte(magic))
			if j < 0 || i+j >= window {
				break
			}
			at := pos + int64(i+j)
			total, _, err := sc.check(at)
			if err != nil {
				return 0, err
			}
			if total > 0 {
				return at, nil
			}
			i += j + 1
		}
	}
	return sc.size, nil
}

// account counts the damaged stretch [a, b). When the damaged records' headers
// chain from a to b (or past the end of the file: a record cut short), their
// entry counts are known; else only the bytes are.
func (sc *scanner) account(a, b int64) error {
	var n int64
	p := a
	for p < b {
		k, size, ok, err := sc.header(p)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		n += int64(k)
		p += sc.length(k, size)
	}
	if p == b || p > b && b == sc.size {
		sc.damaged(n, b-a)
	} else {
		sc.damaged(0, b-a)
		sc.d.unknown += b - a
		sc.d.unknownStretches++
	}
	return nil
}

// damaged records one damaged stretch.
func (sc *scanner) damaged(n, bytes int64) {
	sc.d.stretches++
	sc.d.bytes += bytes
	sc.d.headers += n
}

// Close closes the segment being appended to and releases the directory.
func (sp *Spool) Close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	err := sp.rotate()
	if sp.lock != nil {
		sp.lock.Close()
		sp.lock = nil
	}
	return err
}

// CheckLimits reports, as setting.KeyErrors, the spool settings an output
// has that are not positive: spool_max_bytes and spool_after.
func CheckLimits(maxBytes int64, after setting.Duration) []error {
	var errs []error
	if maxBytes <= 0 {
		errs = append(errs, setting.Errorf("spool_max_bytes", "%d: expected a positive size, e.g. 1073741824", maxBytes))
	}
	if after.Duration <= 0 {
		errs = append(errs, setting.Errorf("spool_after", "%s: expected a positive duration, e.g. \"30s\"", after))
	}
	return errs
}

// CheckDir reports an error unless dir is a directory or can be made inside
// the nearest directory above it that exists: what a configuration check
// can say of a spool_dir before Open.
func CheckDir(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		switch {
		case err == nil && st.IsDir():
			return nil
		case err == nil:
			return fmt.Errorf("%s is not a directory", d)
		case !errors.Is(err, os.ErrNotExist):
			return err
		case filepath.Dir(d) == d:
			return fmt.Errorf("no directory above %s exists", dir)
		}
	}
}
