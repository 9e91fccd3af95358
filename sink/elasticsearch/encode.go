package elasticsearch

import (
	"bytes"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/ratelog"
)

// batch is one bulk body being filled or in flight: NDJSON action and document
// lines, and where each document is in it.
type batch struct {
	buf   []byte
	items []item
	// maybeIndexed: an attempt failed after the request may have reached
	// Elasticsearch (connection cut, no answer in time): its documents may
	// be indexed though no answer said so
	maybeIndexed bool
	docs         span // the numbers of its documents (Sync)
}

// item locates one document's two lines in a batch. The offsets after start
// are relative to it, so that moving the lines only changes start.
type item struct {
	start, end   int   // the action line's first byte; past the document's newline
	doc          int32 // the document line
	ixOff, ixLen int32 // the index name, quoted, in the action line
	idOff, idLen int32 // the _id, as a JSON string; idLen 0 if none
	create       bool  // create action (with an _id), else index
}

func (it *item) document(buf []byte) []byte {
	return buf[it.start+int(it.doc) : it.end-1] // without the newline
}
func (it *item) index(buf []byte) []byte {
	return buf[it.start+int(it.ixOff) : it.start+int(it.ixOff+it.ixLen)]
}
func (it *item) id(buf []byte) []byte {
	if it.idLen == 0 {
		return nil
	}
	return buf[it.start+int(it.idOff) : it.start+int(it.idOff+it.idLen)]
}

// add appends one encoded item (offsets relative to enc).
func (b *batch) add(enc []byte, it item) {
	it.start = len(b.buf)
	it.end += it.start
	b.buf = append(b.buf, enc...)
	b.items = append(b.items, it)
}

// maxKeep bounds the buffer a batch keeps for reuse: one oversized document
// should not pin its memory for ever.
const maxKeep = 16 << 20

func (b *batch) reset(flushBytes int) {
	if cap(b.buf) > 2*flushBytes+maxKeep {
		b.buf = nil
	}
	b.buf = b.buf[:0]
	b.items = b.items[:0]
	b.maybeIndexed = false
}

// keep moves the kept items' lines to the front of the buffer, in order.
func (b *batch) keep(kept []int) {
	p := 0
	for n, i := range kept {
		it := b.items[i]
		size := it.end - it.start
		copy(b.buf[p:], b.buf[it.start:it.end]) // p <= it.start: a forward move
		it.start, it.end = p, p+size
		b.items[n] = it
		p += size
	}
	b.buf = b.buf[:p]
	b.items = b.items[:len(kept)]
}

const (
	createAction = `{"create":{"_index":`
	indexAction  = `{"index":{"_index":`
)

// encoder encodes documents, outside the sink's lock: Write's callers encode
// at once. It keeps the index name and the @timestamp text of the last
// second it encoded, which the documents of a time bin share: formatting
// them was a third of an encode.
type encoder struct {
	buf   []byte // the action and document lines of the last encode
	sec   int64  // the second of index and stamp, valid when stamp is not empty
	index []byte // the index name of sec, quoted; empty if it varies within a second (%f)
	stamp []byte // sec in UTC, "2006-01-02T15:04:05."
}

// encode makes e.buf the action line and the document line for doc, and
// returns the item locating them in it.
func (s *Sink) encode(e *encoder, doc *document.Document, id string, t time.Time) item {
	if sec := t.Unix(); len(e.stamp) == 0 || sec != e.sec {
		e.sec = sec
		e.stamp = t.UTC().AppendFormat(e.stamp[:0], "2006-01-02T15:04:05.")
		e.index = e.index[:0]
		if !s.c.index.SubSecond() {
			e.index = s.appendIndex(e.index, t)
		}
	}
	dst := actionStart(e.buf[:0], id)
	ix := len(dst)
	if len(e.index) > 0 {
		dst = append(dst, e.index...)
	} else {
		dst = s.appendIndex(dst, t)
	}
	dst, it := actionEnd(dst, 0, ix, id)
	if len(s.c.addrFields.names) > 0 {
		s.checkAddresses(doc, dst[it.ixOff:it.ixOff+it.ixLen])
	}
	dst = appendDocument(dst, doc, e.stamp, t)
	dst = append(dst, '\n')
	it.end = len(dst)
	e.buf = dst
	return it
}

// appendIndex appends the quoted name of t's index.
func (s *Sink) appendIndex(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = s.c.index.Render(dst, t.In(s.cfg.IndexLocation.Get()))
	return append(dst, '"')
}

// actionStart appends the action line up to its index name: create with an
// id, index without.
func actionStart(dst []byte, id string) []byte {
	if id != "" {
		return append(dst, createAction...)
	}
	return append(dst, indexAction...)
}

// actionEnd appends the rest of the action line, after the quoted index name
// that starts at dst[ix:], and gives the item's offsets (relative to base) up
// to its document line, which starts where it ends.
func actionEnd(dst []byte, base, ix int, id string) ([]byte, item) {
	it := item{ixOff: int32(ix - base), ixLen: int32(len(dst) - ix)}
	if id != "" {
		it.create = true
		dst = append(dst, `,"_id":`...)
		it.idOff = int32(len(dst) - base)
		dst = document.AppendString(dst, id)
		it.idLen = int32(len(dst)-base) - it.idOff
	}
	dst = append(dst, "}}\n"...)
	it.doc = int32(len(dst) - base)
	return dst, it
}

// appendDocument appends doc as compact JSON, in its order, with @timestamp
// last (an @timestamp of its own is replaced): t, whose second is written
// in stamp (appendTimestamp's text up to the milliseconds).
func appendDocument(dst []byte, doc *document.Document, stamp []byte, t time.Time) []byte {
	n := doc.Len()
	if doc.Index("@timestamp") < 0 {
		dst = doc.AppendJSON(dst, document.Compact)
		dst = dst[:len(dst)-1] // the closing brace
	} else {
		dst = append(dst, '{')
		n = 0
		for i := range doc.Len() {
			k, v := doc.At(i)
			if k == "@timestamp" {
				continue
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = document.AppendString(dst, k)
			dst = append(dst, ':')
			dst = document.AppendValue(dst, v)
			n++
		}
	}
	if n > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, `"@timestamp":"`...)
	dst = append(dst, stamp...)
	ms := t.Nanosecond() / 1e6
	dst = append(dst, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	return append(dst, `"}`...)
}

// appendTimestamp appends t as RFC 3339 in UTC with milliseconds:
// 2024-01-01T00:00:00.000Z.
func appendTimestamp(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
}

// addrFields are the fields the index template maps as ip with
// ignore_malformed, and a filter by length and first letter: a cheap first
// test for every field of every document.
type addrFields struct {
	names []string
	first [64]uint32 // by name length: bit c-'a' for a first letter c, bit 31 for any other
}

func newAddrFields(names []string) addrFields {
	f := addrFields{names: names}
	for _, n := range names {
		if len(n) > 0 && len(n) < 64 {
			f.first[len(n)] |= firstBit(n)
		}
	}
	return f
}

func firstBit(k string) uint32 {
	if c := k[0] - 'a'; c < 26 {
		return 1 << c
	}
	return 1 << 31
}

// has reports whether k is one of the fields.
func (f *addrFields) has(k string) bool {
	if n := len(k); n == 0 || n < 64 && f.first[n]&firstBit(k) == 0 {
		return false
	}
	return slices.Contains(f.names, k)
}

// addressCheck counts the values of addrFields that are not addresses:
// Elasticsearch indexes their document without them (marked in _ignored)
// and its answer says nothing, so a source sending garbage would go unseen.
type addressCheck struct {
	malformed atomic.Uint64
	log       ratelog.Limiter
}

// checkAddresses counts and logs the values of doc's address fields that
// Elasticsearch will ignore; index is the document's, quoted.
func (s *Sink) checkAddresses(doc *document.Document, index []byte) {
	f := &s.c.addrFields
	for i := range doc.Len() {
		k := doc.Key(i)
		if !f.has(k) {
			continue
		}
		_, v := doc.At(i)
		if !malformedAddress(v) {
			continue
		}
		n := s.addrs.malformed.Add(1)
		if ok, suppressed := s.addrs.log.Allow(); ok {
			value := document.AppendValue(nil, v)
			if len(value) > 100 {
				value = append(value[:100], "…"...)
			}
			s.logger.Warn("elasticsearch: a field mapped as an address holds something else: the document is indexed without it",
				"field", k, "value", string(value), "index", string(bytes.Trim(index, `"`)), "malformed_addresses", n,
				"similar_not_logged", suppressed)
		}
	}
}

// malformedAddress reports whether Elasticsearch's ip type refuses v. An
// empty string is pmacct's "none" (peer_ip_dst without a BGP next hop):
// not counted, although Elasticsearch ignores it too; an array is
// Elasticsearch's to judge, element by element.
func malformedAddress(v document.Value) bool {
	switch v.Kind {
	case document.Null, document.Raw:
		return false
	case document.String:
		if len(v.Bytes) == 0 {
			return false
		}
		// a view, not a copy: ParseAddr keeps nothing of it but in the
		// error, which is dropped here
		_, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(v.Bytes), len(v.Bytes)))
		return err != nil
	}
	return true // a number or a boolean
}
