package main

import (
	bin "encoding/binary"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// Builders of NetFlow v9 and IPFIX exports for the goldens whose elements no
// exporter here sends (custom primitives' vendor elements, NSEL, NEL).

// nfField is one field of a template; length varLen is IPFIX's variable
// length.
type nfField struct {
	ie, length uint16
	pen        uint32 // IPFIX enterprise number, 0 for IANA's
}

const varLen = 65535

// nfExporter builds the datagrams of one exporter, numbered in sequence.
type nfExporter struct {
	version uint16 // 9 or 10
	src     netip.AddrPort
	domain  uint32 // v9 source id, IPFIX observation domain
	seq     uint32
	out     []exportDatagram
}

// send appends a datagram of sets holding records records (templates and
// data; v9's header count, where nfacctd stops reading), exported at `at`
// (its header time and its arrival).
func (e *nfExporter) send(at time.Time, records int, sets ...[]byte) {
	var body []byte
	for _, s := range sets {
		body = append(body, s...)
	}
	var h []byte
	if e.version == 9 {
		h = bin.BigEndian.AppendUint16(h, 9)
		h = bin.BigEndian.AppendUint16(h, uint16(records))
		h = bin.BigEndian.AppendUint32(h, 3_600_000) // an hour up
		h = bin.BigEndian.AppendUint32(h, uint32(at.Unix()))
		h = bin.BigEndian.AppendUint32(h, e.seq)
		e.seq++
	} else {
		h = bin.BigEndian.AppendUint16(h, 10)
		h = bin.BigEndian.AppendUint16(h, uint16(16+len(body)))
		h = bin.BigEndian.AppendUint32(h, uint32(at.Unix()))
		h = bin.BigEndian.AppendUint32(h, e.seq)
		e.seq += uint32(records)
	}
	h = bin.BigEndian.AppendUint32(h, e.domain)
	e.out = append(e.out, exportDatagram{at: at, src: e.src, dst: netip.MustParseAddrPort("127.0.0.1:2055"), payload: append(h, body...)})
}

// templateSet is a set of one data template.
func (e *nfExporter) templateSet(id uint16, fields ...nfField) []byte {
	b := bin.BigEndian.AppendUint16(nil, id)
	b = bin.BigEndian.AppendUint16(b, uint16(len(fields)))
	for _, f := range fields {
		if f.pen != 0 {
			b = bin.BigEndian.AppendUint16(b, f.ie|0x8000)
			b = bin.BigEndian.AppendUint16(b, f.length)
			b = bin.BigEndian.AppendUint32(b, f.pen)
			continue
		}
		b = bin.BigEndian.AppendUint16(b, f.ie)
		b = bin.BigEndian.AppendUint16(b, f.length)
	}
	setID := uint16(0) // v9
	if e.version == 10 {
		setID = 2
	}
	return nfSet(setID, b)
}

// nfSet wraps a set's body in its header, padded to 4 octets.
func nfSet(id uint16, records ...[]byte) []byte {
	var body []byte
	for _, r := range records {
		body = append(body, r...)
	}
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	b := bin.BigEndian.AppendUint16(nil, id)
	b = bin.BigEndian.AppendUint16(b, uint16(4+len(body)))
	return append(b, body...)
}

// Field values of records.
func nfU8(v uint8) []byte   { return []byte{v} }
func nfU16(v uint16) []byte { return bin.BigEndian.AppendUint16(nil, v) }
func nfU32(v uint32) []byte { return bin.BigEndian.AppendUint32(nil, v) }
func nfU64(v uint64) []byte { return bin.BigEndian.AppendUint64(nil, v) }
func nfIP(s string) []byte  { return netip.MustParseAddr(s).AsSlice() }
func nfVar(v []byte) []byte { return append([]byte{byte(len(v))}, v...) } // IPFIX variable length, under 255 octets
func nfRec(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

// optionsTemplateSet is a set of one options template.
func (e *nfExporter) optionsTemplateSet(id uint16, scopes, options []nfField) []byte {
	fields := func(fs []nfField) []byte {
		var b []byte
		for _, f := range fs {
			b = bin.BigEndian.AppendUint16(b, f.ie)
			b = bin.BigEndian.AppendUint16(b, f.length)
		}
		return b
	}
	b := bin.BigEndian.AppendUint16(nil, id)
	if e.version == 9 {
		b = bin.BigEndian.AppendUint16(b, uint16(4*len(scopes)))
		b = bin.BigEndian.AppendUint16(b, uint16(4*len(options)))
		return nfSet(1, append(append(b, fields(scopes)...), fields(options)...))
	}
	b = bin.BigEndian.AppendUint16(b, uint16(len(scopes)+len(options)))
	b = bin.BigEndian.AppendUint16(b, uint16(len(scopes)))
	return nfSet(3, append(append(b, fields(scopes)...), fields(options)...))
}

// sendV5 appends a NetFlow v5 datagram of records (nfV5Rec) with the
// header's engine type and id, exported at `at`.
func (e *nfExporter) sendV5(at time.Time, engineType, engineID uint8, records ...[]byte) {
	h := bin.BigEndian.AppendUint16(nil, 5)
	h = bin.BigEndian.AppendUint16(h, uint16(len(records)))
	h = bin.BigEndian.AppendUint32(h, 3_600_000) // an hour up
	h = bin.BigEndian.AppendUint32(h, uint32(at.Unix()))
	h = bin.BigEndian.AppendUint32(h, 0)
	h = bin.BigEndian.AppendUint32(h, e.seq)
	e.seq += uint32(len(records))
	h = append(h, engineType, engineID, 0, 0)
	e.out = append(e.out, exportDatagram{at: at, src: e.src, dst: netip.MustParseAddrPort("127.0.0.1:2055"), payload: append(h, nfRec(records...)...)})
}

// nfV5Rec is a v5 record of a UDP flow from src to dst through nextHop,
// which ended a second before its datagram was sent.
func nfV5Rec(src, dst, nextHop string, packets, bytes uint32) []byte {
	r := nfRec(nfIP(src), nfIP(dst), nfIP(nextHop), nfU16(1), nfU16(2), nfU32(packets), nfU32(bytes),
		nfU32(3_599_000), nfU32(3_599_000), nfU16(1024), nfU16(53))
	return append(r, 0, 0, 17, 0, 0, 0, 0, 0, 24, 24, 0, 0) // pad, flags, proto, tos, AS, masks, pad
}

// nfacctdExport prepares a golden test against nfacctd on a generated
// export: the tools it needs, a directory, and the export's pcap in it.
func nfacctdExport(t *testing.T, ds []exportDatagram) (dir, capture string) {
	t.Helper()
	requireTools(t, "nfacctd")
	requireFaketime(t)
	dir = t.TempDir()
	capture = filepath.Join(dir, "export.pcap")
	if err := writeExportPcap(capture, ds); err != nil {
		t.Fatal(err)
	}
	return dir, capture
}
