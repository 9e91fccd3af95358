package packet

import (
	"bytes"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// Pointers read the custom primitives that have packet pointers (pmacct's
// packet_ptr) from the frame a Parser parsed last.
//
// As pmacct's: a definition's pointers are tried in order and the last one
// that points at a layer the frame has, of its protocol when it names one,
// with the value inside the captured bytes, wins; none: no value. A value of
// variable length runs to the end of the capture (a string to its first zero
// byte). Where flowdex differs from pmacct 1.7.7, on purpose: a value may end
// at the capture's last byte (pmacct's bound test is one byte short); a
// string of variable length keeps that last byte (pmacct overwrites it with a
// zero); IPv4's l4 and payload pointers work whether or not fragments are
// reassembled (pmacctd sets them only when it tracks fragments, i.e. when a
// plugin aggregates on ports, TCP flags, flows or class).
type Pointers struct {
	fields []pointerField
}

type pointerField struct {
	slot flow.Slot
	def  *flow.CustomField
}

// NewPointers returns the readers of the custom primitives defined now
// (flow.DefineCustom) that have packet pointers, or nil when none has.
func NewPointers() *Pointers {
	var ps Pointers
	for prim := range flow.Primitives() {
		if c := prim.Info().Custom; c != nil && c.HasPointers() {
			ps.fields = append(ps.fields, pointerField{slot: prim.Slot(), def: c})
		}
	}
	if len(ps.fields) == 0 {
		return nil
	}
	return &ps
}

// Track makes p note where the layers of the frames it parses start, which
// Fill needs; it costs a parse a few nanoseconds. A nil Pointers leaves p
// alone.
func (ps *Pointers) Track(p *Parser) {
	if ps != nil {
		p.track = true
	}
}

// Fill sets r's custom primitives from the frame p (tracked) parsed last, and returns
// how many values of variable length were longer than a record keeps
// (flow.VarLenCap) and cut. A nil Pointers does nothing.
func (ps *Pointers) Fill(r *flow.Record, p *Parser) (cut int) {
	if ps == nil {
		return 0
	}
	for i := range ps.fields {
		f := &ps.fields[i]
		v, ok := p.pointed(f.def)
		if !ok {
			continue
		}
		switch {
		case f.def.Semantics == flow.SemRaw:
			f.slot.SetPrefixed(r, v)
		case f.def.Len == flow.VarLen:
			if z := bytes.IndexByte(v, 0); z >= 0 {
				v = v[:z]
			}
			f.slot.SetBytes(r, v)
		case f.slot.Type() == flow.SlotUint:
			var n uint64
			for _, b := range v {
				n = n<<8 | uint64(b)
			}
			f.slot.SetUint(r, n)
		case f.slot.Type() == flow.SlotMAC:
			f.slot.SetMAC(r, [6]byte(v))
		default:
			f.slot.SetBytes(r, v)
		}
		if f.def.Len == flow.VarLen && len(v) > flow.VarLenCap {
			cut++
		}
	}
	return cut
}

// pointed returns the bytes of c's value in the frame: those of its last
// pointer that fits.
func (p *Parser) pointed(c *flow.CustomField) (v []byte, ok bool) {
	for _, ptr := range c.Pointers {
		if ptr.Layer == 0 {
			break
		}
		at := p.layers[ptr.Layer]
		if at == 0 {
			continue
		}
		if ptr.Proto != 0 && (ptr.Layer == flow.LayerL3 && ptr.Proto != p.l3Proto || ptr.Layer == flow.LayerL4 && ptr.Proto != p.l4Proto) {
			continue
		}
		start := int(at) - 1 + int(ptr.Offset)
		end := len(p.frame)
		if c.Len != flow.VarLen {
			end = start + c.Len
		}
		if start > len(p.frame) || end > len(p.frame) {
			continue
		}
		v, ok = p.frame[start:end], true
	}
	return v, ok
}
