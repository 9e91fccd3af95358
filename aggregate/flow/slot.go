package flow

import (
	"net/netip"
	"slices"
	"unsafe"
)

// Slot is where a Record keeps a primitive's value (Primitive.Slot): the
// offset and type of its field, found once from the table, so that a decoder
// following a plan (NetFlow/IPFIX templates) and the cache's key packing read
// and write fields without a switch per primitive. Slots come only from the
// table, which checks them at start; the zero Slot is none.
type Slot struct {
	off uint16 // in Record; key fields are at the same offset in Key
	typ slotType
	n   uint8 // slotBytes: how many (CustomBytes at most)
}

type slotType uint8

const (
	slotNone slotType = iota
	slotU8
	slotU16
	slotU32
	slotU64
	slotI64    // Unix microseconds
	slotMAC    // [6]byte
	slotAddr   // netip.Addr
	slotBytes  // n bytes: a custom primitive's address or string, GeoIP's text
	slotCoords // Coords
)

// SlotType is what a Slot holds, for decoders.
type SlotType uint8

const (
	SlotNone  SlotType = iota
	SlotUint           // an integer of 1 to 8 bytes: SetUint
	SlotAddr           // an address: SetAddr
	SlotMAC            // a MAC address: SetMAC
	SlotBytes          // bytes (a custom primitive's address or string): SetBytes
)

// Type returns what s holds.
func (s Slot) Type() SlotType {
	switch s.typ {
	case slotNone:
		return SlotNone
	case slotMAC:
		return SlotMAC
	case slotAddr:
		return SlotAddr
	case slotBytes:
		return SlotBytes
	}
	return SlotUint
}

// Width is the most bytes the slot's value takes in a key, and the bytes
// of a custom primitive's value.
func (s Slot) Width() int {
	if s.typ == slotBytes {
		return int(s.n)
	}
	return [...]int{slotNone: 0, slotU8: 1, slotU16: 2, slotU32: 4, slotU64: 8, slotI64: 8, slotMAC: 6, slotAddr: 17, slotCoords: 16}[s.typ]
}

// at returns where s is in r.
func (s Slot) at(r *Record) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(r), s.off) }

// ptr returns where s is in k; s must be a key field (the table checks that
// every key primitive's is).
func (s Slot) ptr(k *Key) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(k), s.off) }

// Typed reads of key fields, for the writers.
func (s Slot) u8(k *Key) uint8        { return *(*uint8)(s.ptr(k)) }
func (s Slot) u16(k *Key) uint16      { return *(*uint16)(s.ptr(k)) }
func (s Slot) u32(k *Key) uint32      { return *(*uint32)(s.ptr(k)) }
func (s Slot) u64(k *Key) uint64      { return *(*uint64)(s.ptr(k)) }
func (s Slot) i64(k *Key) int64       { return *(*int64)(s.ptr(k)) }
func (s Slot) mac(k *Key) [6]byte     { return *(*[6]byte)(s.ptr(k)) }
func (s Slot) addr(k *Key) netip.Addr { return *(*netip.Addr)(s.ptr(k)) }
func (s Slot) bytes(k *Key) []byte    { return unsafe.Slice((*byte)(s.ptr(k)), s.n) }
func (s Slot) coords(k *Key) Coords   { return *(*Coords)(s.ptr(k)) }

// SetUint sets an integer slot of r to v cut to the field's width (a 2-octet
// TCP flags element keeps its low octet); other slots are left alone.
func (s Slot) SetUint(r *Record, v uint64) {
	switch s.typ {
	case slotU8:
		*(*uint8)(s.at(r)) = uint8(v)
	case slotU16:
		*(*uint16)(s.at(r)) = uint16(v)
	case slotU32:
		*(*uint32)(s.at(r)) = uint32(v)
	case slotU64, slotI64:
		*(*uint64)(s.at(r)) = v
	}
}

// SetAddr sets an address slot of r; other slots are left alone.
func (s Slot) SetAddr(r *Record, a netip.Addr) {
	if s.typ == slotAddr {
		*(*netip.Addr)(s.at(r)) = a
	}
}

// SetMAC sets a MAC address slot of r; other slots are left alone.
func (s Slot) SetMAC(r *Record, m [6]byte) {
	if s.typ == slotMAC {
		*(*[6]byte)(s.at(r)) = m
	}
}

// SetBytes sets a bytes slot of r to b, cut to the slot's length or padded
// with zeros; other slots are left alone.
func (s Slot) SetBytes(r *Record, b []byte) {
	if s.typ == slotBytes {
		d := unsafe.Slice((*byte)(s.at(r)), s.n)
		clear(d[copy(d, b):])
	}
}

// SetPrefixed sets a bytes slot of r to the length of b, then b, cut to the
// slot's length; other slots are left alone. It is how a raw custom
// primitive is kept, whose value may be zeros, or none.
func (s Slot) SetPrefixed(r *Record, b []byte) {
	if s.typ == slotBytes {
		d := unsafe.Slice((*byte)(s.at(r)), s.n)
		n := copy(d[1:], b)
		d[0] = byte(n)
		clear(d[1+n:])
	}
}

// uint reads an integer key slot of k.
func (s Slot) uint(k *Key) uint64 {
	switch p := s.ptr(k); s.typ {
	case slotU8:
		return uint64(*(*uint8)(p))
	case slotU16:
		return uint64(*(*uint16)(p))
	case slotU32:
		return uint64(*(*uint32)(p))
	case slotU64, slotI64:
		return *(*uint64)(p)
	}
	return 0
}

// KeyCodec packs the key primitives of a Set into bytes and back, for the
// cache: fixed-width fields as their bytes in memory (the host's byte order:
// keys are never stored), fields next to each other in Key copied as one,
// addresses as a family byte (0, 4 or 6) and 0, 4 or 16 bytes. The layout
// depends on the Set only and is unambiguous, so equal bytes mean equal
// primitives; zones of IPv6 addresses are dropped.
type KeyCodec struct {
	ops []keyOp
	max int
}

// keyOp copies n bytes at off in Key; n 0: packs the address at off.
type keyOp struct {
	off uint16
	n   uint16
}

// NewKeyCodec returns the codec of the key primitives of s; counters and
// what flowdex does not keep are left out.
func NewKeyCodec(s Set) KeyCodec {
	var c KeyCodec
	var buf [numPrimitives]Slot
	slots := buf[:0]
	for p := range numPrimitives {
		if w := table[p].KeyWidth(); w > 0 && s.Has(p) {
			slots = append(slots, table[p].slot)
			c.max += w
		}
	}
	c.ops = make([]keyOp, 0, len(slots))
	// in memory order, so that neighbours can be copied as one
	slices.SortFunc(slots, func(a, b Slot) int { return int(a.off) - int(b.off) })
	for _, sl := range slots {
		if sl.typ == slotAddr {
			c.ops = append(c.ops, keyOp{off: sl.off})
			continue
		}
		n := uint16(sl.Width())
		if last := len(c.ops) - 1; last >= 0 {
			if o := &c.ops[last]; o.n > 0 && o.off+o.n == sl.off && (o.n+n == 2 || o.n+n == 4 || o.n+n == 8) {
				o.n += n
				continue
			}
		}
		c.ops = append(c.ops, keyOp{off: sl.off, n: n})
	}
	return c
}

// MaxLen returns the most bytes Append writes.
func (c *KeyCodec) MaxLen() int { return c.max }

// Append appends the packed primitives of k to b.
func (c *KeyCodec) Append(b []byte, k *Key) []byte {
	for _, op := range c.ops {
		p := unsafe.Add(unsafe.Pointer(k), op.off)
		switch op.n {
		case 0:
			b = appendPackedAddr(b, *(*netip.Addr)(p))
		case 1:
			b = append(b, *(*byte)(p))
		case 2:
			b = append(b, (*[2]byte)(p)[:]...)
		case 4:
			b = append(b, (*[4]byte)(p)[:]...)
		case 6:
			b = append(b, (*[6]byte)(p)[:]...)
		case 8:
			b = append(b, (*[8]byte)(p)[:]...)
		default:
			b = append(b, unsafe.Slice((*byte)(p), op.n)...)
		}
	}
	return b
}

// Decode reads primitives packed by Append into k, whose other fields it
// leaves alone, and returns what follows them in b.
func (c *KeyCodec) Decode(b []byte, k *Key) []byte {
	for _, op := range c.ops {
		p := unsafe.Add(unsafe.Pointer(k), op.off)
		switch op.n {
		case 0:
			*(*netip.Addr)(p), b = packedAddr(b)
		case 1:
			*(*byte)(p), b = b[0], b[1:]
		case 2:
			*(*[2]byte)(p), b = [2]byte(b), b[2:]
		case 4:
			*(*[4]byte)(p), b = [4]byte(b), b[4:]
		case 6:
			*(*[6]byte)(p), b = [6]byte(b), b[6:]
		case 8:
			*(*[8]byte)(p), b = [8]byte(b), b[8:]
		default:
			b = b[copy(unsafe.Slice((*byte)(p), op.n), b):]
		}
	}
	return b
}

func appendPackedAddr(b []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		v := a.As4()
		return append(append(b, 4), v[:]...)
	case a.Is6():
		v := a.As16()
		return append(append(b, 6), v[:]...)
	default:
		return append(b, 0)
	}
}

// packedAddr reads an address written by appendPackedAddr.
func packedAddr(b []byte) (netip.Addr, []byte) {
	switch b[0] {
	case 4:
		return netip.AddrFrom4([4]byte(b[1:5])), b[5:]
	case 6:
		return netip.AddrFrom16([16]byte(b[1:17])), b[17:]
	default:
		return netip.Addr{}, b[1:]
	}
}
