package elasticsearch

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
)

// The spool is a directory of segment files, NNNNNNNNNNNNNNNNNNNN.spool,
// written in sequence; each holds bulk requests as records:
//
//	"FDS1" | items uint32 | body bytes uint32 | items × 29 bytes | body | CRC-32 of all before it
//
// An item is the offsets that locate a document in the body (see item), so a
// record reads back as the batch it was. Appends are synced before they count:
// a crash leaves at most a torn last record. A damaged record (torn, or bytes
// changed on disk) is skipped, and reading goes on at the next intact one.

const (
	spoolMagic   = "FDS1"
	spoolHeader  = 12
	spoolItem    = 29
	segmentLimit = 16 << 20 // a new segment after this many bytes
)

var (
	errSpoolFull    = errors.New("spool full")
	errSpoolCorrupt = errors.New("corrupt record")
)

type spool struct {
	dir  string
	max  int64
	lock *os.File // held from openSpool to close (see lockSpool)

	mu      sync.Mutex
	segs    []uint64 // closed segments, oldest first
	sizes   map[uint64]int64
	docs    map[uint64]int64       // documents per segment
	unread  map[uint64]spoolDamage // damage found at open in a segment of an earlier run
	ndocs   int64                  // documents in every segment
	cur     *os.File               // the segment appended to; nil until needed
	curSeq  uint64
	curSize int64
	total   int64 // bytes in every segment
	active  bool  // something is on disk: new requests queue behind it
	scratch []byte
}

func segmentName(seq uint64) string { return fmt.Sprintf("%020d.spool", seq) }

// openSpool reads what an earlier run left in dir.
func openSpool(dir string, max int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockSpool(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	sp := &spool{dir: dir, max: max, lock: lock, sizes: map[uint64]int64{}, docs: map[uint64]int64{}, unread: map[uint64]spoolDamage{}}
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
			lock.Close()
			return nil, fmt.Errorf("spool: %w", err)
		}
		sp.segs = append(sp.segs, seq)
		sp.sizes[seq] = info.Size()
		sp.total += info.Size()
		n, d := countDocs(filepath.Join(dir, e.Name()))
		sp.docs[seq] = n
		if d.unknown > 0 {
			sp.unread[seq] = d
		}
		sp.ndocs += n
	}
	slices.Sort(sp.segs)
	if n := len(sp.segs); n > 0 {
		sp.curSeq = sp.segs[n-1]
	}
	sp.active = len(sp.segs) > 0
	return sp, nil
}

// isActive reports whether requests are queued on disk.
func (sp *spool) isActive() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.active
}

// documents is how many documents the spool holds.
func (sp *spool) documents() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.ndocs
}

// countDocs adds up the documents of a segment's records, and describes its
// damaged stretches: those whose headers are unreadable hold documents no
// count covers.
func countDocs(path string) (int64, spoolDamage) {
	f, err := os.Open(path)
	if err != nil {
		return 0, spoolDamage{}
	}
	defer f.Close()
	sc, err := newScanner(f)
	if err != nil {
		return 0, spoolDamage{}
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

// bytes is what the spool holds on disk.
func (sp *spool) bytes() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.total
}

// append writes the batch as one record and syncs it.
func (sp *spool) append(b *batch) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	rec := appendRecord(sp.scratch[:0], b)
	sp.scratch = rec
	if sp.total+int64(len(rec)) > sp.max {
		return fmt.Errorf("%w: %s holds %d bytes, spool_max_bytes is %d", errSpoolFull, sp.dir, sp.total, sp.max)
	}
	if sp.cur == nil || sp.curSize >= segmentLimit {
		if err := sp.rotate(); err != nil {
			return err
		}
		sp.curSeq++
		f, err := os.OpenFile(filepath.Join(sp.dir, segmentName(sp.curSeq)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
	sp.docs[sp.curSeq] += int64(len(b.items))
	sp.ndocs += int64(len(b.items))
	sp.active = true
	return nil
}

// rotate closes the segment being appended to; the drain reads closed ones only.
func (sp *spool) rotate() error {
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

// next is the oldest segment to send; false when the spool is empty, which
// also ends the queueing on disk.
func (sp *spool) next() (uint64, bool) {
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

// remove deletes a segment that was sent.
func (sp *spool) remove(seq uint64) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	i := slices.Index(sp.segs, seq)
	if i < 0 {
		return nil
	}
	sp.segs = slices.Delete(sp.segs, i, i+1)
	sp.total -= sp.sizes[seq]
	sp.ndocs -= sp.docs[seq]
	delete(sp.sizes, seq)
	delete(sp.docs, seq)
	delete(sp.unread, seq)
	return diskError(os.Remove(filepath.Join(sp.dir, segmentName(seq))))
}

// read calls fn with each intact record of segment seq after the first skip
// ones, decoded into b, and returns how many records fn took. It stops at fn's
// first error. Damaged records are skipped (see scanner); a pass to the end
// that met any returns a *spoolDamage, which says how many documents they held.
func (sp *spool) read(seq uint64, skip int, b *batch, fn func(*batch) error) (int, error) {
	f, err := os.Open(filepath.Join(sp.dir, segmentName(seq)))
	if err != nil {
		return 0, diskError(err)
	}
	defer f.Close()
	sc, err := newScanner(f)
	if err != nil {
		return 0, diskError(err)
	}
	var recovered int64 // documents of the records fn took, or would have before skip
	done := 0
	for i := 0; ; {
		rec, n, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return done, diskError(err)
		}
		if !decodeRecord(b, rec, n) {
			sc.damaged(int64(n), 0) // intact, but not a batch this code wrote: lost all the same
			continue
		}
		recovered += int64(n)
		if i++; i <= skip {
			continue
		}
		if err := fn(b); err != nil {
			return done, err
		}
		done++
	}
	if sc.d.stretches == 0 {
		return done, nil
	}
	return done, sp.damage(seq, recovered, sc.d)
}

// damage completes what a pass over segment seq found damaged: the documents
// lost are those the segment held (counted when appended, or at open) less
// those recovered; those of stretches already unreadable at open, which no
// count covers, are estimated from the segment's bytes per document.
func (sp *spool) damage(seq uint64, recovered int64, d spoolDamage) *spoolDamage {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	d.Segment = segmentName(seq)
	d.Lost = max(0, sp.docs[seq]-recovered)
	if u := sp.unread[seq]; u.unknown > 0 {
		est := int64(u.unknownStretches) // every record holds one document at least
		if good := sp.sizes[seq] - u.bytes; recovered > 0 && good > 0 {
			est = max(est, (u.unknown*recovered+good/2)/good)
		}
		d.Lost += est
		d.Estimated = est
	}
	return &d
}

// spoolDamage describes the damaged records of a segment.
type spoolDamage struct {
	Segment          string
	stretches        int   // runs of damaged bytes
	bytes            int64 // in them
	headers          int64 // documents the damaged records' headers name, when they could be read
	unknown          int64 // bytes of stretches whose headers could not be read
	unknownStretches int
	Lost             int64 // documents lost, Estimated of them from the bytes
	Estimated        int64
}

func (d *spoolDamage) Error() string {
	msg := fmt.Sprintf("%v in %s: %d damaged stretches (%d bytes) skipped, %d documents lost", errSpoolCorrupt,
		d.Segment, d.stretches, d.bytes, d.Lost)
	if d.Estimated > 0 {
		msg += fmt.Sprintf(" (%d of them estimated from the bytes: those records were unreadable when the spool was opened)", d.Estimated)
	}
	return msg
}

func (d *spoolDamage) Is(target error) bool { return target == errSpoolCorrupt }

// scanner reads a segment's records in order, resynchronising after a damaged
// one on the next offset where an intact record starts ("FDS1", lengths within
// the file, checksum right), so that one bad record loses only itself.
type scanner struct {
	f    *os.File
	size int64
	off  int64
	rec  []byte
	win  []byte
	d    spoolDamage
}

func newScanner(f *os.File) (*scanner, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &scanner{f: f, size: info.Size()}, nil
}

// next returns the next intact record and its item count; io.EOF at the end.
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

// check reads the record at off into sc.rec: its length and item count if it
// is intact, 0 if not.
func (sc *scanner) check(off int64) (int64, int, error) {
	n, size, ok, err := sc.header(off)
	if err != nil || !ok {
		return 0, 0, err
	}
	total := int64(spoolHeader + n*spoolItem + size + 4)
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
// record can have.
func (sc *scanner) header(off int64) (n, size int, ok bool, err error) {
	var hdr [spoolHeader]byte
	if off+spoolHeader > sc.size {
		return 0, 0, false, nil
	}
	if _, err := sc.f.ReadAt(hdr[:], off); err != nil {
		return 0, 0, false, err
	}
	n, size = int(binary.BigEndian.Uint32(hdr[4:])), int(binary.BigEndian.Uint32(hdr[8:]))
	ok = string(hdr[:4]) == spoolMagic && n > 0 && n <= size && int64(spoolHeader+n*spoolItem+size+4) <= 1<<31
	return n, size, ok, nil
}

// resync is the offset of the first intact record at or after from, or the
// end of the file.
func (sc *scanner) resync(from int64) (int64, error) {
	const window = 64 << 10
	if sc.win == nil {
		sc.win = make([]byte, window+len(spoolMagic)-1)
	}
	for pos := from; pos < sc.size; pos += window {
		k, err := sc.f.ReadAt(sc.win, pos)
		if err != nil && err != io.EOF {
			return 0, err
		}
		for i := 0; i < min(k, window); {
			j := bytes.Index(sc.win[i:k], []byte(spoolMagic))
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
// item counts are known; else only the bytes are.
func (sc *scanner) account(a, b int64) error {
	var docs int64
	p := a
	for p < b {
		n, size, ok, err := sc.header(p)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		docs += int64(n)
		p += int64(spoolHeader + n*spoolItem + size + 4)
	}
	if p == b || p > b && b == sc.size {
		sc.damaged(docs, b-a)
	} else {
		sc.damaged(0, b-a)
		sc.d.unknown += b - a
		sc.d.unknownStretches++
	}
	return nil
}

// damaged records one damaged stretch.
func (sc *scanner) damaged(docs, bytes int64) {
	sc.d.stretches++
	sc.d.bytes += bytes
	sc.d.headers += docs
}

// close closes the segment being appended to and releases the directory.
func (sp *spool) close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	err := sp.rotate()
	if sp.lock != nil {
		sp.lock.Close()
		sp.lock = nil
	}
	return err
}

func appendRecord(dst []byte, b *batch) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = append(dst, spoolMagic...)
	dst = be.AppendUint32(dst, uint32(len(b.items)))
	dst = be.AppendUint32(dst, uint32(len(b.buf)))
	for _, it := range b.items {
		dst = be.AppendUint32(dst, uint32(it.start))
		dst = be.AppendUint32(dst, uint32(it.end))
		for _, v := range [...]int32{it.doc, it.ixOff, it.ixLen, it.idOff, it.idLen} {
			dst = be.AppendUint32(dst, uint32(v))
		}
		if it.create {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	}
	dst = append(dst, b.buf...)
	return be.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

// decodeRecord fills b from a checked record of n items; false when an
// item points outside the body.
func decodeRecord(b *batch, rec []byte, n int) bool {
	be := binary.BigEndian
	items := rec[spoolHeader : spoolHeader+n*spoolItem]
	body := rec[spoolHeader+n*spoolItem : len(rec)-4]
	b.buf = append(b.buf[:0], body...)
	b.items = b.items[:0]
	for i := range n {
		p := items[i*spoolItem:]
		it := item{start: int(be.Uint32(p)), end: int(be.Uint32(p[4:])),
			doc: int32(be.Uint32(p[8:])), ixOff: int32(be.Uint32(p[12:])), ixLen: int32(be.Uint32(p[16:])),
			idOff: int32(be.Uint32(p[20:])), idLen: int32(be.Uint32(p[24:])), create: p[28] == 1}
		if it.start < 0 || it.end > len(body) || it.start >= it.end || it.doc < 0 || it.start+int(it.doc) >= it.end ||
			it.ixOff < 0 || it.ixLen < 0 || it.start+int(it.ixOff+it.ixLen) > it.end ||
			it.idOff < 0 || it.idLen < 0 || it.start+int(it.idOff+it.idLen) > it.end {
			return false
		}
		b.items = append(b.items, it)
	}
	return true
}
