package elasticsearch

import (
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
// a crash leaves at most a torn last record, which reads as corrupt and ends
// its segment.

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
	dir string
	max int64

	mu      sync.Mutex
	segs    []uint64 // closed segments, oldest first
	sizes   map[uint64]int64
	docs    map[uint64]int64 // documents per segment
	ndocs   int64            // documents in every segment
	cur     *os.File         // the segment appended to; nil until needed
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
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	sp := &spool{dir: dir, max: max, sizes: map[uint64]int64{}, docs: map[uint64]int64{}}
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
			return nil, fmt.Errorf("spool: %w", err)
		}
		sp.segs = append(sp.segs, seq)
		sp.sizes[seq] = info.Size()
		sp.total += info.Size()
		n := countDocs(filepath.Join(dir, e.Name()))
		sp.docs[seq] = n
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

// countDocs adds up the item counts of a segment's record headers (up to a
// damaged record).
func countDocs(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var hdr [spoolHeader]byte
	var n int64
	for {
		if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:4]) != spoolMagic {
			return n
		}
		items, size := int64(binary.BigEndian.Uint32(hdr[4:])), int64(binary.BigEndian.Uint32(hdr[8:]))
		if _, err := f.Seek(items*spoolItem+size+4, io.SeekCurrent); err != nil {
			return n
		}
		n += items
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
	return diskError(os.Remove(filepath.Join(sp.dir, segmentName(seq))))
}

// read calls fn with each record of segment seq after the first skip ones,
// decoded into b, and returns how many records fn took. It stops at fn's first
// error, and at a corrupt record (errSpoolCorrupt).
func (sp *spool) read(seq uint64, skip int, b *batch, fn func(*batch) error) (int, error) {
	f, err := os.Open(filepath.Join(sp.dir, segmentName(seq)))
	if err != nil {
		return 0, diskError(err)
	}
	defer f.Close()
	var hdr [spoolHeader]byte
	var rec []byte
	done := 0
	for i := 0; ; i++ {
		if _, err := io.ReadFull(f, hdr[:]); err != nil {
			if err == io.EOF {
				return done, nil
			}
			return done, fmt.Errorf("%w in %s: record %d cut short", errSpoolCorrupt, segmentName(seq), i)
		}
		if string(hdr[:4]) != spoolMagic {
			return done, fmt.Errorf("%w in %s: record %d", errSpoolCorrupt, segmentName(seq), i)
		}
		n, size := int(binary.BigEndian.Uint32(hdr[4:])), int(binary.BigEndian.Uint32(hdr[8:]))
		total := spoolHeader + n*spoolItem + size + 4
		if n > size || total > 1<<31 {
			return done, fmt.Errorf("%w in %s: record %d", errSpoolCorrupt, segmentName(seq), i)
		}
		rec = append(rec[:0], hdr[:]...)
		rec = slices.Grow(rec, total)[:total]
		if _, err := io.ReadFull(f, rec[spoolHeader:]); err != nil {
			return done, fmt.Errorf("%w in %s: record %d cut short", errSpoolCorrupt, segmentName(seq), i)
		}
		if crc32.ChecksumIEEE(rec[:total-4]) != binary.BigEndian.Uint32(rec[total-4:]) {
			return done, fmt.Errorf("%w in %s: record %d fails its checksum", errSpoolCorrupt, segmentName(seq), i)
		}
		if i < skip {
			continue
		}
		if !decodeRecord(b, rec, n) {
			return done, fmt.Errorf("%w in %s: record %d has bad offsets", errSpoolCorrupt, segmentName(seq), i)
		}
		if err := fn(b); err != nil {
			return done, err
		}
		done++
	}
}

// close closes the segment being appended to.
func (sp *spool) close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.rotate()
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
