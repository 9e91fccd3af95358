package flow

import "math/bits"

// setWords is the number of 64-bit words a Set needs for every primitive.
const setWords = (int(numPrimitives) + 63) / 64

// Set is a set of primitives; the zero Set is empty. Sets compare with ==.
type Set struct{ w [setWords]uint64 }

// Has reports whether p is in s.
func (s Set) Has(p Primitive) bool {
	i := int(p) >> 6
	return i < len(s.w) && s.w[i]&(1<<(p&63)) != 0
}

// With returns s with p added.
func (s Set) With(p Primitive) Set {
	s.w[p>>6] |= 1 << (p & 63)
	return s
}

// Intersects reports whether s and o have a primitive in common.
func (s Set) Intersects(o Set) bool {
	for i := range s.w {
		if s.w[i]&o.w[i] != 0 {
			return true
		}
	}
	return false
}

// without returns s without p.
func (s Set) without(p Primitive) Set {
	s.w[p>>6] &^= 1 << (p & 63)
	return s
}

// Each calls fn for every primitive of s in pmacct's JSON order.
func (s Set) Each(fn func(Primitive)) {
	for i, w := range s.w {
		for w != 0 {
			fn(Primitive(i<<6 + bits.TrailingZeros64(w)))
			w &= w - 1
		}
	}
}

// Names returns the aggregate names of s, in JSON order.
func (s Set) Names() []string {
	var names []string
	s.Each(func(p Primitive) { names = append(names, p.Name()) })
	return names
}

// HasCustom reports whether s has a custom primitive.
func (s Set) HasCustom() bool {
	for p := Custom0; p < Custom0+MaxCustom; p++ {
		if s.Has(p) {
			return true
		}
	}
	return false
}
