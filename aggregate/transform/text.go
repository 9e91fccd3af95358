package transform

import (
	"math"
	"strconv"
	"strings"

	"github.com/flowdex/flowdex/aggregate/document"
)

// appendText renders v as p2es's str() would, with two documented exceptions:
// Number keeps the text it was read with, and Raw is its JSON text.
//
//	String   as is               Int    36040
//	Number   as written          Float  Python's repr: 1.0, 0.0001, 1e-05, 1e+16, inf, nan
//	Bool     True / False        Null   None
//	Raw      JSON text
func appendText(dst []byte, v document.Value) []byte {
	switch v.Kind {
	case document.String, document.Number, document.Raw:
		return append(dst, v.Bytes...)
	case document.Int:
		return strconv.AppendInt(dst, v.Int, 10)
	case document.Float:
		return appendPyFloat(dst, v.Float)
	case document.Bool:
		if v.Int != 0 {
			return append(dst, "True"...)
		}
		return append(dst, "False"...)
	}
	return append(dst, "None"...)
}

// appendPyFloat writes f as Python 3's repr(float): the shortest text that
// reads back to f, in fixed notation for decimal exponents -4 to 15 (with a
// trailing ".0" when integral) and in scientific notation otherwise.
func appendPyFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	exp := 0
	if i := strings.LastIndexByte(string(e), 'e'); i >= 0 {
		exp, _ = strconv.Atoi(string(e[i+1:]))
	}
	if exp < -4 || exp >= 16 {
		return append(dst, e...) // Go's 'e' already writes Python's 1e+16, 1.5e-05
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'f', -1, 64)
	if strings.IndexByte(string(dst[start:]), '.') < 0 {
		dst = append(dst, ".0"...)
	}
	return dst
}

// template is an AddField value or a lookup result: a string, literal or with
// $field macros, or a list or object kept as JSON text.
type template struct {
	s     string
	macro bool   // s contains '$'
	raw   []byte // a list or an object, compact JSON; nil for a string
	empty bool   // "", [] or {}: what p2es treats as false and does not assign
}

func newTemplate(s string) template {
	return template{s: s, macro: strings.IndexByte(s, '$') >= 0, empty: s == ""}
}

// newRawTemplate keeps a list or an object as JSON text.
func newRawTemplate(v any) template {
	t := template{raw: appendTree(nil, v)}
	switch x := v.(type) {
	case []any:
		t.empty = len(x) == 0
	case *object:
		t.empty = len(x.keys) == 0
	}
	return t
}

// expand appends t with every $name replaced by the text of the field name. At
// each '$' the longest field name of doc that follows wins, so "$as_src" is
// as_src's value even when a field "as" exists. A '$' that no field name
// follows stays as it is. Replacement text is not scanned again.
func (t *template) expand(dst []byte, doc *document.Document) []byte {
	s := t.s
	for {
		j := strings.IndexByte(s, '$')
		if j < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:j]...)
		rest := s[j+1:]
		best, bestLen := -1, 0
		for i, n := 0, doc.Len(); i < n; i++ {
			k := doc.Key(i)
			if len(k) > bestLen && strings.HasPrefix(rest, k) {
				best, bestLen = i, len(k)
			}
		}
		if best < 0 {
			dst = append(dst, '$')
			s = rest
			continue
		}
		_, v := doc.At(best)
		dst = appendText(dst, v)
		s = rest[bestLen:]
	}
}
