package document

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Style selects the separators of the JSON encoding.
type Style uint8

const (
	// Compact writes {"a":1,"b":2}: what Elasticsearch gets.
	Compact Style = iota
	// Pmacct writes {"a": 1, "b": 2}: jansson's defaults, as pmacct's print plugin does.
	Pmacct
)

// AppendJSON appends the document as one JSON object, without a newline.
func (d *Document) AppendJSON(dst []byte, style Style) []byte {
	comma, colon := ",", ":"
	if style == Pmacct {
		comma, colon = ", ", ": "
	}
	dst = append(dst, '{')
	for i := range d.fields {
		if i > 0 {
			dst = append(dst, comma...)
		}
		f := &d.fields[i]
		dst = AppendString(dst, f.key)
		dst = append(dst, colon...)
		dst = d.appendValue(dst, f)
	}
	return append(dst, '}')
}

// AppendValue appends v as JSON.
func AppendValue(dst []byte, v Value) []byte {
	switch v.Kind {
	case Bool:
		if v.Int != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Int:
		return strconv.AppendInt(dst, v.Int, 10)
	case Float:
		return appendFloat(dst, v.Float)
	case Number, Raw:
		return append(dst, v.Bytes...)
	case String:
		return appendStringBytes(dst, v.Bytes)
	}
	return append(dst, "null"...)
}

func (d *Document) appendValue(dst []byte, f *field) []byte {
	switch f.kind {
	case Number, Raw:
		return append(dst, d.arena[f.off:f.off+f.n]...)
	case String:
		return appendStringBytes(dst, d.arena[f.off:f.off+f.n])
	}
	return AppendValue(dst, d.value(f))
}

func appendFloat(dst []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return append(dst, "null"...) // JSON has no NaN or infinities
	}
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		// keep a float a float in JSON (1.0, not 1), as Python and jansson do
		return strconv.AppendFloat(dst, x, 'f', 1, 64)
	}
	return strconv.AppendFloat(dst, x, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a quoted JSON string.
func AppendString(dst []byte, s string) []byte { return appendQuoted(dst, s) }

func appendStringBytes(dst []byte, s []byte) []byte { return appendQuoted(dst, s) }

// appendQuoted escapes what JSON requires and replaces invalid UTF-8 with U+FFFD,
// as encoding/json does.
func appendQuoted[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = appendEscape(dst, c)
			i++
			start = i
			continue
		}
		var buf [utf8.UTFMax]byte
		n := copy(buf[:], s[i:])
		r, size := utf8.DecodeRune(buf[:n])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}
