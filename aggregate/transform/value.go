package transform

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/flowdex/flowdex/aggregate/document"
)

// num is a number as Python would hold it: an exact integer or a float.
// Integers outside int64 become floats (Python keeps them exact).
type num struct {
	isInt bool
	i     int64
	f     float64
}

// parseNum reads JSON number text without allocating for valid numbers.
func parseNum(b []byte) (num, bool) {
	neg := len(b) > 0 && b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if n, ok := parseDigits(digits, neg); ok {
		return n, true
	}
	return parseFloat(string(b))
}

// parseDigits reads a plain integer: exact when it fits int64, else a float.
func parseDigits(digits []byte, neg bool) (num, bool) {
	if len(digits) == 0 {
		return num{}, false
	}
	var u uint64
	overflow := false
	for _, c := range digits {
		if c < '0' || c > '9' {
			return num{}, false
		}
		if u > (math.MaxUint64-9)/10 {
			overflow = true
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case overflow:
	case !neg && u <= math.MaxInt64:
		return num{isInt: true, i: int64(u)}, true
	case neg && u <= 1<<63:
		return num{isInt: true, i: int64(-u)}, true
	}
	return num{}, false // parseFloat makes it a float
}

func parseFloat(s string) (num, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// out of range: ±Inf or 0, as Python's float() gives for 1e400 and 1e-400
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return num{}, false
		}
	}
	return num{f: f}, true
}

// valueNum returns the numeric value of a document value. Booleans are numbers
// (0 and 1), as in Python, where True == 1.
func valueNum(v document.Value) (num, bool) {
	switch v.Kind {
	case document.Int, document.Bool:
		return num{isInt: true, i: v.Int}, true
	case document.Float:
		return num{f: v.Float}, true
	case document.Number:
		return parseNum(v.Bytes)
	}
	return num{}, false
}

// cmpNum compares exactly, as Python does between int and float. ok is false when
// a NaN is involved (every comparison with NaN is false, != aside).
func cmpNum(a, b num) (c int, ok bool) {
	switch {
	case a.isInt && b.isInt:
		return cmpOrdered(a.i, b.i), true
	case a.isInt:
		c, ok = cmpIntFloat(a.i, b.f)
		return c, ok
	case b.isInt:
		c, ok = cmpIntFloat(b.i, a.f)
		return -c, ok
	}
	if math.IsNaN(a.f) || math.IsNaN(b.f) {
		return 0, false
	}
	return cmpOrdered(a.f, b.f), true
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpIntFloat(i int64, f float64) (int, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case f >= 1<<63:
		return -1, true
	case f < -(1 << 63):
		return 1, true
	}
	t := math.Trunc(f)
	if c := cmpOrdered(i, int64(t)); c != 0 {
		return c, true
	}
	return cmpOrdered(0, f-t), true
}

// constKind is the kind of a condition value.
type constKind uint8

const (
	cString    constKind = iota
	cNumber              // numbers and booleans
	cNull                //
	cComposite           // a list or an object: equal only to a Raw value of the same structure
)

type constant struct {
	kind constKind
	s    string
	n    num
	tree any // cComposite
}

func makeConstant(v any) constant {
	switch t := v.(type) {
	case string:
		return constant{kind: cString, s: t}
	case json.Number:
		n, _ := parseNum([]byte(t)) // decoded JSON: always a number
		return constant{kind: cNumber, n: n}
	case bool:
		var i int64
		if t {
			i = 1
		}
		return constant{kind: cNumber, n: num{isInt: true, i: i}}
	case nil:
		return constant{kind: cNull}
	}
	return constant{kind: cComposite, tree: v}
}

// operand is a record value digested once per criterion.
type operand struct {
	v     document.Value
	n     num
	isNum bool
	tree  any // decoded Raw, on demand
	treed bool
	bad   bool // Raw that does not decode
}

func newOperand(v document.Value) operand {
	o := operand{v: v}
	o.n, o.isNum = valueNum(v)
	return o
}

// equal is Python's ==, on JSON values: numbers (and booleans) by numeric value,
// strings byte for byte, null to null, lists and objects structurally; values of
// different types are never equal.
func (o *operand) equal(k *constant) bool {
	switch k.kind {
	case cString:
		return o.v.Kind == document.String && string(o.v.Bytes) == k.s
	case cNumber:
		if !o.isNum {
			return false
		}
		c, ok := cmpNum(o.n, k.n)
		return ok && c == 0
	case cNull:
		return o.v.Kind == document.Null
	}
	if o.v.Kind != document.Raw {
		return false
	}
	if !o.treed {
		o.treed = true
		t, _, jerr := decodeTree(o.v.Bytes)
		o.tree, o.bad = t, jerr != nil
	}
	return !o.bad && treeEqual(o.tree, k.tree)
}

// compare orders the operand against k: numbers numerically, strings bytewise
// (which is code point order for UTF-8). ok is false for any other pairing.
func (o *operand) compare(k *constant) (int, bool) {
	switch k.kind {
	case cString:
		if o.v.Kind != document.String {
			return 0, false
		}
		return compareString(string(o.v.Bytes), k.s), true
	case cNumber:
		if !o.isNum {
			return 0, false
		}
		return cmpNum(o.n, k.n)
	}
	return 0, false
}

func compareString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// treeEqual is Python's == between two decoded JSON trees.
func treeEqual(a, b any) bool {
	an, aNum := treeNum(a)
	bn, bNum := treeNum(b)
	if aNum || bNum {
		if !aNum || !bNum {
			return false
		}
		c, ok := cmpNum(an, bn)
		return ok && c == 0
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !treeEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case *object:
		y, ok := b.(*object)
		if !ok || len(x.keys) != len(y.keys) {
			return false
		}
		for i, key := range x.keys {
			w, found := y.get(key)
			if !found || !treeEqual(x.vals[i], w) {
				return false
			}
		}
		return true
	}
	return false
}

func treeNum(v any) (num, bool) {
	switch t := v.(type) {
	case json.Number:
		return parseNum([]byte(t))
	case bool:
		if t {
			return num{isInt: true, i: 1}, true
		}
		return num{isInt: true}, true
	}
	return num{}, false
}
