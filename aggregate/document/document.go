// Package document holds the unit that transformations change and sinks write:
// an ordered list of named JSON values, pmacct's key order preserved.
//
// A Document owns one byte arena for all its text, so a reader can fill the same
// Document record after record without allocating. Values handed out by Get and At
// alias that arena: they stay valid until the Document is next changed or Reset.
package document

import (
	"math"
	"strconv"
)

// Kind is the JSON type of a value, plus two text-preserving kinds.
type Kind uint8

const (
	Null Kind = iota
	Bool
	Int    // int64, set by code
	Float  // float64, set by code
	Number // a JSON number kept as the text it was read from (exact round trip)
	String
	Raw // a JSON array or object kept verbatim
)

var kindNames = [...]string{"null", "bool", "int", "float", "number", "string", "raw"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one field value. Bytes holds the text of String (unescaped UTF-8),
// Number (JSON number text) and Raw (JSON text); Int holds Int and Bool (0 or 1);
// Float holds Float.
type Value struct {
	Kind  Kind
	Int   int64
	Float float64
	Bytes []byte
}

// IsNumeric reports whether the value is a JSON number of any kind.
func (v Value) IsNumeric() bool { return v.Kind == Int || v.Kind == Float || v.Kind == Number }

// AsFloat returns the numeric value of Int, Float, Number and Bool values.
func (v Value) AsFloat() (float64, bool) {
	switch v.Kind {
	case Int, Bool:
		return float64(v.Int), true
	case Float:
		return v.Float, true
	case Number:
		f, err := strconv.ParseFloat(string(v.Bytes), 64)
		return f, err == nil
	}
	return 0, false
}

// AsInt returns the value of Int and Bool values, and of Number values written as
// integers.
func (v Value) AsInt() (int64, bool) {
	switch v.Kind {
	case Int, Bool:
		return v.Int, true
	case Number:
		n, err := strconv.ParseInt(string(v.Bytes), 10, 64)
		return n, err == nil
	case Float:
		if v.Float == math.Trunc(v.Float) && math.Abs(v.Float) < 1<<63 {
			return int64(v.Float), true
		}
	}
	return 0, false
}

type field struct {
	key    string
	kind   Kind
	num    int64 // Int and Bool value; Float bits
	off, n uint32
}

// Document is an ordered set of fields. The zero value is empty and ready to use.
type Document struct {
	fields []field
	arena  []byte
}

// Reset empties the document and keeps its memory for reuse.
func (d *Document) Reset() {
	d.fields = d.fields[:0]
	d.arena = d.arena[:0]
}

// Len returns the number of fields.
func (d *Document) Len() int { return len(d.fields) }

// At returns the key and value of field i.
func (d *Document) At(i int) (string, Value) {
	f := &d.fields[i]
	return f.key, d.value(f)
}

// Key returns the key of field i.
func (d *Document) Key(i int) string { return d.fields[i].key }

// Index returns the position of key, or -1.
func (d *Document) Index(key string) int {
	for i := range d.fields {
		if d.fields[i].key == key {
			return i
		}
	}
	return -1
}

// Has reports whether key is present.
func (d *Document) Has(key string) bool { return d.Index(key) >= 0 }

// Get returns the value of key.
func (d *Document) Get(key string) (Value, bool) {
	i := d.Index(key)
	if i < 0 {
		return Value{}, false
	}
	return d.value(&d.fields[i]), true
}

func (d *Document) value(f *field) Value {
	v := Value{Kind: f.kind}
	switch f.kind {
	case Int, Bool:
		v.Int = f.num
	case Float:
		v.Float = math.Float64frombits(uint64(f.num))
	case Number, String, Raw:
		v.Bytes = d.arena[f.off : f.off+f.n : f.off+f.n]
	}
	return v
}

// Delete removes key, keeping the order of the others, and reports whether it was there.
func (d *Document) Delete(key string) bool {
	i := d.Index(key)
	if i < 0 {
		return false
	}
	d.fields = append(d.fields[:i], d.fields[i+1:]...)
	return true
}

// slot returns the field for key: the existing one (its position kept) or a new
// one appended at the end.
func (d *Document) slot(key string) *field {
	if i := d.Index(key); i >= 0 {
		return &d.fields[i]
	}
	d.fields = append(d.fields, field{key: key})
	return &d.fields[len(d.fields)-1]
}

// putText is setText, or appendText where the caller knows key is not there.
func (d *Document) putText(key string, kind Kind, text []byte, fresh bool) {
	if fresh {
		d.appendText(key, kind, text)
	} else {
		d.setText(key, kind, text)
	}
}

func (d *Document) setText(key string, kind Kind, text []byte) {
	off := uint32(len(d.arena))
	d.arena = append(d.arena, text...)
	f := d.slot(key)
	*f = field{key: key, kind: kind, off: off, n: uint32(len(text))}
}

// SetString sets key to a string value.
func (d *Document) SetString(key, s string) {
	off := uint32(len(d.arena))
	d.arena = append(d.arena, s...)
	f := d.slot(key)
	*f = field{key: key, kind: String, off: off, n: uint32(len(s))}
}

// SetStringBytes sets key to a string value given as bytes (copied).
func (d *Document) SetStringBytes(key string, s []byte) { d.setText(key, String, s) }

// SetNumber sets key to a JSON number given as its text (copied, not checked).
func (d *Document) SetNumber(key string, text []byte) { d.setText(key, Number, text) }

// SetRaw sets key to a JSON array or object given as its text (copied, not checked).
func (d *Document) SetRaw(key string, json []byte) { d.setText(key, Raw, json) }

// SetInt sets key to an integer.
func (d *Document) SetInt(key string, n int64) {
	f := d.slot(key)
	*f = field{key: key, kind: Int, num: n}
}

// SetFloat sets key to a float.
func (d *Document) SetFloat(key string, x float64) {
	f := d.slot(key)
	*f = field{key: key, kind: Float, num: int64(math.Float64bits(x))}
}

// SetBool sets key to a boolean.
func (d *Document) SetBool(key string, b bool) {
	var n int64
	if b {
		n = 1
	}
	f := d.slot(key)
	*f = field{key: key, kind: Bool, num: n}
}

// SetNull sets key to null.
func (d *Document) SetNull(key string) {
	f := d.slot(key)
	*f = field{key: key, kind: Null}
}

// Set sets key to v, copying its bytes. v may alias this document.
func (d *Document) Set(key string, v Value) {
	switch v.Kind {
	case Number, String, Raw:
		// append copies before the slot is touched, so v may alias the arena
		d.setText(key, v.Kind, v.Bytes)
	case Int:
		d.SetInt(key, v.Int)
	case Bool:
		d.SetBool(key, v.Int != 0)
	case Float:
		d.SetFloat(key, v.Float)
	default:
		d.SetNull(key)
	}
}

// CopyFrom makes d an exact copy of src.
func (d *Document) CopyFrom(src *Document) {
	d.fields = append(d.fields[:0], src.fields...)
	d.arena = append(d.arena[:0], src.arena...)
}

// The Append methods add a field at the end without looking for an existing one
// of the same key: for code that builds a document from scratch with distinct
// keys, where the lookup would be wasted work.

// AppendString adds a string field.
func (d *Document) AppendString(key, s string) {
	off := uint32(len(d.arena))
	d.arena = append(d.arena, s...)
	d.fields = append(d.fields, field{key: key, kind: String, off: off, n: uint32(len(s))})
}

// AppendStringBytes adds a string field given as bytes (copied).
func (d *Document) AppendStringBytes(key string, s []byte) { d.appendText(key, String, s) }

// AppendRaw adds a JSON array or object given as its text (copied, not checked).
func (d *Document) AppendRaw(key string, json []byte) { d.appendText(key, Raw, json) }

// AppendInt adds an integer field.
func (d *Document) AppendInt(key string, n int64) {
	d.fields = append(d.fields, field{key: key, kind: Int, num: n})
}

func (d *Document) appendText(key string, kind Kind, text []byte) {
	off := uint32(len(d.arena))
	d.arena = append(d.arena, text...)
	d.fields = append(d.fields, field{key: key, kind: kind, off: off, n: uint32(len(text))})
}
