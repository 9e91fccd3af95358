package transform

import (
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
)

// fuzzFiles stands in for the file system, so the fuzzer never reads real
// files (a path like /dev/zero would not end).
func fuzzFiles(asMap []byte) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		switch name {
		case "AS_map.json":
			return asMap, nil
		case "list.json":
			return []byte(`[1, 2]`), nil
		case "bad.json":
			return []byte(`{"a": `), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

var fuzzRecords = []string{
	`{"Name": "Bob", "Age": 16, "as": 1, "as_src": 36040, "a": "x", "b": 1.5, "c": true, "d": null, "e": [1, "x"], "f": {"k": 1}, "peer_ip_src": "10.0.0.1", "iface_in": 1, "bytes": 100, "temporary1": "10.0.0.1-1"}`,
	`{"Name": "Lisa", "Age": 22.0, "as_src": "", "a": 1, "b": "1", "x": "$a$b$", "": "empty", "$": "dollar", "__op__": "="}`,
	`{}`,
}

func FuzzParse(f *testing.F) {
	asMap, err := os.ReadFile("testdata/AS_map.json")
	if err != nil {
		f.Fatal(err)
	}
	read := fuzzFiles(asMap)
	dec := document.NewDecoder()
	var records []*document.Document
	for _, r := range fuzzRecords {
		d := &document.Document{}
		if err := dec.Decode([]byte(r), d); err != nil {
			f.Fatal(err)
		}
		records = append(records, d)
	}
	valid := len(records)
	odd := &document.Document{} // kinds only code sets, and broken text
	odd.SetInt("a", math.MinInt64)
	odd.SetFloat("b", math.NaN())
	odd.SetFloat("as_src", math.Inf(1))
	odd.SetFloat("Age", 1e300)
	odd.SetRaw("e", []byte(`[1,`))
	odd.SetNumber("x", []byte(`-`))
	records = append(records, odd)

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parse(data, "fuzz", "", read)
		if err != nil {
			if p != nil {
				t.Fatal("a Program and an error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			return
		}
		d := &document.Document{}
		for i, r := range records {
			d.CopyFrom(r)
			p.Apply(d)
			p.Apply(d) // a second pass sees the first one's fields
			if out := d.AppendJSON(nil, document.Compact); i < valid && !json.Valid(out) {
				t.Fatalf("invalid JSON after Apply: %s", out)
			}
		}
	})
}

// The named seeds cover every construct: the valid ones must parse (or the
// fuzzer never reaches Apply from them) and the invalid ones must not. Entries
// the fuzzer found (hash names) are kept for coverage only; FuzzParse runs them.
func TestFuzzSeeds(t *testing.T) {
	asMap, err := os.ReadFile("testdata/AS_map.json")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("testdata/fuzz/FuzzParse")
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for _, e := range entries {
		if fuzzerFound(e.Name()) {
			continue
		}
		named++
		raw, err := os.ReadFile("testdata/fuzz/FuzzParse/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		const head, open, close = "go test fuzz v1\n", "[]byte(", ")\n"
		s := string(raw)
		if !strings.HasPrefix(s, head+open) || !strings.HasSuffix(s, close) {
			t.Fatalf("%s: not a corpus file", e.Name())
		}
		data, err := strconv.Unquote(s[len(head+open) : len(s)-len(close)])
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		_, err = parse([]byte(data), "seed", "", fuzzFiles(asMap))
		if wantErr := strings.HasPrefix(e.Name(), "invalid") || strings.HasSuffix(e.Name(), "typo"); (err != nil) != wantErr {
			t.Errorf("%s: error %v, want error %v", e.Name(), err, wantErr)
		}
	}
	if named < 5 {
		t.Fatalf("%d named seeds", named)
	}
}

// fuzzerFound reports whether a corpus file name is one go test -fuzz chose:
// 16 lowercase hex digits.
func fuzzerFound(name string) bool {
	if len(name) != 16 {
		return false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
