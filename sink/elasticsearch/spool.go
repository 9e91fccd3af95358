package elasticsearch

import (
	"encoding/binary"

	"github.com/flowdex/flowdex/sink/spool"
)

// A spooled bulk request is one spool record (see package spool) of one
// entry per document: its payload is the items, 29 bytes each, then the
// body, so the record reads back as the batch it was.
const spoolItem = 29

func openSpool(dir string, max int64) (*spool.Spool, error) {
	return spool.Open(dir, max, spool.Options{ItemBytes: spoolItem, Entries: "documents"})
}

// appendSpool writes b to sp as one record.
func appendSpool(sp *spool.Spool, b *batch) error {
	return sp.Append(len(b.items), func(dst []byte) []byte { return appendRecord(dst, b) })
}

// readSpool calls fn with each intact record of segment seq after the first
// skip ones, decoded into b (see spool.Spool.Read).
func readSpool(sp *spool.Spool, seq uint64, skip int, b *batch, fn func(*batch) error) (int, error) {
	return sp.Read(seq, skip, func(payload []byte, n int) error {
		if !decodeRecord(b, payload, n) {
			return spool.ErrBadRecord
		}
		return fn(b)
	})
}

// appendRecord appends the payload of b's record.
func appendRecord(dst []byte, b *batch) []byte {
	be := binary.BigEndian
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
	return append(dst, b.buf...)
}

// decodeRecord fills b from the payload of a checked record of n items;
// false when an item points outside the body.
func decodeRecord(b *batch, payload []byte, n int) bool {
	be := binary.BigEndian
	items := payload[:n*spoolItem]
	body := payload[n*spoolItem:]
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
