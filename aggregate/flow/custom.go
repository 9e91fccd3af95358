package flow

import (
	"fmt"
	"slices"
	"sync"
	"unsafe"
)

// Custom primitives are pmacct's aggregate_primitives: primitives an
// operator names, each read from a NetFlow v9/IPFIX element (field_type),
// with a length and a semantics that says how its value is written. They
// take the rows Custom0... of the table, in the order of their definition,
// so that everything that derives from the table (aggregate names, cache
// keys, the JSON writer, the Elasticsearch template, the NetFlow/IPFIX plans)
// knows them. Their values live in Key.Custom.
//
// The definitions are the process's, as pmacct's aggregate_primitives is a
// daemon's: DefineCustom is called once, at start, before any pipeline or
// decoder is made (tests call it again to change them).

// The bounds of custom primitives: MaxCustom rows, CustomBytes bytes of
// values in every Key (an integer takes its length, an address 4 or 16
// bytes, a MAC 6, a string its length, and one of variable length
// VarLenCap).
const (
	MaxCustom   = 16
	CustomBytes = 128
	VarLenCap   = 48
)

// VarLen is the Len of a custom primitive of variable length (pmacct's
// len=vlen): its value is kept up to VarLenCap bytes.
const VarLen = -1

// Semantics is how a custom primitive's bytes are read and written.
type Semantics uint8

const (
	SemUint Semantics = iota + 1 // u_int: an unsigned integer of 1, 2, 4 or 8 bytes, written in decimal
	SemHex                       // hex: the same, written in hex digits
	SemIP                        // ip: an IPv4 (4 bytes) or IPv6 (16 bytes) address
	SemMAC                       // mac: a MAC address, 6 bytes
	SemStr                       // str: text, up to its first zero byte
	SemRaw                       // raw: bytes, written in hex digits
)

// semantics are pmacct's names of the semantics.
var semantics = map[string]Semantics{"u_int": SemUint, "hex": SemHex, "ip": SemIP, "mac": SemMAC, "str": SemStr, "raw": SemRaw}

// ParseSemantics reads pmacct's name of a semantics.
func ParseSemantics(s string) (Semantics, bool) {
	v, ok := semantics[s]
	return v, ok
}

// CustomField is the definition of a custom primitive.
type CustomField struct {
	Name      string // its aggregate name and JSON key
	PEN       uint32 // the element's private enterprise number; 0: IANA's
	IE        uint16 // the element's number; 0: none (Pointers only)
	Len       int    // bytes, or VarLen
	Semantics Semantics
	// Pointers are where captured packets (pmacctd's, sFlow's sampled
	// headers) hold the value, tried in order, the last that fits winning:
	// pmacct's packet_ptr; those after the first of Layer 0 are unused
	Pointers [MaxPointers]PacketPointer
}

// MaxPointers is how many packet pointers a definition has at most, as
// pmacct's.
const MaxPointers = 8

// PacketPointer is a place in a captured packet: a layer's first byte, of a
// protocol or any, and an offset from it.
type PacketPointer struct {
	Layer  Layer
	Proto  uint16 // LayerL3: the ethertype; LayerL4: the IP protocol; 0: any
	Offset uint16
}

// Layer is a layer of a captured packet, as pmacct's packet pointers name it.
type Layer uint8

const (
	LayerPacket  Layer = iota + 1 // the first captured byte
	LayerMAC                      // the Ethernet header
	LayerVLAN                     // the first 802.1Q tag's TCI
	LayerMPLS                     // the first MPLS label stack entry
	LayerL3                       // the IPv4 or IPv6 header
	LayerL4                       // what follows the IP header and IPv6's extension headers
	LayerPayload                  // what follows the TCP or UDP header
	NumLayers    = LayerPayload
)

// layerNames are pmacct's names of the layers.
var layerNames = [...]string{LayerPacket: "packet", LayerMAC: "mac", LayerVLAN: "vlan", LayerMPLS: "mpls", LayerL3: "l3", LayerL4: "l4", LayerPayload: "payload"}

// ParseLayer reads pmacct's name of a layer.
func ParseLayer(s string) (Layer, bool) {
	for l, n := range layerNames {
		if n != "" && n == s {
			return Layer(l), true
		}
	}
	return 0, false
}

// String returns pmacct's name of the layer.
func (l Layer) String() string {
	if int(l) < len(layerNames) && layerNames[l] != "" {
		return layerNames[l]
	}
	return fmt.Sprintf("layer(%d)", uint8(l))
}

// HasPointers reports whether the primitive is read from captured packets.
func (c *CustomField) HasPointers() bool { return c.Pointers[0].Layer != 0 }

// Cap returns how many bytes of the primitive's value a record keeps.
func (c *CustomField) Cap() int {
	if c.Len == VarLen {
		return VarLenCap
	}
	return c.Len
}

// customKinds are the kinds of the semantics: pmacct writes every custom
// primitive as a JSON string; the kind gives the Elasticsearch type.
var customKinds = [...]Kind{SemUint: KindDecimal, SemHex: KindHex, SemIP: KindIP, SemMAC: KindMAC, SemStr: KindString, SemRaw: KindRaw}

// CheckCustom reports what is wrong with a definition, alone.
func CheckCustom(c CustomField) error {
	if c.Name == "" {
		return fmt.Errorf("a custom primitive without a name")
	}
	if c.IE == 0 && !c.HasPointers() {
		return fmt.Errorf("%s: neither an element (field_type) nor a place in packets (packet_ptr)", c.Name)
	}
	if p, ok := byName[c.Name]; ok && !p.isCustom() || sumNames[c.Name] != 0 || c.Name == "none" || c.Name == "tcp_flags" {
		return fmt.Errorf("%s: the name of one of pmacct's primitives", c.Name)
	}
	switch c.Semantics {
	case SemUint, SemHex:
		if c.Len != 1 && c.Len != 2 && c.Len != 4 && c.Len != 8 {
			return fmt.Errorf("%s: an integer of 1, 2, 4 or 8 bytes, not %s", c.Name, lenText(c.Len))
		}
	case SemIP:
		if c.Len != 4 && c.Len != 16 {
			return fmt.Errorf("%s: an address of 4 (IPv4) or 16 bytes (IPv6), not %s", c.Name, lenText(c.Len))
		}
	case SemMAC:
		if c.Len != 6 {
			return fmt.Errorf("%s: a MAC address of 6 bytes, not %s", c.Name, lenText(c.Len))
		}
	case SemStr, SemRaw:
		if c.Len != VarLen && (c.Len < 1 || c.Len > CustomBytes-1) {
			return fmt.Errorf("%s: a length from 1 to %d bytes, or vlen, not %d", c.Name, CustomBytes-1, c.Len)
		}
	default:
		return fmt.Errorf("%s: semantics %d is none of u_int, hex, ip, mac, str, raw", c.Name, c.Semantics)
	}
	return nil
}

func lenText(n int) string {
	if n == VarLen {
		return "vlen"
	}
	return fmt.Sprint(n)
}

var (
	customMu sync.Mutex    // DefineCustom's, against itself
	defined  []CustomField // what the rows hold now
)

// DefineCustom makes fs the process's custom primitives, replacing those
// defined before; on error it changes nothing. Each must pass CheckCustom,
// and their values must fit in CustomBytes.
func DefineCustom(fs []CustomField) error {
	customMu.Lock()
	defer customMu.Unlock()
	if slices.Equal(fs, defined) {
		// no write: configurations loaded while pipelines of the same run
		// (or of another in-process run) read the table
		return nil
	}
	var rows [MaxCustom]Info
	if len(fs) > MaxCustom {
		return fmt.Errorf("%d custom primitives: flowdex keeps at most %d", len(fs), MaxCustom)
	}
	names := map[string]bool{}
	off := 0
	base := int(unsafe.Offsetof(Key{}.Custom))
	for i, c := range fs {
		if err := CheckCustom(c); err != nil {
			return err
		}
		if names[c.Name] {
			return fmt.Errorf("%s: defined twice", c.Name)
		}
		names[c.Name] = true
		slot := Slot{typ: slotBytes, n: uint8(c.Cap())}
		switch c.Semantics {
		case SemUint, SemHex:
			slot = Slot{typ: [...]slotType{1: slotU8, 2: slotU16, 4: slotU32, 8: slotU64}[c.Len]}
			off = (off + c.Len - 1) / c.Len * c.Len // aligned, as the slot's reads need
		case SemMAC:
			slot = Slot{typ: slotMAC}
		case SemRaw:
			slot.n++ // the value's length first: raw bytes may be zeros, and pmacct writes "" for none
		}
		if off+slot.Width() > CustomBytes {
			return fmt.Errorf("%s: the custom primitives take more than the %d bytes flowdex keeps per record (a vlen one %d)", c.Name, CustomBytes, VarLenCap)
		}
		slot.off = uint16(base + off)
		off += slot.Width()
		rows[i] = Info{
			// pmacct's CSV header of a custom primitive is its name
			Name: c.Name, JSON: c.Name, CSV: c.Name,
			Kind: customKinds[c.Semantics], FreeText: c.Semantics == SemStr,
			Field: "Custom", Custom: &c, slot: slot,
		}
		if c.IE != 0 {
			rows[i].NetFlow = IEs{Any: []uint16{c.IE}}
		}
	}
	defined = slices.Clone(fs)
	for i := range MaxCustom {
		// every old name first: a name may move to another row
		if old := table[Custom0+Primitive(i)].Name; old != "" {
			delete(byName, old)
		}
	}
	for i := range MaxCustom {
		p := Custom0 + Primitive(i)
		table[p] = rows[i]
		writers[p] = writerOf(p)
		if rows[i].Name != "" {
			byName[rows[i].Name] = p
		}
	}
	return nil
}

// isCustom reports whether p is one of the custom primitives' rows.
func (p Primitive) isCustom() bool { return p >= Custom0 && p < Custom0+MaxCustom }
