package pmacct

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The samples under testdata/out were written by Debian's pmacct 1.7.7 (see
// testdata/README.md). The counts below are those of the committed files: after
// running generate.sh again, update them.

func TestGoldenJSON(t *testing.T) {
	cases := []struct {
		file             string
		records, markers int64
	}{
		{"out/print-default.json", 16, 0},
		{"out/print-epoch.json", 31, 0},
		{"out/print-rfc3339.json", 31, 0},
		{"out/print-utc.json", 31, 0},
		{"out/print-numprotos.json", 14, 0},
		{"out/print-tcpflags-array.json", 14, 0},
		{"out/print-markers.json", 14, 2},
		{"out/print-label.json", 14, 0},
		{"out/print-custom.json", 14, 0},
		{"out/print-append.json", 24, 4},
		{"out/pair-pmacctd.json", 31, 2},
		{"out/pair-nfacctd.json", 5, 2},
		{"out/memory-client.json", 14, 0},
		{"out/memory-client-erase.json", 14, 0},
		{"out/memory-client-empty.json", 0, 0},
		{"handmade.json", 14, 2},
	}
	for _, c := range cases {
		for _, format := range []Format{JSON, Auto} {
			t.Run(c.file+"/"+format.String(), func(t *testing.T) {
				data := readFile(t, c.file)
				recs, st, logs := readAll(t, data, Options{Format: format})
				if len(logs) > 0 || st.BadLines > 0 {
					t.Fatalf("bad lines: %+v %v", st, logs)
				}
				want := Stats{Lines: c.records + c.markers, Records: c.records, Markers: c.markers}
				if st != want {
					t.Fatalf("stats %+v, want %+v", st, want)
				}
				in := lines(data)
				if len(recs) != len(in) {
					t.Fatalf("%d records for %d lines", len(recs), len(in))
				}
				inPurge, sincePurge := false, 0
				for i, g := range recs {
					if g.Line != i+1 || g.Raw != in[i] {
						t.Fatalf("record %d: line %d raw %q, want line %d %q", i, g.Line, g.Raw, i+1, in[i])
					}
					// pmacct's JSON, byte for byte
					if g.JSON != in[i] {
						t.Fatalf("line %d re-encoded differs:\n got %s\nwant %s", g.Line, g.JSON, in[i])
					}
					wantKind := Data
					switch {
					case strings.Contains(in[i], `"event_type": "purge_init"`):
						wantKind = MarkerInit
					case strings.Contains(in[i], `"event_type": "purge_close"`):
						wantKind = MarkerClose
					}
					if g.Kind != wantKind {
						t.Fatalf("line %d: kind %v, want %v", g.Line, g.Kind, wantKind)
					}
					// a purge_close counts the records since its purge_init
					switch g.Kind {
					case MarkerInit:
						inPurge, sincePurge = true, 0
					case MarkerClose:
						var m struct {
							PurgedEntries int `json:"purged_entries"`
						}
						if err := json.Unmarshal([]byte(g.Raw), &m); err != nil {
							t.Fatal(err)
						}
						if inPurge && m.PurgedEntries != sincePurge {
							t.Fatalf("line %d: purge_close says %d entries, read %d", g.Line, m.PurgedEntries, sincePurge)
						}
						inPurge = false
					default:
						sincePurge++
					}
				}
			})
		}
	}
}

// CSV and JSON written by the same pmacct run hold the same records: with
// PmacctNames, CSV gives the documents JSON gives, but for event_type and the
// history stamps, which pmacct's CSV does not have.
func TestGoldenCSVMatchesJSON(t *testing.T) {
	cases := []struct {
		csv, json                 string
		records, markers, headers int64
	}{
		{"out/pair-pmacctd.csv", "out/pair-pmacctd.json", 31, 2, 1},
		{"out/pair-nfacctd.csv", "out/pair-nfacctd.json", 5, 2, 1},
		{"out/memory-client.csv", "out/memory-client.json", 14, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.csv, func(t *testing.T) {
			jrecs, _, _ := readAll(t, readFile(t, c.json), Options{Format: JSON})
			for _, format := range []Format{CSV, Auto} {
				data := readFile(t, c.csv)
				recs, st, logs := readAll(t, data, Options{Format: format, Names: PmacctNames})
				if len(logs) > 0 {
					t.Fatalf("logged: %v", logs)
				}
				want := Stats{Lines: int64(len(lines(data))), Records: c.records, Markers: c.markers, Headers: c.headers}
				if st != want {
					t.Fatalf("stats %+v, want %+v", st, want)
				}
				csvSet := canonicalSet(t, recs)
				jsonSet := canonicalSet(t, jrecs, "event_type", "stamp_inserted", "stamp_updated")
				for i, s := range jsonSet {
					// pmacct 1.7.7's client bug: for a protocol without a name, its
					// JSON reads past the name table (its CSV prints "253")
					jsonSet[i] = strings.Replace(s, `"ip_proto":": open() failed (%s).\n"`, `"ip_proto":"253"`, 1)
				}
				if strings.Join(csvSet, "\n") != strings.Join(jsonSet, "\n") {
					t.Fatalf("CSV and JSON records differ:\nCSV:\n%s\nJSON:\n%s", strings.Join(csvSet, "\n"), strings.Join(jsonSet, "\n"))
				}
				for _, g := range recs {
					switch g.Kind {
					case MarkerInit, MarkerClose:
						pid := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(g.Raw, "--START ("), "--END ("), ")--")
						want := fmt.Sprintf(`{"event_type": %q, "pid": %s}`, g.Kind.String(), pid)
						if g.JSON != want {
							t.Fatalf("marker %s: %s, want %s", g.Raw, g.JSON, want)
						}
					}
				}
			}
		})
	}
}

// p2es's names: the header lowercased, values typed all the same.
func TestCSVLowerNames(t *testing.T) {
	data := readFile(t, "out/pair-pmacctd.csv")
	recs, _, _ := readAll(t, data, Options{Format: CSV})
	header := strings.Split(lines(data)[1], ",")
	for _, g := range recs {
		if g.Kind != Data {
			continue
		}
		var keys []string
		d := json.NewDecoder(strings.NewReader(g.JSON))
		d.Token()
		for d.More() {
			k, _ := d.Token()
			keys = append(keys, k.(string))
			var v json.RawMessage
			d.Decode(&v)
			if k == "packets" && v[0] == '"' || k == "src_ip" && v[0] != '"' || k == "label" && string(v) != `"web,http"` && g.Line < 6 {
				t.Fatalf("line %d: %s = %s", g.Line, k, v)
			}
		}
		if strings.Join(keys, ",") != strings.ToLower(strings.Join(header, ",")) {
			t.Fatalf("keys %v, header %v", keys, header)
		}
	}
}

// Append mode: one header, markers around each purge, and the same traffic as
// the JSON file the same run appended to (purges of the two plugins may cut the
// bins differently, so compare totals).
func TestGoldenCSVAppend(t *testing.T) {
	data := readFile(t, "out/print-append.csv")
	recs, st, logs := readAll(t, data, Options{Format: CSV, Names: PmacctNames})
	if len(logs) > 0 || st.Headers != 1 || st.Markers != 4 || st.Records != int64(len(lines(data)))-5 {
		t.Fatalf("stats %+v, logs %v", st, logs)
	}
	jrecs, _, _ := readAll(t, readFile(t, "out/print-append.json"), Options{})
	total := func(recs []got) (p, b int64) {
		for _, g := range recs {
			if g.Kind != Data {
				continue
			}
			var m struct{ Packets, Bytes int64 }
			if err := json.Unmarshal([]byte(g.JSON), &m); err != nil {
				t.Fatal(err)
			}
			p += m.Packets
			b += m.Bytes
		}
		return
	}
	cp, cb := total(recs)
	jp, jb := total(jrecs)
	if cp != jp || cb != jb || cp == 0 {
		t.Fatalf("CSV %d packets %d bytes, JSON %d packets %d bytes", cp, cb, jp, jb)
	}
	// the same file written twice, as cat would concatenate rewritten files
	recs2, st2, logs2 := readAll(t, append(append([]byte{}, data...), data...), Options{Format: CSV})
	if len(logs2) > 0 || st2.Headers != 2 || st2.Records != 2*st.Records || len(recs2) != 2*len(recs) {
		t.Fatalf("concatenated: %+v %v", st2, logs2)
	}
}

// A tab separator keeps the comma of a chained label inside its column.
func TestGoldenCSVTab(t *testing.T) {
	data := readFile(t, "out/print-tab.csv")
	for _, sep := range []string{`\t`, "\t"} {
		b, err := ParseSeparator(sep)
		if err != nil || b != '\t' {
			t.Fatalf("ParseSeparator(%q) = %q, %v", sep, b, err)
		}
		recs, st, logs := readAll(t, data, Options{Format: CSV, Separator: b, Names: PmacctNames})
		if len(logs) > 0 || st.Records != 14 || st.Headers != 1 {
			t.Fatalf("stats %+v, logs %v", st, logs)
		}
		labels := 0
		for _, g := range recs {
			if strings.Contains(g.JSON, `"label": "web,http"`) {
				labels++
			}
		}
		if labels != 2 {
			t.Fatalf("%d records labelled web,http: %v", labels, recs)
		}
	}
	// read with ',', the header is not one: every line is bad
	_, st, _ := readAll(t, data, Options{Format: CSV})
	if st != (Stats{Lines: 15, BadLines: 15}) {
		t.Fatalf("tab-separated file read with ',': %+v", st)
	}
}

// What the memory client prints: nothing for an empty table in JSON, a header in
// CSV, and on stdout an error line when pmacctd is not there.
func TestMemoryClientOddities(t *testing.T) {
	_, st, _ := readAll(t, readFile(t, "out/memory-client-empty.json"), Options{})
	if st != (Stats{}) {
		t.Fatalf("empty JSON: %+v", st)
	}
	_, st, _ = readAll(t, readFile(t, "out/memory-client-empty.csv"), Options{})
	if st != (Stats{Lines: 1, Headers: 1}) {
		t.Fatalf("empty CSV: %+v", st)
	}
	for _, f := range []Format{Auto, JSON, CSV} {
		_, st, logs := readAll(t, readFile(t, "out/memory-client-error.txt"), Options{Format: f})
		if st != (Stats{Lines: 2, BadLines: 1, Blank: 1}) || len(logs) != 1 ||
			!strings.HasPrefix(logs[0].Attrs["snippet"].(string), "ERROR: Unable to connect to '") {
			t.Fatalf("%v: client error: %+v %v", f, st, logs)
		}
	}
}

// The name table agrees with every pair pmacct 1.7.7 printed (generate.sh csvnames).
func TestCSVNamesTable(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "out", "csvnames.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		n++
		csvName, jsonKey := fields[0], fields[1]
		if fields[2] == "fw_event" {
			continue // 1.7.7 prints fw_event as NAT_EVENT/nat_event; master has FW_EVENT/fw_event
		}
		if n := lookupCSV(csvName); n == nil || n.json != jsonKey {
			t.Errorf("%s: read as %+v; pmacct printed %q", csvName, n, jsonKey)
		}
		if n := lookupCSV(strings.ToLower(csvName)); n == nil || n.json != jsonKey {
			t.Errorf("%s in lower case: %+v", csvName, n)
		}
	}
	if n < 60 {
		t.Fatalf("only %d names in csvnames.txt", n)
	}
	if lookupCSV("ttl") != nil {
		t.Fatal("a custom primitive has no pmacct name")
	}
	seen := map[string]bool{}
	for _, c := range csvByName {
		if seen[c.json] {
			t.Errorf("JSON key %s twice", c.json)
		}
		seen[c.json] = true
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]Format{"json": JSON, "CSV": CSV, "auto": Auto, "": Auto} {
		if f, err := ParseFormat(s); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml)")
	}
	for s, want := range map[string]Names{"lowercase": LowerNames, "p2es": LowerNames, "pmacct": PmacctNames, "": LowerNames} {
		if n, err := ParseNames(s); err != nil || n != want {
			t.Errorf("ParseNames(%q) = %v, %v", s, n, err)
		}
	}
	if _, err := ParseNames("upper"); err == nil {
		t.Error("ParseNames(upper)")
	}
	for s, want := range map[string]byte{",": ',', ";": ';', `\t`: '\t', `\s`: ' ', "|": '|', "": ','} {
		if b, err := ParseSeparator(s); err != nil || b != want {
			t.Errorf("ParseSeparator(%q) = %q, %v", s, b, err)
		}
	}
	for _, s := range []string{",,", "\n", `"`, `\x`} {
		if _, err := ParseSeparator(s); err == nil {
			t.Errorf("ParseSeparator(%q) accepted", s)
		}
	}
}

// TestShared reads the expected outputs of pmacct's own regression cases when
// they are next to the project (../shared/pmacct-tests): pmacct master's JSON.
func TestSharedPmacctTests(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/pmacct-tests/*/output-flow-*.json")
	more, _ := filepath.Glob("../../../shared/pmacct-tests/*/scenario-*/output-flow-*.json")
	files = append(files, more...)
	if len(files) == 0 {
		t.Skip("../shared/pmacct-tests not found")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		recs, st, logs := readAll(t, data, Options{})
		if len(logs) > 0 || st.Records+st.Markers != int64(len(recs)) || st.Records == 0 {
			t.Errorf("%s: %+v %v", file, st, logs)
			continue
		}
		for _, g := range recs {
			if g.JSON != g.Raw {
				t.Errorf("%s:%d re-encoded differs:\n got %s\nwant %s", file, g.Line, g.JSON, g.Raw)
				break
			}
		}
	}
}

func TestLineEndings(t *testing.T) {
	in := "{\"a\": 1}\r\n\r\n  \t\n{\"a\": 2}\n{\"a\": 3}"
	recs, st, _ := readAll(t, []byte(in), Options{})
	if st != (Stats{Lines: 5, Records: 3, Blank: 2}) {
		t.Fatalf("%+v", st)
	}
	for i, want := range []string{`{"a": 1}`, `{"a": 2}`, `{"a": 3}`} {
		if recs[i].JSON != want || recs[i].Raw != want {
			t.Fatalf("record %d: %+v", i, recs[i])
		}
	}
	if recs[2].Line != 5 {
		t.Fatalf("last line number %d", recs[2].Line)
	}
	// a BOM on the first line
	recs, st, _ = readAll(t, []byte("\xef\xbb\xbfSRC_IP,PACKETS,BYTES\r\n192.0.2.1,1,40\r\n"), Options{})
	if st.Records != 1 || recs[0].JSON != `{"src_ip": "192.0.2.1", "packets": 1, "bytes": 40}` {
		t.Fatalf("%+v %v", st, recs)
	}
}

// Lines longer than the bufio buffer are assembled; longer than MaxLine skipped.
func TestLongLines(t *testing.T) {
	long := func(n int) string {
		return `{"label": "` + strings.Repeat("x", n) + `", "bytes": 1}`
	}
	ok := long(200 << 10)    // > the 64 KiB buffer
	tooLong := long(2 << 20) // > 1 MiB
	in := ok + "\n" + tooLong + "\n" + `{"bytes": 2}` + "\n" + tooLong
	recs, st, logs := readAll(t, []byte(in), Options{})
	if st != (Stats{Lines: 4, Records: 2, BadLines: 2}) {
		t.Fatalf("%+v", st)
	}
	if recs[0].JSON != ok || recs[1].JSON != `{"bytes": 2}` || recs[1].Line != 3 {
		t.Fatalf("records %d %q", recs[1].Line, recs[1].JSON)
	}
	if len(logs) != 2 || logs[0].Attrs["line"] != int64(2) || logs[1].Attrs["line"] != int64(4) ||
		!strings.Contains(logs[0].Attrs["reason"].(string), "longer than 1048576") ||
		len(logs[0].Attrs["snippet"].(string)) > 130 {
		t.Fatalf("logs %v", logs)
	}
	// exactly MaxLine is accepted, with or without CRLF; one more byte is not
	for _, eol := range []string{"\n", "\r\n", ""} {
		line := `{"a": "` + strings.Repeat("y", 100-9) + `"}`
		_, st, _ = readAll(t, []byte(line+"\n"+"x"+line+eol), Options{MaxLine: 100})
		if st != (Stats{Lines: 2, Records: 1, BadLines: 1}) {
			t.Fatalf("MaxLine with %q: %+v", eol, st)
		}
		_, st, _ = readAll(t, []byte(long(100<<10)+"\r\n"+"x"+long(100<<10)+eol), Options{MaxLine: len(long(100 << 10))})
		if st != (Stats{Lines: 2, Records: 1, BadLines: 1}) {
			t.Fatalf("MaxLine over the buffer with %q: %+v", eol, st)
		}
	}
}

func TestSnippet(t *testing.T) {
	line := []byte(strings.Repeat("a", 300) + "\x00\xff" + strings.Repeat("b", 300))
	s := snippet(line, 300)
	if !strings.HasPrefix(s, "…") || !strings.HasSuffix(s, "…") || !strings.Contains(s, `\x00\xff`) || len(s) > 140 {
		t.Fatalf("%q", s)
	}
	if s := snippet([]byte("é\tx"), -1); s != `é\x09x` {
		t.Fatalf("%q", s)
	}
	if s := snippet(line, -1); !strings.HasPrefix(s, "aaa") || len(s) != 120+len("…") {
		t.Fatalf("%q", s)
	}
}

// More than maxLogged bad lines: counted, logged one in logEvery.
func TestBadLinesRateLimited(t *testing.T) {
	in := strings.Repeat("junk\n", 20001)
	_, st, logs := readAll(t, []byte(in), Options{Format: JSON})
	if st.BadLines != 20001 || len(logs) != maxLogged+2 {
		t.Fatalf("%+v, %d messages", st, len(logs))
	}
	if logs[maxLogged-1].Attrs["note"] == nil || logs[maxLogged].Attrs["line"] != int64(10000) {
		t.Fatalf("%v %v", logs[maxLogged-1], logs[maxLogged])
	}
}

func TestIsJSONNumber(t *testing.T) {
	for s, want := range map[string][2]bool{
		"0": {true, true}, "-1": {true, true}, "007": {false, false}, "": {false, false}, "-": {false, false},
		"1.5": {false, true}, "0.000000": {false, true}, "1e5": {false, true}, "1.": {false, false},
		"+1": {false, false}, "18446744073709551615": {true, true}, "123456789012345678901": {false, true},
		"1e": {false, false}, ".5": {false, false}, "0x10": {false, false},
	} {
		if got := [2]bool{isJSONInt([]byte(s)), isJSONNumber([]byte(s))}; got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
		if want[1] && !json.Valid([]byte(s)) {
			t.Errorf("%q is not JSON", s)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Data: "data", MarkerInit: "purge_init", MarkerClose: "purge_close"} {
		if k.String() != want {
			t.Errorf("%d: %s", k, k)
		}
	}
	if JSON.String() != "json" || CSV.String() != "csv" || Auto.String() != "auto" || PmacctNames.String() != "pmacct" || LowerNames.String() != "lowercase" {
		t.Error("names")
	}
}
