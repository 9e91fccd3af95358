package pmacct

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// cycle reads data over and over.
type cycle struct {
	data []byte
	off  int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p, c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}

// dataLines returns the data lines of a sample (no markers, no header).
func dataLines(tb testing.TB, file string) (header string, rows []byte, n int) {
	for _, l := range lines(readFile(tb, file)) {
		switch {
		case strings.Contains(l, "purge_init") || strings.Contains(l, "purge_close") || strings.HasPrefix(l, "--"):
		case strings.HasSuffix(file, ".csv") && header == "":
			header = l
		default:
			rows = append(append(rows, l...), '\n')
			n++
		}
	}
	return header, rows, n
}

// benchReader reads one record per iteration from an endless pmacct stream:
// ns/op is ns/record and allocs/op allocs/record.
func benchReader(b *testing.B, file string, opts Options) {
	header, rows, n := dataLines(b, file)
	var in io.Reader = &cycle{data: rows}
	if header != "" {
		in = io.MultiReader(strings.NewReader(header+"\n"), in)
	}
	r := NewReader(in, opts, "bench", nil)
	for range 2 * n { // warm up: keys interned, buffers grown
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(rows) / n))
	b.ReportAllocs()
	for b.Loop() {
		rec, err := r.Next()
		if err != nil || rec.Kind != Data {
			b.Fatal(err, rec.Kind)
		}
	}
	if st := r.Stats(); st.BadLines > 0 {
		b.Fatalf("%+v", st)
	}
}

// BenchmarkReaderJSON: pmacctd print-plugin records with 29 primitives (about
// 590 bytes a line).
func BenchmarkReaderJSON(b *testing.B) {
	benchReader(b, "out/pair-pmacctd.json", Options{Format: JSON})
}

// BenchmarkReaderJSONSmall: a typical 5-tuple record with history stamps.
func BenchmarkReaderJSONSmall(b *testing.B) {
	benchReader(b, "out/print-utc.json", Options{Format: JSON})
}

// BenchmarkReaderCSV: the same records as BenchmarkReaderJSON, as CSV.
func BenchmarkReaderCSV(b *testing.B) {
	benchReader(b, "out/pair-pmacctd.csv", Options{Format: CSV, Names: PmacctNames})
}

// BenchmarkReaderJSONEncode adds what a sink does with each record.
func BenchmarkReaderJSONEncode(b *testing.B) {
	_, rows, n := dataLines(b, "out/pair-pmacctd.json")
	r := NewReader(&cycle{data: rows}, Options{Format: JSON}, "bench", nil)
	var buf []byte
	b.SetBytes(int64(len(rows) / n))
	b.ReportAllocs()
	for b.Loop() {
		rec, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		buf = rec.Doc.AppendJSON(buf[:0], 0)
	}
	if !bytes.HasPrefix(buf, []byte("{")) {
		b.Fatal(string(buf))
	}
}

// Reading a record allocates nothing once the reader is warm, in JSON and CSV
// (and in CSV with header-like values, which are checked against pmacct's names).
func TestZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cases := []struct {
		file string
		opts Options
		rows string
	}{
		{"out/pair-pmacctd.json", Options{Format: JSON}, ""},
		{"out/pair-pmacctd.csv", Options{Format: CSV, Names: PmacctNames}, ""},
		{"out/pair-pmacctd.csv", Options{Format: CSV}, ""},
		{"", Options{Format: CSV}, "LABEL,PROTOCOL,ttl,PACKETS,BYTES\nweb,tcp,TTL,1,40\nweb,Label,ttl,x,y\n"},
	}
	for _, c := range cases {
		var header string
		var rows []byte
		if c.file != "" {
			header, rows, _ = dataLines(t, c.file)
		} else {
			h, after, _ := strings.Cut(c.rows, "\n")
			header, rows = h, []byte(after)
		}
		var in io.Reader = &cycle{data: rows}
		if header != "" {
			in = io.MultiReader(strings.NewReader(header+"\n"), in)
		}
		r := NewReader(in, c.opts, "test", nil)
		next := func() {
			if rec, err := r.Next(); err != nil || rec.Kind != Data {
				t.Fatal(err)
			}
		}
		for range 100 {
			next()
		}
		if n := testing.AllocsPerRun(1000, next); n != 0 {
			t.Errorf("%s %+v: %v allocations per record", c.file, c.opts, n)
		}
	}
}
