package pmacct

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/flowdex/flowdex/aggregate/document"
)

// fuzzOptions derives reader options from two fuzzed bytes.
func fuzzOptions(mode, sep byte) (Options, int) {
	opts := Options{
		Format:    Format(mode % 3),
		Names:     Names(mode / 3 % 2),
		Separator: ",;\t "[sep%4],
	}
	if mode&0x10 != 0 {
		opts.MaxLine = 64 + int(sep) // over-long lines
	}
	bufSize := 64 << 10
	if mode&0x20 != 0 {
		bufSize = 16 // lines assembled from several buffers
	}
	return opts, bufSize
}

func addSamples(f *testing.F) {
	files, _ := filepath.Glob("testdata/out/*")
	files = append(files, "testdata/handmade.json")
	for i, file := range files {
		data, err := os.ReadFile(file)
		if err != nil || filepath.Base(file) == "csvnames.txt" {
			continue
		}
		if len(data) > 4096 {
			data = data[:4096] // cut mid-line: a truncated last line
		}
		f.Add(data, byte(i), byte(i/3))
	}
}

// FuzzReader: any input, any options: no panic, no hang, counts that add up,
// and every record re-encodes to a JSON object encoding/json accepts.
func FuzzReader(f *testing.F) {
	addSamples(f)
	f.Add([]byte("--START (1)--\nSRC_IP,PACKETS,BYTES\n192.0.2.1,1,40\n--END (1)--\n"), byte(2), byte(0))
	f.Add([]byte("LABEL,AS_PATH,PACKETS,BYTES\na,b,c,1,2\n"), byte(5), byte(0))
	f.Add([]byte("{\"a\": [1, {\"b\": null}]}\r\n\n{\"event_type\": \"purge_init\"}"), byte(0x21), byte(0))
	f.Fuzz(func(t *testing.T, data []byte, mode, sep byte) {
		opts, bufSize := fuzzOptions(mode, sep)
		var in io.Reader = bytes.NewReader(data)
		if mode&0x40 != 0 {
			in = iotest.OneByteReader(in)
		}
		r := newReader(in, opts, "fuzz", slog.New(slog.DiscardHandler), bufSize)
		var records, markers int64
		lastLine := 0
		for calls := 0; ; calls++ {
			if calls > len(data)+1 {
				t.Fatalf("%d records from %d bytes", calls, len(data))
			}
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if rec.Line <= lastLine {
				t.Fatalf("line %d after %d", rec.Line, lastLine)
			}
			lastLine = rec.Line
			if !bytes.Contains(data, rec.Raw) || bytes.ContainsAny(rec.Raw, "\n") {
				t.Fatalf("raw %q is not a line of the input", rec.Raw)
			}
			if rec.Kind == Data {
				records++
			} else {
				markers++
			}
			for _, style := range []document.Style{document.Compact, document.Pmacct} {
				out := rec.Doc.AppendJSON(nil, style)
				var m map[string]any
				if err := json.Unmarshal(out, &m); err != nil || m == nil {
					t.Fatalf("re-encoded record is not a JSON object: %v: %s", err, out)
				}
			}
		}
		st := r.Stats()
		if st.Lines != st.Records+st.Markers+st.Headers+st.BadLines+st.Blank {
			t.Fatalf("stats do not add up: %+v", st)
		}
		if st.Records != records || st.Markers != markers || int64(lastLine) > st.Lines {
			t.Fatalf("stats %+v, returned %d records %d markers, last line %d", st, records, markers, lastLine)
		}
		want := int64(bytes.Count(data, []byte("\n")))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			want++ // a last line without a newline
		}
		if st.Lines != want {
			t.Fatalf("%d lines, want %d", st.Lines, want)
		}
	})
}

// FuzzDecoderDifferential checks aggregate/document's Decoder against
// encoding/json: what one accepts as an object the other accepts, with the
// same values.
func FuzzDecoderDifferential(f *testing.F) {
	addSamples(f)
	for _, s := range []string{
		`{}`, `{"a":1,"a":2}`, `{"a":"\ud800\u0041"}`, `{"\u0061":1,"a":[]}`, `{"a":1e999}`,
		`{"a":"\xff"}`, `{"a":-0.0e+1}`, `[1]`, `null`, `{"a":{"b":[1,2,{"c":"d"}]}}`, ` {"a" : true } `,
		`{"a":"\/\b\f\n\r\t\"\\"}`, `{"a":1,}`, `{"a":01}`, "{\"a\":\"\x1f\"}",
	} {
		f.Add([]byte(s), byte(0), byte(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, _, _ byte) {
		var doc document.Document
		err := document.NewDecoder().Decode(data, &doc)
		stdObject := json.Valid(data) && firstByte(data) == '{'
		if err == nil && !stdObject {
			t.Fatalf("Decode accepted what encoding/json rejects as an object: %q", data)
		}
		if err != nil {
			if stdObject && depth(data) <= 64 {
				t.Fatalf("Decode rejected a JSON object: %v: %q", err, data)
			}
			return
		}
		want := decodeStd(t, data)
		out := doc.AppendJSON(nil, document.Compact)
		got := decodeStd(t, out)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("values differ:\n input %q\nDecode %s\n   got %v\n  want %v", data, out, got, want)
		}
		if utf8.Valid(data) && doc.Len() != len(want) {
			t.Fatalf("%d fields, encoding/json has %d: %q", doc.Len(), len(want), data)
		}
	})
}

func decodeStd(t *testing.T, data []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("encoding/json: %v: %q", err, data)
	}
	return m
}

func firstByte(data []byte) byte {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// depth returns the deepest nesting of arrays and objects, outside strings.
func depth(data []byte) int {
	d, max, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			if d > max {
				max = d
			}
		case c == '}' || c == ']':
			d--
		}
	}
	return max
}
