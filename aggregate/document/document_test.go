package document

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func TestDecodeRoundTrip(t *testing.T) {
	// pmacct's own separators, and every value shape pmacct writes
	lines := []string{
		`{"event_type": "purge", "ip_src": "192.0.2.10", "ip_dst": "2001:db8::1", "port_src": 443, "tcp_flags": "27", "ip_proto": "tcp", "stamp_inserted": "2024-01-01 00:00:00", "packets": 7, "bytes": 430}`,
		`{"tcp_flags": ["ACK", "SYN"], "label": {"k": "v", "n": [1, 2.5e3, -0.5]}, "flag": true, "off": false, "none": null}`,
		`{"esc": "a\"b\\c\n\t\u0001é\u00e9\ud83d\ude00"}`,
		`{}`,
	}
	dec := NewDecoder()
	var doc Document
	for _, line := range lines {
		if err := dec.Decode([]byte(line), &doc); err != nil {
			t.Fatalf("Decode(%s): %v", line, err)
		}
		got := doc.AppendJSON(nil, Pmacct)
		// the escapes come back in canonical form, so compare through encoding/json
		var want, have any
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &have); err != nil {
			t.Fatalf("re-encoded JSON invalid: %s: %v", got, err)
		}
		wj, _ := json.Marshal(want)
		hj, _ := json.Marshal(have)
		if !bytes.Equal(wj, hj) {
			t.Errorf("round trip changed the value:\n in: %s\nout: %s", line, got)
		}
	}
	// without escapes the output is byte for byte pmacct's line
	if err := dec.Decode([]byte(lines[0]), &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.AppendJSON(nil, Pmacct); string(got) != lines[0] {
		t.Errorf("pmacct style:\n got %s\nwant %s", got, lines[0])
	}
	if got := doc.AppendJSON(nil, Compact); string(got) != `{"event_type":"purge","ip_src":"192.0.2.10","ip_dst":"2001:db8::1","port_src":443,"tcp_flags":"27","ip_proto":"tcp","stamp_inserted":"2024-01-01 00:00:00","packets":7,"bytes":430}` {
		t.Errorf("compact style: %s", got)
	}
}

// TestDecodeExpectedKeys: a decoder expects the keys of the object before;
// objects whose keys differ from it (order, a key more or less, a duplicate,
// an error halfway) decode as a fresh decoder decodes them.
func TestDecodeExpectedKeys(t *testing.T) {
	lines := []string{
		`{"a": 1, "b": "x", "c": [1]}`,
		`{"a": 2, "b": "y", "c": [2]}`,          // as expected
		`{"b": "z", "a": 3, "c": [3]}`,          // another order
		`{"b": "z", "a": 3}`,                    // a key less
		`{"b": "z", "a": 3, "c": 4, "d": null}`, // more
		`{"b": 1, "a": 2, "b": 3}`,              // a duplicate: the last value, first place
		`{"b": 1, "a": 2, "b": 3}`,              // again: not expected (the order is not distinct)
		`{"b": 1, "a": 2}`,
		`{"b": 1, "a": 2, "a": 5}`, // the duplicate where the next key was expected
		`{"b": 1, "a": 2`,          // truncated
		`{"b": 1, "a": 2, "c": true}`,
		`{"b": 1, "a": 2, "c": false, "c": 0}`,
		`{}`,
		`{"b": 1}`,
	}
	dec := NewDecoder()
	var doc, fresh Document
	for _, line := range lines {
		err := dec.Decode([]byte(line), &doc)
		wantErr := NewDecoder().Decode([]byte(line), &fresh)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%s: error %v, a fresh decoder's %v", line, err, wantErr)
		}
		if err != nil {
			continue
		}
		if got, want := doc.AppendJSON(nil, Compact), fresh.AppendJSON(nil, Compact); !bytes.Equal(got, want) {
			t.Errorf("%s: decoded %s, a fresh decoder %s", line, got, want)
		}
		for i := range doc.Len() {
			if doc.Index(doc.Key(i)) != i {
				t.Errorf("%s: key %q twice: %s", line, doc.Key(i), doc.AppendJSON(nil, Compact))
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		msg    string
	}{
		{``, 0, "empty input"},
		{`{"a": 1`, 7, "unexpected end of input (truncated line?)"},
		{`{"a": "x`, 8, "unterminated string (truncated line?)"},
		{`{"a": 1,}`, 8, "expected a string key"},
		{`{"a": 1, `, 9, "unexpected end of input (truncated line?)"},
		{`{"a" 1}`, 5, "expected ':' after a key"},
		{`{"a": 01}`, 7, "expected ',' or '}'"},
		{`{"a": tru}`, 6, "invalid literal"},
		{`{"a": [1 2]}`, 9, "expected ',' or ']'"},
		{`{"a": 1} x`, 9, "unexpected data after the object"},
		{`{"a": "\x"}`, 7, "invalid escape"},
		{"{\"a\": \"\x01\"}", 7, "control character in string"},
		{`{"a": -}`, 7, "invalid number"},
	}
	dec := NewDecoder()
	var doc Document
	for _, tt := range tests {
		err := dec.Decode([]byte(tt.in), &doc)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Decode(%q) = %v, want a SyntaxError", tt.in, err)
			continue
		}
		if se.Offset != tt.offset || se.Msg != tt.msg {
			t.Errorf("Decode(%q) = offset %d %q, want offset %d %q", tt.in, se.Offset, se.Msg, tt.offset, tt.msg)
		}
	}
	for _, in := range []string{`[1, 2]`, `"x"`, `42`} {
		if err := dec.Decode([]byte(in), &doc); !errors.Is(err, ErrNotObject) {
			t.Errorf("Decode(%s) = %v, want ErrNotObject", in, err)
		}
	}
}

func TestSetGetDelete(t *testing.T) {
	var d Document
	d.SetString("a", "x")
	d.SetInt("b", 5)
	d.SetFloat("c", 1)
	d.SetBool("d", true)
	d.SetNull("e")
	d.SetRaw("f", []byte(`["A"]`))
	d.SetString("a", "replaced, position kept")
	if !d.Delete("b") || d.Delete("missing") {
		t.Fatal("Delete reports wrongly")
	}
	v, _ := d.Get("a")
	d.Set("g", v) // a value aliasing the arena is copied safely
	want := `{"a":"replaced, position kept","c":1.0,"d":true,"e":null,"f":["A"],"g":"replaced, position kept"}`
	if got := d.AppendJSON(nil, Compact); string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var c Document
	c.CopyFrom(&d)
	d.Reset()
	if got := c.AppendJSON(nil, Compact); string(got) != want || d.Len() != 0 {
		t.Fatalf("CopyFrom/Reset: %s", got)
	}
}

func TestValueConversions(t *testing.T) {
	num := func(s string) Value { return Value{Kind: Number, Bytes: []byte(s)} }
	if n, ok := num("36040").AsInt(); !ok || n != 36040 {
		t.Error("AsInt of an integer Number")
	}
	if _, ok := num("1.5").AsInt(); ok {
		t.Error("AsInt of 1.5 must fail")
	}
	if f, ok := num("2.5e3").AsFloat(); !ok || f != 2500 {
		t.Error("AsFloat of 2.5e3")
	}
	if _, ok := (Value{Kind: String, Bytes: []byte("1")}).AsFloat(); ok {
		t.Error("a string is not a number")
	}
}

func TestInvalidUTF8Replaced(t *testing.T) {
	dec := NewDecoder()
	var doc Document
	if err := dec.Decode([]byte("{\"a\": \"x\xffy\"}"), &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.AppendJSON(nil, Compact); string(got) != `{"a":"x\ufffdy"}` {
		t.Fatalf("got %s", got)
	}
	// the same inside an array or object kept verbatim
	if err := dec.Decode([]byte("{\"l\": {\"k\": \"x\xffy\"}}"), &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.AppendJSON(nil, Compact); string(got) != "{\"l\":{\"k\": \"x\uFFFDy\"}}" || !utf8.Valid(got) {
		t.Fatalf("got %q", got)
	}
}

var benchLine = []byte(`{"event_type": "purge", "ip_src": "192.0.2.10", "ip_dst": "198.51.100.7", "port_src": 51234, "port_dst": 443, "tcp_flags": "27", "ip_proto": "tcp", "tos": 0, "stamp_inserted": "2024-01-01 00:00:00", "stamp_updated": "2024-01-01 00:01:01", "packets": 7, "bytes": 430}`)

func BenchmarkDecode(b *testing.B) {
	dec := NewDecoder()
	var doc Document
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		if err := dec.Decode(benchLine, &doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	dec := NewDecoder()
	var doc Document
	if err := dec.Decode(benchLine, &doc); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		buf = doc.AppendJSON(buf[:0], Compact)
	}
}

// BenchmarkEncodeStdlib is the baseline the hand-written encoder is measured against.
func BenchmarkEncodeStdlib(b *testing.B) {
	var m map[string]any
	if err := json.Unmarshal(benchLine, &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchLine)))
	for b.Loop() {
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecode checks the decoder against encoding/json: both accept the same objects,
// and what the decoder accepts re-encodes to valid JSON.
func FuzzDecode(f *testing.F) {
	f.Add(benchLine)
	f.Add([]byte(`{"a": [1, {"b": null}], "c": "\u00e9\ud83d\ude00", "d": -1.5e-3}`))
	f.Add([]byte(`{"a": 1,}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		dec := NewDecoder()
		var doc Document
		err := dec.Decode(in, &doc)
		// a decoder that expects in's keys (or what it read of them) gives the same
		if err == nil {
			var again Document
			if err := dec.Decode(in, &again); err != nil || !bytes.Equal(again.AppendJSON(nil, Compact), doc.AppendJSON(nil, Compact)) {
				t.Fatalf("%q decoded again: %v, %s; the first time %s", in, err, again.AppendJSON(nil, Compact), doc.AppendJSON(nil, Compact))
			}
		}
		var std map[string]json.RawMessage
		stdErr := json.Unmarshal(in, &std)
		isObject := stdErr == nil && std != nil
		var se *SyntaxError
		switch {
		case err == nil && !isObject:
			t.Fatalf("Decode accepted %q, encoding/json refuses it as an object: %v", in, stdErr)
		case err == nil:
			out := doc.AppendJSON(nil, Compact)
			var back map[string]json.RawMessage
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("Decode accepted %q but re-encoded invalid JSON %q: %v", in, out, err)
			}
			if len(back) != len(std) {
				t.Fatalf("%q: %d keys, encoding/json sees %d", in, len(back), len(std))
			}
		case isObject && !(errors.As(err, &se) && se.Msg == "nested too deeply"):
			t.Fatalf("encoding/json accepts the object %q, Decode refuses: %v", in, err)
		}
	})
}
