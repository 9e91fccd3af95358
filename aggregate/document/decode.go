package document

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// SyntaxError is a JSON error at a byte offset of the input.
type SyntaxError struct {
	Offset int // bytes from the start of the input
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// ErrNotObject is returned for valid JSON that is not an object.
var ErrNotObject = errors.New("not a JSON object")

// maxDepth bounds nesting in Raw values, so hostile input cannot exhaust the stack.
const maxDepth = 64

// maxInterned bounds the key table: pmacct has about a hundred primitive names plus
// custom ones; beyond the bound keys are still decoded, only not shared.
const maxInterned = 4096

// Decoder parses JSON objects into Documents. It interns keys, so decoding
// record after record allocates nothing once the keys have been seen.
// A Decoder is not safe for concurrent use.
//
// Records of one source repeat their keys in one order, so the decoder
// expects the keys of the last object it read: a key that comes where it is
// expected is neither hashed for the interning nor looked for among the
// object's keys so far (order's keys are distinct).
type Decoder struct {
	keys    map[string]string
	scratch []byte
	order   []string // the keys of the last object without a duplicate key, in order
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder { return &Decoder{keys: make(map[string]string, 128)} }

// Decode replaces doc's content with the JSON object in data. Nested arrays and
// objects are kept verbatim as Raw values; duplicate keys keep the last value in the
// first position, as Python's json module does.
func (dec *Decoder) Decode(data []byte, doc *Document) error {
	doc.Reset()
	p := parser{data: data, dec: dec}
	p.skipSpace()
	if p.pos >= len(data) {
		return p.errorf("empty input")
	}
	if data[p.pos] != '{' {
		if err := p.skipValue(0); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos < len(data) {
			return p.errorf("unexpected data after the value")
		}
		return ErrNotObject
	}
	p.pos++
	p.skipSpace()
	if p.peek() == '}' {
		p.pos++
		return p.end()
	}
	expected, keys := true, 0 // expected: every key so far came as dec.order has it
	for {
		p.skipSpace()
		if p.peek() != '"' {
			if p.pos >= len(data) {
				return p.errorf("unexpected end of input (truncated line?)")
			}
			return p.errorf("expected a string key")
		}
		keyBytes, err := p.readString()
		if err != nil {
			return err
		}
		var key string
		if expected = expected && keys < len(dec.order) && string(keyBytes) == dec.order[keys]; expected {
			key = dec.order[keys]
		} else {
			key = dec.intern(keyBytes)
		}
		keys++
		p.skipSpace()
		if p.peek() != ':' {
			return p.errorf("expected ':' after a key")
		}
		p.pos++
		p.skipSpace()
		if err := p.readValueInto(doc, key, expected); err != nil {
			return err
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
			continue
		case '}':
			p.pos++
			if !expected || keys != len(dec.order) {
				dec.remember(doc, keys)
			}
			return p.end()
		}
		if p.pos >= len(data) {
			return p.errorf("unexpected end of input (truncated line?)")
		}
		return p.errorf("expected ',' or '}'")
	}
}

// remember makes doc's keys the order expected next, if they are distinct
// (keys read, as many as doc has fields).
func (dec *Decoder) remember(doc *Document, keys int) {
	dec.order = dec.order[:0]
	if doc.Len() != keys || keys > maxInterned {
		return
	}
	for i := range keys {
		dec.order = append(dec.order, doc.Key(i))
	}
}

func (dec *Decoder) intern(b []byte) string {
	if s, ok := dec.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(dec.keys) < maxInterned {
		dec.keys[s] = s
	}
	return s
}

type parser struct {
	data []byte
	pos  int
	dec  *Decoder
}

func (p *parser) errorf(msg string) error { return &SyntaxError{Offset: p.pos, Msg: msg} }

func (p *parser) peek() byte {
	if p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) end() error {
	p.skipSpace()
	if p.pos < len(p.data) {
		return p.errorf("unexpected data after the object")
	}
	return nil
}

// readValueInto reads a value into doc's field key; fresh: doc has no such
// field yet.
func (p *parser) readValueInto(doc *Document, key string, fresh bool) error {
	start := p.pos
	switch c := p.peek(); {
	case c == '"':
		s, err := p.readString()
		if err != nil {
			return err
		}
		doc.putText(key, String, s, fresh)
	case c == '{' || c == '[':
		if err := p.skipValue(0); err != nil {
			return err
		}
		raw := p.data[start:p.pos]
		if !utf8.Valid(raw) {
			raw = validUTF8(raw)
		}
		doc.putText(key, Raw, raw, fresh)
	case c == '-' || (c >= '0' && c <= '9'):
		if err := p.skipNumber(); err != nil {
			return err
		}
		doc.putText(key, Number, p.data[start:p.pos], fresh)
	case c == 't':
		if err := p.literal("true"); err != nil {
			return err
		}
		doc.SetBool(key, true)
	case c == 'f':
		if err := p.literal("false"); err != nil {
			return err
		}
		doc.SetBool(key, false)
	case c == 'n':
		if err := p.literal("null"); err != nil {
			return err
		}
		doc.SetNull(key)
	case p.pos >= len(p.data):
		return p.errorf("unexpected end of input (truncated line?)")
	default:
		return p.errorf("invalid value")
	}
	return nil
}

func (p *parser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		if len(p.data)-p.pos < len(word) {
			return p.errorf("unexpected end of input (truncated line?)")
		}
		return p.errorf("invalid literal")
	}
	p.pos += len(word)
	return nil
}

// skipValue checks one JSON value of any kind and moves past it.
func (p *parser) skipValue(depth int) error {
	if depth > maxDepth {
		return p.errorf("nested too deeply")
	}
	switch c := p.peek(); {
	case c == '"':
		_, err := p.readString()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.skipNumber()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '[':
		p.pos++
		p.skipSpace()
		if p.peek() == ']' {
			p.pos++
			return nil
		}
		for {
			p.skipSpace()
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
			p.skipSpace()
			switch p.peek() {
			case ',':
				p.pos++
			case ']':
				p.pos++
				return nil
			default:
				if p.pos >= len(p.data) {
					return p.errorf("unexpected end of input (truncated line?)")
				}
				return p.errorf("expected ',' or ']'")
			}
		}
	case c == '{':
		p.pos++
		p.skipSpace()
		if p.peek() == '}' {
			p.pos++
			return nil
		}
		for {
			p.skipSpace()
			if p.peek() != '"' {
				if p.pos >= len(p.data) {
					return p.errorf("unexpected end of input (truncated line?)")
				}
				return p.errorf("expected a string key")
			}
			if _, err := p.readString(); err != nil {
				return err
			}
			p.skipSpace()
			if p.peek() != ':' {
				return p.errorf("expected ':' after a key")
			}
			p.pos++
			p.skipSpace()
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
			p.skipSpace()
			switch p.peek() {
			case ',':
				p.pos++
			case '}':
				p.pos++
				return nil
			default:
				if p.pos >= len(p.data) {
					return p.errorf("unexpected end of input (truncated line?)")
				}
				return p.errorf("expected ',' or '}'")
			}
		}
	case p.pos >= len(p.data):
		return p.errorf("unexpected end of input (truncated line?)")
	}
	return p.errorf("invalid value")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber checks the JSON number grammar.
func (p *parser) skipNumber() error {
	d := p.data
	if p.peek() == '-' {
		p.pos++
	}
	switch {
	case p.peek() == '0':
		p.pos++
	case isDigit(p.peek()):
		for p.pos < len(d) && isDigit(d[p.pos]) {
			p.pos++
		}
	default:
		return p.errorf("invalid number")
	}
	if p.peek() == '.' {
		p.pos++
		if !isDigit(p.peek()) {
			return p.errorf("invalid number")
		}
		for p.pos < len(d) && isDigit(d[p.pos]) {
			p.pos++
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if !isDigit(p.peek()) {
			return p.errorf("invalid number")
		}
		for p.pos < len(d) && isDigit(d[p.pos]) {
			p.pos++
		}
	}
	return nil
}

// readString reads a quoted string and returns it unescaped. The result aliases the
// input when there is nothing to unescape, else the decoder's scratch buffer: use
// it before the next readString.
func (p *parser) readString() ([]byte, error) {
	p.pos++ // opening quote
	start := p.pos
	d := p.data
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			s := d[start:p.pos]
			p.pos++
			return s, nil
		case c == '\\':
			return p.readEscaped(start)
		case c < 0x20:
			return nil, p.errorf("control character in string")
		default:
			// invalid UTF-8 is kept here and replaced by U+FFFD when encoded,
			// so one odd byte does not cost the record
			p.pos++
		}
	}
	return nil, p.errorf("unterminated string (truncated line?)")
}

func (p *parser) readEscaped(start int) ([]byte, error) {
	d := p.data
	buf := append(p.dec.scratch[:0], d[start:p.pos]...)
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.dec.scratch = buf
			return buf, nil
		case c == '\\':
			if p.pos+1 >= len(d) {
				return nil, p.errorf("unterminated string (truncated line?)")
			}
			e := d[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return nil, p.errorf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					// a pair encodes one rune; a lone half becomes U+FFFD as in encoding/json
					save := p.pos
					if p.pos+1 < len(d) && d[p.pos] == '\\' && d[p.pos+1] == 'u' {
						p.pos += 2
						r2, ok := p.hex4()
						if ok && utf16.DecodeRune(r, r2) != utf8.RuneError {
							r = utf16.DecodeRune(r, r2)
						} else {
							p.pos = save
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				p.pos -= 2
				return nil, p.errorf("invalid escape")
			}
		case c < 0x20:
			return nil, p.errorf("control character in string")
		default:
			buf = append(buf, c)
			p.pos++
		}
	}
	return nil, p.errorf("unterminated string (truncated line?)")
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// validUTF8 replaces each invalid byte with U+FFFD, as the encoder does in strings
// and as encoding/json does, so a nested value stays valid JSON.
func validUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
