package netflow

import (
	"encoding/binary"
	"net/netip"
)

// Builders of handmade datagrams for the tests.

type fld struct {
	typ, length uint16
	pen         uint32 // enterprise-specific when not 0
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u8(v uint8) []byte   { return []byte{v} }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func ip(s string) []byte  { return netip.MustParseAddr(s).AsSlice() }

func fieldSpecs(version uint16, fields []fld) []byte {
	var b []byte
	for _, f := range fields {
		if f.pen != 0 && version == versionIPFIX {
			b = cat(b, u16(f.typ|0x8000), u16(f.length), u32(f.pen))
			continue
		}
		b = cat(b, u16(f.typ), u16(f.length))
	}
	return b
}

// set wraps a set body in its header.
func set(id uint16, body ...[]byte) []byte {
	b := cat(body...)
	return cat(u16(id), u16(uint16(4+len(b))), b)
}

// tmpl is a template record (set 0 in v9, 2 in IPFIX).
func tmpl(version, id uint16, fields ...fld) []byte {
	return cat(u16(id), u16(uint16(len(fields))), fieldSpecs(version, fields))
}

func optTmplV9(id uint16, scopes, options []fld) []byte {
	return cat(u16(id), u16(uint16(4*len(scopes))), u16(uint16(4*len(options))),
		fieldSpecs(versionV9, scopes), fieldSpecs(versionV9, options))
}

func optTmplIPFIX(id uint16, scopes, options []fld) []byte {
	return cat(u16(id), u16(uint16(len(scopes)+len(options))), u16(uint16(len(scopes))),
		fieldSpecs(versionIPFIX, scopes), fieldSpecs(versionIPFIX, options))
}

// Header values of handmade datagrams.
const (
	tUptime = 100_000    // ms
	tSecs   = 1704067200 // 2024-01-01 00:00:00 UTC
	tSeq    = 42
	tDomain = 7
)

// v9 builds a NetFlow v9 datagram; count is the header's record count.
func v9(count uint16, sets ...[]byte) []byte {
	return cat(u16(9), u16(count), u32(tUptime), u32(tSecs), u32(tSeq), u32(tDomain), cat(sets...))
}

// ipfix builds an IPFIX message with a correct length.
func ipfix(sets ...[]byte) []byte {
	b := cat(sets...)
	return cat(u16(10), u16(uint16(16+len(b))), u32(tSecs), u32(tSeq), u32(tDomain), b)
}

// v5 builds a NetFlow v5 datagram from 48-octet records.
func v5(count uint16, sampling uint16, records ...[]byte) []byte {
	return cat(u16(5), u16(count), u32(tUptime), u32(tSecs), u32(500_000_000), u32(tSeq),
		u8(1), u8(3), u16(sampling), cat(records...))
}

type v5rec struct {
	src, dst, nh      string
	in, out           uint16
	pkts, octets      uint32
	first, last       uint32
	sport, dport      uint16
	flags, proto, tos uint8
	srcAS, dstAS      uint16
	srcMask, dstMask  uint8
}

func (r v5rec) bytes() []byte {
	return cat(ip(r.src), ip(r.dst), ip(r.nh), u16(r.in), u16(r.out), u32(r.pkts), u32(r.octets),
		u32(r.first), u32(r.last), u16(r.sport), u16(r.dport), u8(0), u8(r.flags), u8(r.proto), u8(r.tos),
		u16(r.srcAS), u16(r.dstAS), u8(r.srcMask), u8(r.dstMask), u16(0))
}
