package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/setting"
)

// The configuration is read into a small tree that keeps what encoding/json's
// map[string]any loses: the order of object keys (for stable messages and for
// verbatim AddField values) and duplicate keys (reported, not silently dropped).
//
// Node types: nil, bool, string, json.Number, []any, *object.

type object struct {
	keys []string
	vals []any
	idx  map[string]int // key positions, once the object is large
}

const objectIndexFrom = 16

func (o *object) get(key string) (any, bool) {
	if o.idx != nil {
		i, ok := o.idx[key]
		if !ok {
			return nil, false
		}
		return o.vals[i], true
	}
	for i, k := range o.keys {
		if k == key {
			return o.vals[i], true
		}
	}
	return nil, false
}

func (o *object) add(key string, v any) {
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
	switch {
	case o.idx != nil:
		o.idx[key] = len(o.keys) - 1
	case len(o.keys) >= objectIndexFrom:
		o.idx = make(map[string]int, 2*len(o.keys))
		for i, k := range o.keys {
			o.idx[k] = i
		}
	}
}

// maxNesting bounds the depth of the configuration tree.
const maxNesting = 200

// jsonError is a JSON syntax problem at a byte offset.
type jsonError struct {
	offset int64
	msg    string
}

// decodeTree parses one JSON value and rejects anything after it. The
// offsets say where each value of a list of transformations starts, by
// "N/path": N the transformation's number (from 1), path as the parser
// names it ("", "Conditions", "Actions[1].Type").
func decodeTree(data []byte) (any, map[string]int64, *jsonError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	r := treeReader{dec: dec, data: data, offsets: map[string]int64{}}
	v, jerr := r.read(0, "")
	if jerr != nil {
		return nil, nil, jerr
	}
	off := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, &jsonError{off, "unexpected data after the JSON value"}
	}
	return v, r.offsets, nil
}

type treeReader struct {
	dec     *json.Decoder
	data    []byte
	offsets map[string]int64
}

// child is the path of a list element (key "") or an object value below
// path: at the root, the element's transformation number.
func child(path string, depth, i int, key string) string {
	switch {
	case depth == 0:
		return strconv.Itoa(i+1) + "/"
	case key == "":
		return path + "[" + strconv.Itoa(i) + "]"
	case strings.HasSuffix(path, "/"):
		return path + key
	}
	return path + "." + key
}

// next returns the offset of the next token: InputOffset is where the
// previous one ended, before any space and separator.
func (r *treeReader) next() int64 {
	off := r.dec.InputOffset()
	for off < int64(len(r.data)) {
		switch r.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (r *treeReader) read(depth int, path string) (any, *jsonError) {
	dec := r.dec
	off := r.next()
	if path != "" {
		r.offsets[path] = off
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, r.tokenError(err, off)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // nil, bool, string or json.Number
	}
	if depth >= maxNesting {
		return nil, &jsonError{off, "nested more than " + strconv.Itoa(maxNesting) + " levels deep"}
	}
	switch d {
	case '[':
		list := []any{}
		for dec.More() {
			v, jerr := r.read(depth+1, child(path, depth, len(list), ""))
			if jerr != nil {
				return nil, jerr
			}
			list = append(list, v)
		}
		if jerr := r.closing(); jerr != nil {
			return nil, jerr
		}
		return list, nil
	case '{':
		obj := &object{}
		for dec.More() {
			koff := r.next()
			kt, err := dec.Token()
			if err != nil {
				return nil, r.tokenError(err, koff)
			}
			key, ok := kt.(string)
			if !ok {
				return nil, &jsonError{koff, "object key must be a string"}
			}
			if _, dup := obj.get(key); dup {
				return nil, &jsonError{koff, "duplicate key " + strconv.Quote(key)}
			}
			v, jerr := r.read(depth+1, child(path, depth, 0, key))
			if jerr != nil {
				return nil, jerr
			}
			obj.add(key, v)
		}
		if jerr := r.closing(); jerr != nil {
			return nil, jerr
		}
		return obj, nil
	}
	return nil, &jsonError{off, "unexpected " + strconv.QuoteRune(rune(d))}
}

func (r *treeReader) closing() *jsonError {
	off := r.next()
	if _, err := r.dec.Token(); err != nil {
		return r.tokenError(err, off)
	}
	return nil
}

func (r *treeReader) tokenError(err error, off int64) *jsonError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &jsonError{se.Offset, se.Error()}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if len(bytes.TrimSpace(r.data)) == 0 {
			return &jsonError{0, "empty input"}
		}
		return &jsonError{int64(len(r.data)), "unexpected end of input"}
	}
	return &jsonError{off, err.Error()}
}

// position turns a byte offset into "line L, column C" (both 1-based).
func position(data []byte, off int64) string {
	line, col := setting.LineCol(data, int(off))
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col)
}

// appendTree writes v as compact JSON, object keys in their original order and
// numbers as written.
func appendTree(dst []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, t)
	case json.Number:
		return append(dst, t...)
	case string:
		return document.AppendString(dst, t)
	case []any:
		dst = append(dst, '[')
		for i, e := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendTree(dst, e)
		}
		return append(dst, ']')
	case *object:
		dst = append(dst, '{')
		for i, k := range t.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = document.AppendString(dst, k)
			dst = append(dst, ':')
			dst = appendTree(dst, t.vals[i])
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

// describe names a configuration value for a message: `number 5`, `a list`.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return "number " + shorten(string(t))
	case string:
		return "string " + strconv.Quote(shorten(t))
	case []any:
		return "a list"
	case *object:
		return "an object"
	}
	return "an unknown value"
}

func shorten(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
