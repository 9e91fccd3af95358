package pmacct

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
)

const (
	rec1  = `{"event_type": "purge", "ip_src": "192.0.2.10", "ip_dst": "198.51.100.20", "ip_proto": "tcp", "packets": 6, "bytes": 340}`
	rec2  = `{"event_type": "purge", "ip_src": "198.51.100.20", "ip_dst": "192.0.2.10", "ip_proto": "tcp", "packets": 4, "bytes": 1860}`
	initM = `{"event_type": "purge_init", "writer_id": "p/4242"}`
	clos  = `{"event_type": "purge_close", "writer_id": "p/4242", "purged_entries": 2, "total_entries": 2, "duration": 0}`
	hdr   = "TAG,LABEL,SRC_IP,DST_IP,PROTOCOL,PACKETS,BYTES"
	row1  = "10,web,192.0.2.10,198.51.100.20,tcp,6,340"
	row2  = "0,,198.51.100.20,192.0.2.10,tcp,4,1860"
)

func TestBadInput(t *testing.T) {
	type bad struct {
		line   int
		reason string // a part of the logged reason
	}
	cases := []struct {
		name  string
		in    string
		opts  Options
		want  Stats
		bad   []bad
		first string // the first data record, re-encoded (optional)
	}{
		{name: "empty file", in: "", want: Stats{}},
		{name: "only blank lines", in: "\n \n\t\r\n", want: Stats{Lines: 3, Blank: 3}},
		{
			name: "truncated last line (file cut mid-write)",
			in:   rec1 + "\n" + rec2[:50],
			want: Stats{Lines: 2, Records: 1, BadLines: 1},
			bad:  []bad{{2, "truncated"}},
		},
		{
			name: "truncated inside a string",
			in:   rec1 + "\n" + rec2[:30] + "\n" + rec1 + "\n",
			want: Stats{Lines: 3, Records: 2, BadLines: 1},
			bad:  []bad{{2, "unterminated string"}},
		},
		{
			name: "invalid JSON",
			in:   "{\"a\": 1,}\n{\"a\" 1}\n{'a': 1}\n{\"a\": tru}\n{\"a\": 01}\n" + rec1 + "\n",
			want: Stats{Lines: 6, Records: 1, BadLines: 5},
			bad:  []bad{{1, "expected a string key"}, {2, "expected ':'"}, {3, "expected a string key"}, {4, "invalid literal"}, {5, "expected ',' or '}'"}},
		},
		{
			name: "JSON that is not an object",
			in:   "[1, 2]\n42\n\"purge\"\nnull\n" + rec1 + "\n",
			opts: Options{Format: JSON},
			want: Stats{Lines: 5, Records: 1, BadLines: 4},
			bad:  []bad{{1, "not an object"}, {2, "not an object"}, {3, "not an object"}, {4, "not an object"}},
		},
		{
			name: "JSON with data after the object",
			in:   rec1 + rec2 + "\n" + rec1 + " x\n",
			want: Stats{Lines: 2, BadLines: 2},
			bad:  []bad{{1, "after the object"}, {2, "after the object"}},
		},
		{
			name: "binary junk between records",
			in:   rec1 + "\n\x00\x01\x02\xff\xfe{\x1b[0m\n" + rec2 + "\n",
			want: Stats{Lines: 3, Records: 2, BadLines: 1},
			bad:  []bad{{2, "invalid value"}},
		},
		{
			name: "binary junk, JSON",
			in:   rec1 + "\n\x00\x01\x02\xff\xfe{\x1b[0m\n" + rec2 + "\n",
			opts: Options{Format: JSON},
			want: Stats{Lines: 3, Records: 2, BadLines: 1},
			bad:  []bad{{2, "invalid value"}},
		},
		{
			name: "control character inside a JSON string",
			in:   `{"label": "a` + "\x01" + `b"}` + "\n" + rec1,
			want: Stats{Lines: 2, Records: 1, BadLines: 1},
			bad:  []bad{{1, "control character"}},
		},
		{
			name: "over-long line",
			in:   rec1 + "\n" + `{"label": "` + strings.Repeat("x", 300) + `"}` + "\n" + rec2 + "\n",
			opts: Options{MaxLine: 200},
			want: Stats{Lines: 3, Records: 2, BadLines: 1},
			bad:  []bad{{2, "longer than 200 bytes"}},
		},
		{
			name: "only JSON markers",
			in:   initM + "\n" + clos + "\n" + initM + "\n" + clos + "\n",
			want: Stats{Lines: 4, Markers: 4},
		},
		{
			name: "only CSV markers",
			in:   "--START (4242)--\n--END (4242)--\n",
			want: Stats{Lines: 2, Markers: 2},
		},
		{
			name:  "CSV markers before the header (p2es takes --START-- for the header)",
			in:    "--START (4242)--\n" + hdr + "\n" + row1 + "\n" + row2 + "\n--END (4242)--\n",
			want:  Stats{Lines: 5, Records: 2, Markers: 2, Headers: 1},
			first: `{"tag": 10, "label": "web", "src_ip": "192.0.2.10", "dst_ip": "198.51.100.20", "protocol": "tcp", "packets": 6, "bytes": 340}`,
		},
		{
			name: "CSV row with too few and too many columns",
			in:   hdr + "\n" + row1 + "\n10,web,192.0.2.10,tcp,6,340\n0,x,y,192.0.2.10,198.51.100.20,tcp,6,340\n" + row2 + "\n",
			opts: Options{Format: CSV},
			want: Stats{Lines: 5, Records: 3, Headers: 1, BadLines: 1},
			bad:  []bad{{3, "6 columns, the header has 7"}},
			// line 4: one column too many, and LABEL is the one free-text column:
			// "x,y" is a label, as pmacct writes a chained one
		},
		{
			name: "CSV row with too many columns and two free-text columns",
			in:   "LABEL,AS_PATH,PACKETS,BYTES\na,b,64496_64511,1,40\nweb,64496_{64500_64501},1,40\n",
			opts: Options{Format: CSV},
			want: Stats{Lines: 3, Records: 1, Headers: 1, BadLines: 1},
			bad:  []bad{{2, "5 columns, the header has 4"}},
		},
		{
			name:  "CSV label holding the separator",
			in:    hdr + "\n10,web,http,192.0.2.10,198.51.100.20,tcp,6,340\n",
			opts:  Options{Names: PmacctNames},
			want:  Stats{Lines: 2, Records: 1, Headers: 1},
			first: `{"tag": 10, "label": "web,http", "ip_src": "192.0.2.10", "ip_dst": "198.51.100.20", "ip_proto": "tcp", "packets": 6, "bytes": 340}`,
		},
		{
			name:  "CSV AS path with an AS_SET",
			in:    "SRC_IP,AS_PATH,PACKETS,BYTES\n192.0.2.10,64496_{64500,64501,64502},1,40\n",
			opts:  Options{Names: PmacctNames},
			want:  Stats{Lines: 2, Records: 1, Headers: 1},
			first: `{"ip_src": "192.0.2.10", "as_path": "64496_{64500,64501,64502}", "packets": 1, "bytes": 40}`,
		},
		{
			name: "CSV rows without a header",
			in:   row1 + "\n" + row2 + "\n",
			opts: Options{Format: CSV},
			want: Stats{Lines: 2, BadLines: 2},
			bad:  []bad{{1, "expected the CSV header"}, {2, "expected the CSV header"}},
		},
		{
			name: "CSV row with a control character or invalid UTF-8",
			in:   hdr + "\n10,we\x00b,192.0.2.10,198.51.100.20,tcp,6,340\n10,w\xffb,192.0.2.10,198.51.100.20,tcp,6,340\n" + row2,
			want: Stats{Lines: 4, Records: 1, Headers: 1, BadLines: 2},
			bad:  []bad{{2, "control character"}, {3, "invalid UTF-8"}},
		},
		{
			name:  "CSV values that are not numbers stay strings",
			in:    "SRC_PORT,PACKETS,SH_LAT,BYTES\n,007,0.000000,-1\n",
			want:  Stats{Lines: 2, Records: 1, Headers: 1},
			first: `{"src_port": "", "packets": "007", "sh_lat": 0.000000, "bytes": -1}`,
		},
		{
			name:  "CSV repeated header and a new one",
			in:    hdr + "\n" + row1 + "\n" + hdr + "\n" + row2 + "\nSRC_IP,PACKETS,BYTES\n192.0.2.1,1,40\n",
			want:  Stats{Lines: 6, Records: 3, Headers: 3},
			first: `{"tag": 10, "label": "web", "src_ip": "192.0.2.10", "dst_ip": "198.51.100.20", "protocol": "tcp", "packets": 6, "bytes": 340}`,
		},
		{
			name: "CSV in JSON mode",
			in:   hdr + "\n" + row1 + "\n",
			opts: Options{Format: JSON},
			want: Stats{Lines: 2, BadLines: 2},
			bad:  []bad{{1, "invalid value"}, {2, "unexpected data after the value"}},
		},
		{
			name: "JSON in CSV mode",
			in:   rec1 + "\n",
			opts: Options{Format: CSV},
			want: Stats{Lines: 1, BadLines: 1},
			bad:  []bad{{1, "expected the CSV header"}},
		},
		{
			name: "the pmacct client's error, then nothing",
			in:   "ERROR: Unable to connect to '/var/spool/pmacct/plugin1.pipe'\n\n",
			want: Stats{Lines: 2, BadLines: 1, Blank: 1},
			bad:  []bad{{1, "neither a JSON object nor a CSV header"}},
		},
		{
			name:  "semicolon separator",
			in:    "SRC_IP;PACKETS;BYTES\n192.0.2.1;1;40\n",
			opts:  Options{Separator: ';', Names: PmacctNames},
			want:  Stats{Lines: 2, Records: 1, Headers: 1},
			first: `{"ip_src": "192.0.2.1", "packets": 1, "bytes": 40}`,
		},
		{
			name:  "custom primitive names kept as pmacct writes them",
			in:    "SRC_IP,ttl,Custom_X,PACKETS,BYTES\n192.0.2.1,64,ab,1,40\n",
			opts:  Options{Names: PmacctNames},
			want:  Stats{Lines: 2, Records: 1, Headers: 1},
			first: `{"ip_src": "192.0.2.1", "ttl": "64", "Custom_X": "ab", "packets": 1, "bytes": 40}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, st, logs := readAll(t, []byte(c.in), c.opts)
			if st != c.want {
				t.Fatalf("stats %+v, want %+v", st, c.want)
			}
			if len(logs) != len(c.bad) {
				t.Fatalf("%d messages, want %d: %v", len(logs), len(c.bad), logs)
			}
			for i, b := range c.bad {
				e := logs[i]
				reason, _ := e.Attrs["reason"].(string)
				snip, _ := e.Attrs["snippet"].(string)
				if e.Attrs["line"] != int64(b.line) || !strings.Contains(reason, b.reason) || e.Attrs["source"] != "test" || len(snip) > 130 {
					t.Errorf("message %d: %v, want line %d reason ~%q", i, e.Attrs, b.line, b.reason)
				}
			}
			if c.first != "" {
				var first string
				for _, g := range recs {
					if g.Kind == Data {
						first = g.JSON
						break
					}
				}
				if first != c.first {
					t.Fatalf("first record %s, want %s", first, c.first)
				}
			}
		})
	}
}

// A JSON record with bytes that are not UTF-8 in a value is kept (the bytes
// become U+FFFD when encoded), counted, and named by a rate-limited warning.
func TestInvalidUTF8Kept(t *testing.T) {
	bad := `{"event_type": "purge", "label": "caf` + "\xe9" + `", "ip_src": "192.0.2.10", "packets": 1, "bytes": 40}`
	in := rec1 + "\n" + bad + "\n" + rec2 + "\n" + bad + "\n"
	logs := &collector{}
	r := NewReader(strings.NewReader(in), Options{}, "test", slog.New(logs))
	r.utf8Log.Every = time.Hour // the second one is held back, whatever the machine's speed
	var labels []string
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := rec.Doc.Get("label"); ok {
			labels = append(labels, string(rec.Doc.AppendJSON(nil, document.Pmacct)))
			if string(v.Bytes) != "caf\xe9" {
				t.Errorf("label %q", v.Bytes)
			}
		}
	}
	if st := r.Stats(); st != (Stats{Lines: 4, Records: 4, InvalidUTF8: 2}) {
		t.Fatalf("stats %+v", st)
	}
	want := `{"event_type": "purge", "label": "caf\ufffd", "ip_src": "192.0.2.10", "packets": 1, "bytes": 40}`
	if len(labels) != 2 || labels[0] != want {
		t.Fatalf("records %q, want %q twice", labels, want)
	}
	if len(logs.entries) != 1 {
		t.Fatalf("%d messages, want 1: %v", len(logs.entries), logs.entries)
	}
	e := logs.entries[0]
	if e.Level != slog.LevelWarn || !strings.Contains(e.Msg, "invalid UTF-8") || e.Attrs["line"] != int64(2) ||
		e.Attrs["offset"] != int64(strings.IndexByte(bad, 0xe9)) || e.Attrs["source"] != "test" || !strings.Contains(e.Attrs["snippet"].(string), `caf\xe9`) {
		t.Fatalf("message %s %v", e.Msg, e.Attrs)
	}
}
