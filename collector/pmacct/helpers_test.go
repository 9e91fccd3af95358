package pmacct

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
)

// got is what a Reader returned for one record, copied out of the reused Record.
type got struct {
	Kind Kind
	Line int
	Raw  string
	JSON string // Doc in pmacct's style
}

// logEntry is one message a Reader logged.
type logEntry struct {
	Level slog.Level
	Msg   string
	Attrs map[string]any
}

// collector is a slog.Handler that keeps every message.
type collector struct {
	mu      sync.Mutex
	entries []logEntry
}

func (c *collector) Enabled(context.Context, slog.Level) bool { return true }
func (c *collector) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *collector) WithGroup(string) slog.Handler            { return c }
func (c *collector) Handle(_ context.Context, r slog.Record) error {
	e := logEntry{Level: r.Level, Msg: r.Message, Attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		e.Attrs[a.Key] = a.Value.Any()
		return true
	})
	c.mu.Lock()
	c.entries = append(c.entries, e)
	c.mu.Unlock()
	return nil
}

// readAll reads everything from data.
func readAll(t testing.TB, data []byte, opts Options) ([]got, Stats, []logEntry) {
	t.Helper()
	return readAllFrom(t, bytes.NewReader(data), opts)
}

func readAllFrom(t testing.TB, in io.Reader, opts Options) ([]got, Stats, []logEntry) {
	t.Helper()
	logs := &collector{}
	r := NewReader(in, opts, "test", slog.New(logs))
	var out []got
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, got{rec.Kind, rec.Line, string(rec.Raw), string(rec.Doc.AppendJSON(nil, document.Pmacct))})
	}
	// io.EOF again after the end
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the end: %v", err)
	}
	st := r.Stats()
	if st.Lines != st.Records+st.Markers+st.Headers+st.BadLines+st.Blank {
		t.Fatalf("stats do not add up: %+v", st)
	}
	return out, st, logs.entries
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lines splits a file into its lines, without line endings.
func lines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// canonical turns a JSON object into sorted-key JSON without the keys dropped.
func canonical(t testing.TB, obj string, drop ...string) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(obj))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%v: %s", err, obj)
	}
	for _, k := range drop {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// canonicalSet returns the sorted canonical forms of the data records.
func canonicalSet(t testing.TB, recs []got, drop ...string) []string {
	var out []string
	for _, g := range recs {
		if g.Kind == Data {
			out = append(out, canonical(t, g.JSON, drop...))
		}
	}
	sort.Strings(out)
	return out
}
