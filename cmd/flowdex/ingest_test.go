package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// samples are real pmacct 1.7.7 outputs (collector/pmacct/testdata/README.md).
const samples = "../../collector/pmacct/testdata/out/"

// runCLI runs the flowdex command in-process.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out bytes.Buffer
	var errb testwatch.Log // a client's goroutines may still log while run returns
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pmacctRecords returns the data records of a pmacct JSON file as decoded objects.
func pmacctRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if et, _ := m["event_type"].(string); et == "purge_init" || et == "purge_close" {
			continue
		}
		recs = append(recs, m)
	}
	return recs
}

// canonical renders a record without the given keys, for multiset comparison.
func canonical(m map[string]any, without ...string) string {
	c := map[string]any{}
	for k, v := range m {
		if !slices.Contains(without, k) {
			c[k] = v
		}
	}
	b, _ := json.Marshal(c) // map keys sorted
	return string(b)
}

func sameMultiset(t *testing.T, got, want []string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("documents differ from pmacct's records:\n got %d: %s\nwant %d: %s", len(got), strings.Join(got, "\n     "), len(want), strings.Join(want, "\n     "))
	}
}

var summaryRE = regexp.MustCompile(`^flowdex ingest: read (\d+) lines, (\d+) records; indexed (\d+) \((\d+) already there\), failed (\d+), dead-lettered (\d+), retried (\d+); skipped markers (\d+), bad lines (\d+)\n$`)

// A pmacct print-plugin file with history bins, markers and pmacct's default
// naive local time, through a flowdex TOML configuration and a transformation:
// every document is pmacct's record plus @timestamp (its stamp_inserted) and the
// transformation's field, in the daily index of its own bin.
func TestIngestPrintFile(t *testing.T) {
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) {
			url := srv.URL(t)
			index := estest.Index(t, "ingest")
			dir := t.TempDir()
			input, _ := filepath.Abs(samples + "print-default.json")
			cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
timezone = "Europe/Berlin"   # the samples were made with TZ=Europe/Berlin

[[pipeline]]
transformations = '''[{"Conditions": [{"ip_proto": "tcp"}, {"port_dst": 80}],
                       "Actions": [{"Type": "AddField", "Name": "service", "Value": "web $ip_dst"}]}]'''

[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d-%%H"
replicas = 0
`, input, url, index))
			code, stdout, stderr := runCLI(t, "", "ingest", "-c", cfg)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			want := pmacctRecords(t, input)
			m := summaryRE.FindStringSubmatch(stdout)
			if m == nil || m[2] != fmt.Sprint(len(want)) || m[3] != m[2] || m[5] != "0" || m[9] != "0" {
				t.Fatalf("summary %q for %d records", stdout, len(want))
			}
			docs := estest.Docs(t, url, index+"-*")
			var got, wantC []string
			for _, w := range want {
				wantC = append(wantC, canonical(w))
			}
			berlin, _ := time.LoadLocation("Europe/Berlin")
			services := 0
			for _, d := range docs {
				ins, err := time.ParseInLocation("2006-01-02 15:04:05", d.Source["stamp_inserted"].(string), berlin)
				if err != nil {
					t.Fatal(err)
				}
				if ts := d.Source["@timestamp"]; ts != ins.UTC().Format("2006-01-02T15:04:05.000Z") {
					t.Errorf("@timestamp %v, stamp_inserted %v", ts, d.Source["stamp_inserted"])
				}
				if wantIndex := index + ins.UTC().Format("-2006.01.02-15"); d.Index != wantIndex {
					t.Errorf("document of %v in %s, want %s", ins.UTC(), d.Index, wantIndex)
				}
				if s, ok := d.Source["service"]; ok {
					services++
					if d.Source["ip_proto"] != "tcp" || d.Source["port_dst"] != float64(80) || s != "web "+d.Source["ip_dst"].(string) {
						t.Errorf("transformation on the wrong document: %v", d.Source)
					}
				}
				got = append(got, canonical(d.Source, "@timestamp", "service"))
			}
			sameMultiset(t, got, wantC)
			if services == 0 {
				t.Error("the transformation matched no document")
			}
			// a second run on the unchanged file indexes nothing twice
			code, stdout, _ = runCLI(t, "", "ingest", "-c", cfg)
			if m := summaryRE.FindStringSubmatch(stdout); code != 0 || m == nil || m[3] != "0" || m[4] != fmt.Sprint(len(want)) {
				t.Fatalf("second run: exit %d, %s", code, stdout)
			}
			if n := estest.Count(t, url, index+"-*"); n != len(want) {
				t.Fatalf("%d documents after a second run, want %d", n, len(want))
			}
		})
	}
}

// The memory plugin's `pmacct -s -O json -e` output on standard input, with an
// existing p2es configuration file: p2es's ES keys, its transformations with a
// lookup table file, and ES_Type ignored with a warning.
func TestIngestP2ESStdin(t *testing.T) {
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) {
			url := srv.URL(t)
			index := estest.Index(t, "p2es")
			dir := t.TempDir()
			writeFile(t, dir, "tags.json", `{"10": "web clients", "20": "dns clients", "*": "other"}`)
			conf := writeFile(t, dir, "plugin1.conf", fmt.Sprintf(`{
    "ES_URL": %q,
    "ES_IndexName": "%s-%%Y-%%m-%%d",
    "ES_Type": "flow",
    "ES_FlushSize": 2,
    "InputFormat": "json",
    "Transformations": [
        {"Conditions": [{"tag": 0, "__op__": ">"}],
         "Actions": [{"Type": "AddFieldLookup", "Name": "tag_name", "LookupFieldName": "tag", "LookupTableFile": %q}]},
        {"Conditions": [{"ip_proto": ["icmp", "ipv6-icmp"], "__op__": "in"}],
         "Actions": [{"Type": "DelField", "Name": "port_src"}, {"Type": "DelField", "Name": "port_dst"}]}
    ]
}`, url, index, filepath.Join(dir, "tags.json")))
			input, err := os.ReadFile(samples + "memory-client.json")
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now().UTC()
			code, stdout, stderr := runCLI(t, string(input), "ingest", "--p2es-config", conf)
			after := time.Now().UTC()
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, "ES_Type") {
				t.Errorf("no warning about ES_Type:\n%s", stderr)
			}
			want := pmacctRecords(t, samples+"memory-client.json")
			docs := estest.Docs(t, url, index+"-*")
			var got, wantC []string
			for _, w := range want {
				if p, _ := w["ip_proto"].(string); p == "icmp" || p == "ipv6-icmp" {
					delete(w, "port_src")
					delete(w, "port_dst")
				}
				wantC = append(wantC, canonical(w))
			}
			for _, d := range docs {
				tag := d.Source["tag"].(float64)
				name, has := d.Source["tag_name"]
				switch {
				case tag == 10 && name != "web clients", tag == 20 && name != "dns clients", tag == 0 && has:
					t.Errorf("tag %v: tag_name %v", tag, name)
				}
				// no time in the memory table: the ingest time is the document's time
				ts, err := time.Parse(time.RFC3339, d.Source["@timestamp"].(string))
				if err != nil || ts.Before(before.Truncate(time.Millisecond)) || ts.After(after) {
					t.Errorf("@timestamp %v is not the ingest time, between %v and %v", d.Source["@timestamp"], before, after)
				}
				got = append(got, canonical(d.Source, "@timestamp", "tag_name"))
			}
			sameMultiset(t, got, wantC)
		})
	}
}

// Bad input costs nothing else: a document Elasticsearch rejects goes to the
// dead-letter file with Elasticsearch's reason, a truncated line is counted, the
// rest is indexed, and the exit status says not everything arrived.
func TestIngestRejectedAndBadLines(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "reject")
	dir := t.TempDir()
	deadLetter := filepath.Join(dir, "dead.ndjson")
	cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = "-"
[output.es]
type = "elasticsearch"
urls = [%q]
index = %q
replicas = 0
`, url, index))
	input := `{"event_type": "purge", "ip_src": "192.0.2.1", "packets": 1, "bytes": 60}
{"event_type": "purge", "ip_src": "192.0.2.2", "packets": 1, "bytes": "abc"}
{"event_type": "purge", "ip_src": "192.0.2.3", "packets": 
{"event_type": "purge", "ip_src": "192.0.2.4", "packets": 2, "bytes": 120}
`
	code, stdout, stderr := runCLI(t, input, "ingest", "-c", cfg, "--dead-letter", deadLetter)
	if code != exitData {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitData, stdout, stderr)
	}
	want := "flowdex ingest: read 4 lines, 3 records; indexed 2 (0 already there), failed 1, dead-lettered 1, retried 0; skipped markers 0, bad lines 1\n"
	if stdout != want {
		t.Fatalf("summary\n got %q\nwant %q", stdout, want)
	}
	if !strings.Contains(stderr, "source=stdin line=3") {
		t.Errorf("the bad line is not reported with its number:\n%s", stderr)
	}
	dl, err := os.ReadFile(deadLetter)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Status int `json:"status"`
		Error  struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error"`
		Document map[string]any `json:"document"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(dl), &rec); err != nil {
		t.Fatalf("dead-letter file %q: %v", dl, err)
	}
	if rec.Status != 400 || !strings.Contains(rec.Error.Reason, "[bytes]") || rec.Document["ip_src"] != "192.0.2.2" {
		t.Fatalf("dead-letter record %+v", rec)
	}
	if n := estest.Count(t, url, index); n != 2 {
		t.Fatalf("%d documents indexed, want 2", n)
	}
}

// pmacct's CSV with markers, p2es's lowercased header names, numbers typed.
func TestIngestCSV(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "csv")
	dir := t.TempDir()
	input, _ := filepath.Abs(samples + "print-append.csv")
	cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
format = "csv"
[output.es]
type = "elasticsearch"
urls = [%q]
index = %q
replicas = 0
`, input, url, index))
	code, stdout, stderr := runCLI(t, "", "ingest", "-c", cfg)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	docs := estest.Docs(t, url, index)
	if len(docs) == 0 {
		t.Fatal("no documents")
	}
	for _, d := range docs {
		if _, ok := d.Source["packets"].(float64); !ok {
			t.Errorf("packets is not a number: %v", d.Source)
		}
		if _, ok := d.Source["src_ip"].(string); !ok {
			t.Errorf("no src_ip (p2es's CSV name): %v", d.Source)
		}
	}
	if m := summaryRE.FindStringSubmatch(stdout); m == nil || m[8] == "0" || m[3] != fmt.Sprint(len(docs)) {
		t.Errorf("summary %q for %d documents", stdout, len(docs))
	}
}

// When Elasticsearch cannot be reached, what `pmacct -s -e` sent on standard input
// (its table already cleared) is kept in a file, and the exit status says so,
// once start_timeout is over (a p2es configuration has the default minute:
// the test gives a TOML one a second).
func TestIngestKeepsStdinWhenElasticsearchIsDown(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "flowdex.toml", `[[input]]
type = "pmacct"
name = "plugin1"
file = "-"
[output.es]
type = "elasticsearch"
urls = ["http://127.0.0.1:9299"]
index = "down"
start_timeout = "1s"
`)
	input := `{"ip_src": "192.0.2.1", "packets": 1, "bytes": 60}` + "\n"
	t.Chdir(dir)
	code, stdout, stderr := runCLI(t, input, "ingest", "-c", cfg)
	if code != exitStartup {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitStartup, stdout, stderr)
	}
	if !strings.Contains(stderr, "connection refused") || !strings.Contains(stderr, "start_timeout is 1s") {
		t.Errorf("the error does not say that Elasticsearch refused connections until start_timeout:\n%s", stderr)
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "flowdex-plugin1-unsent-*.json"))
	if len(saved) != 1 {
		t.Fatalf("standard input not saved: %v\n%s", saved, stderr)
	}
	if b, _ := os.ReadFile(saved[0]); string(b) != input || !strings.Contains(stderr, saved[0]) {
		t.Fatalf("saved %q; stderr %s", b, stderr)
	}
}
