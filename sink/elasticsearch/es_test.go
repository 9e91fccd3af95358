package elasticsearch

// Tests against a real Elasticsearch 8 and 9 (started by estest when none
// is running; skipped when none can be had, unless CI=true).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/timestamp"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// realConfig writes to a fresh prefix on url; the template is named after
// the prefix so that estest cleans it up.
func realConfig(t *testing.T, url string) (Configuration, string) {
	prefix := estest.Index(t, "flowdex")
	cfg := DefaultConfiguration()
	cfg.URLs = []string{url}
	cfg.Index = prefix + "-%Y.%m.%d"
	cfg.TemplateName = prefix
	cfg.DeadLetterFile = filepath.Join(t.TempDir(), "dead-letter.ndjson")
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 100*time.Millisecond
	return cfg, prefix
}

// mapping returns field -> type for every index matching pattern; a field
// mapped differently in two indices fails the test.
func mapping(t *testing.T, url, pattern string) map[string]string {
	t.Helper()
	resp, err := http.Get(url + "/" + pattern + "/_mapping")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/_mapping: %d %s", pattern, resp.StatusCode, body)
	}
	var m map[string]struct {
		Mappings struct {
			Properties map[string]struct {
				Type   string                     `json:"type"`
				Fields map[string]json.RawMessage `json:"fields"`
			} `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for index, im := range m {
		for f, p := range im.Mappings.Properties {
			typ := p.Type
			if typ == "" {
				typ = "object"
			}
			if _, ok := p.Fields["keyword"]; ok {
				typ += "+keyword"
			}
			if old, ok := out[f]; ok && old != typ {
				t.Errorf("%s: %s is %s here and %s elsewhere", index, f, typ, old)
			}
			out[f] = typ
		}
	}
	return out
}

type testDoc struct {
	id     string
	fields func(d *document.Document)
	index  string // date part of the index; "today" for the ingest time
	stamp  string // expected @timestamp; "" for the ingest time
}

func TestRealIndexing(t *testing.T) {
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) {
			url := srv.URL(t)
			t.Logf("Elasticsearch %s at %s", estest.Version(t, url), url)
			testRealIndexing(t, url)
		})
	}
}

func testRealIndexing(t *testing.T, url string) {
	cfg, prefix := realConfig(t, url)
	zone := time.FixedZone("pmacct", 3600) // the daemon's zone for naive times
	cfg.FlushDocs = 100                    // everything in one bulk request

	common := func(d *document.Document) {
		d.SetString("event_type", "purge")
		d.SetString("ip_src", "192.0.2.10")
		d.SetString("ip_dst", "2001:db8::1")
		d.SetInt("port_src", 51000)
		d.SetInt("port_dst", 443)
		d.SetString("ip_proto", "tcp")
		d.SetString("etype", "800")
		d.SetInt("as_src", 64496)
	}
	docs := []testDoc{
		{"before-midnight", func(d *document.Document) {
			common(d)
			d.SetString("stamp_inserted", "2024-01-02 00:30:00") // +01:00: 23:30 UTC the day before
			d.SetString("stamp_updated", "2024-01-02 00:31:00")
			d.SetString("tcp_flags", "27")
			d.SetString("label", "customer-a")
			d.SetInt("packets", 7)
			d.SetInt("bytes", 430)
		}, "2024.01.01", "2024-01-01T23:30:00.000Z"},
		{"after-midnight", func(d *document.Document) {
			common(d)
			d.SetString("stamp_inserted", "2024-01-02 01:30:00")
			d.SetInt("tcp_flags", 27)
			d.SetInt("packets", 3)
			d.SetInt("bytes", 180)
		}, "2024.01.02", "2024-01-02T00:30:00.000Z"},
		{"timestamp-start", func(d *document.Document) {
			common(d)
			d.SetString("timestamp_start", "2024-01-02T00:00:00.100000+00:00")
			d.SetString("timestamp_end", "2024-01-02 00:00:05.250000")
			d.SetString("timestamp_arrival", "1704153600.900000")
			d.SetRaw("tcp_flags", []byte(`["ACK","SYN"]`))
			d.SetInt("packets", 1)
			d.SetInt("bytes", 60)
		}, "2024.01.02", "2024-01-02T00:00:00.100Z"},
		{"timestamp-arrival", func(d *document.Document) {
			common(d)
			d.SetString("timestamp_start", "0000-00-00 00:00:00.000000") // pmacct's zero time
			d.SetString("timestamp_arrival", "1704067200.100000")
			d.SetString("ip_src", "") // not an address: ignored, the document kept
			d.SetInt("packets", 1)
			d.SetInt("bytes", 60)
		}, "2024.01.01", "2024-01-01T00:00:00.100Z"},
		{"rfc3339-z", func(d *document.Document) {
			common(d)
			d.SetString("stamp_inserted", "2023-12-31T23:59:00Z")
			d.SetString("@timestamp", "1999-01-01T00:00:00Z") // replaced
			d.SetInt("packets", 2)
			d.SetInt("bytes", 120)
		}, "2023.12.31", "2023-12-31T23:59:00.000Z"},
		{"epoch-string", func(d *document.Document) {
			common(d)
			d.SetString("stamp_inserted", "1704067140")
			d.SetString("custom_vrf", "blue") // a custom primitive: keyword
			d.SetRaw("label", []byte(`"plain"`))
			d.SetInt("packets", 2)
			d.SetInt("bytes", 120)
		}, "2023.12.31", "2023-12-31T23:59:00.000Z"},
		{"ingest-time", func(d *document.Document) {
			common(d)
			d.SetInt("packets", 5)
			d.SetInt("bytes", 500)
		}, "today", ""},
		{"bad-bytes", func(d *document.Document) {
			common(d)
			d.SetString("stamp_inserted", "2024-01-02 00:30:00")
			d.SetInt("packets", 1)
			d.SetString("bytes", "abc") // a long field: rejected
		}, "", ""},
		{"", func(d *document.Document) { // no id: index with an automatic _id
			common(d)
			d.SetString("stamp_inserted", "2024-01-02 00:30:00")
			d.SetInt("packets", 9)
			d.SetInt("bytes", 900)
		}, "2024.01.01", "2024-01-01T23:30:00.000Z"},
	}

	// the sink's clock, which dates the document without a time of its own:
	// pinned a moment before midnight, so that the test does not depend on
	// the time it runs at (read from the wall clock, "today" changed between
	// the write and the check, or between the two writes, when the test ran
	// across midnight UTC)
	ingest := time.Date(2026, 11, 24, 23, 59, 59, 999_000_000, time.UTC)
	write := func() Stats {
		s, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return ingest }
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var d document.Document
		for _, td := range docs {
			d.Reset()
			td.fields(&d)
			if err := s.Write(context.Background(), &d, td.id, recordTime(&d, zone)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s.Stats()
	}

	st := write()
	n := uint64(len(docs))
	if st.Written != n || st.Indexed != n-1 || st.DeadLettered != 1 || st.Failed != 0 || st.Requests != 1 {
		t.Errorf("stats %+v: want %d written, %d indexed, 1 dead-lettered in 1 request", st, n, n-1)
	}

	// the rejected document, with Elasticsearch's reason
	recs := readDeadLetters(t, cfg.DeadLetterFile)
	if len(recs) != 1 {
		t.Fatalf("%d dead letters, want 1", len(recs))
	}
	r := recs[0]
	t.Logf("dead letter: %s %s status %d %s: %s", r.Index, r.ID, r.Status, r.Error.Type, r.Error.Reason)
	if r.ID != "bad-bytes" || r.Index != prefix+"-2024.01.01" || r.Status != 400 ||
		(r.Error.Type != "document_parsing_exception" && r.Error.Type != "mapper_parsing_exception") ||
		!strings.Contains(r.Error.Reason, "[bytes]") || r.Document["bytes"] != "abc" ||
		r.Document["@timestamp"] != "2024-01-01T23:30:00.000Z" {
		t.Errorf("dead letter %+v", r)
	}

	// the documents, in the index of their own day
	today := ingest.Format("2006.01.02")
	got := estest.Docs(t, url, prefix+"-*")
	if len(got) != len(docs)-1 {
		t.Fatalf("%d documents in %s-*, want %d", len(got), prefix, len(docs)-1)
	}
	byID := map[string]estest.Doc{}
	for _, d := range got {
		if _, dup := byID[d.ID]; dup {
			t.Errorf("_id %s twice", d.ID)
		}
		byID[d.ID] = d
	}
	for _, td := range docs {
		if td.id == "bad-bytes" {
			continue
		}
		var d estest.Doc
		if td.id == "" {
			for _, x := range got {
				if x.Source["bytes"] == 900.0 {
					d = x
				}
			}
		} else {
			d = byID[td.id]
		}
		if d.Source == nil {
			t.Errorf("%s: not found", td.id)
			continue
		}
		wantIndex := prefix + "-" + td.index
		if td.index == "today" {
			wantIndex = prefix + "-" + today
		}
		if d.Index != wantIndex {
			t.Errorf("%s: in %s, want %s", td.id, d.Index, wantIndex)
		}
		stamp, _ := d.Source["@timestamp"].(string)
		wantStamp := td.stamp
		if wantStamp == "" {
			wantStamp = ingest.Format("2006-01-02T15:04:05.000Z") // the ingest time
		}
		if stamp != wantStamp {
			t.Errorf("%s: @timestamp %q, want %q", td.id, stamp, wantStamp)
		}
		// the document as written, @timestamp added last
		var want document.Document
		td.fields(&want)
		want.Delete("@timestamp")
		keys := make([]string, 0, want.Len())
		for i := range want.Len() {
			keys = append(keys, want.Key(i))
		}
		if len(d.Source) != len(keys)+1 {
			t.Errorf("%s: %d fields, want %d: %v", td.id, len(d.Source), len(keys)+1, d.Source)
		}
		for _, k := range keys {
			if _, ok := d.Source[k]; !ok {
				t.Errorf("%s: field %s missing", td.id, k)
			}
		}
	}
	if tf := byID["timestamp-start"].Source["tcp_flags"]; fmt.Sprint(tf) != "[ACK SYN]" {
		t.Errorf("tcp_flags %v", tf)
	}

	// the types
	types := mapping(t, url, prefix+"-*")
	t.Logf("mapping: %v", types)
	want := map[string]string{
		"@timestamp": "date", "ip_src": "ip", "ip_dst": "ip", "port_src": "long", "port_dst": "long",
		"as_src": "long", "packets": "long", "bytes": "long", "stamp_inserted": "date",
		"stamp_updated": "date", "timestamp_start": "date", "timestamp_end": "date",
		"timestamp_arrival": "date", "tcp_flags": "keyword", "ip_proto": "keyword", "etype": "keyword",
		"event_type": "keyword", "label": "keyword", "custom_vrf": "keyword",
	}
	for f, typ := range want {
		if types[f] != typ {
			t.Errorf("%s is mapped as %q, want %q", f, types[f], typ)
		}
	}

	// pmacct's date formats are searchable as dates
	hits := estest.Search(t, url, prefix+"-*", `{"query":{"range":{"timestamp_end":{"gte":"2024-01-02T00:00:05.250Z","lte":"2024-01-02T00:00:05.250Z"}}}}`)
	if len(hits) != 1 {
		t.Errorf("timestamp_end range query: %d hits, want 1", len(hits))
	}
	hits = estest.Search(t, url, prefix+"-*", `{"query":{"range":{"timestamp_arrival":{"gte":"2024-01-02T00:00:00.900Z","lte":"2024-01-02T00:00:00.900Z"}}}}`)
	if len(hits) != 1 {
		t.Errorf("epoch timestamp_arrival range query: %d hits, want 1", len(hits))
	}
	hits = estest.Search(t, url, prefix+"-*", `{"query":{"term":{"tcp_flags":"27"}}}`)
	if len(hits) != 2 {
		t.Errorf("tcp_flags 27: %d hits, want 2 (the string and the number)", len(hits))
	}
	hits = estest.Search(t, url, prefix+"-*", `{"query":{"term":{"ip_dst":"2001:db8::/32"}}}`)
	if len(hits) != len(docs)-1 {
		t.Errorf("ip_dst CIDR query: %d hits, want %d", len(hits), len(docs)-1)
	}

	// the same documents again: the ids make them duplicates, not new documents
	st = write()
	if st.Duplicates != n-2 || st.Indexed != 1 || st.DeadLettered != 1 {
		t.Errorf("again: stats %+v: want %d duplicates, 1 indexed (no id), 1 dead-lettered", st, n-2)
	}
	if c := estest.Count(t, url, prefix+"-*"); c != len(docs) {
		t.Errorf("%d documents after writing them again, want %d (only the one without id twice)", c, len(docs))
	}
	if recs := readDeadLetters(t, cfg.DeadLetterFile); len(recs) != 2 {
		t.Errorf("%d dead letters after the second run, want 2 (appended)", len(recs))
	}
}

// TestRealIndexBodyFile: p2es's index body becomes the template of every
// daily index, replacing flowdex's mappings.
func TestRealIndexBodyFile(t *testing.T) {
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) {
			url := srv.URL(t)
			cfg, prefix := realConfig(t, url)
			cfg.IndexBodyFile = "testdata/p2es-new-index-template.json"
			cfg.DocType = "flow" // p2es ES_Type: ignored with a warning
			s, logs := startSink(t, cfg)
			var d document.Document
			for i, stamp := range []string{"2024-01-01 23:00:00", "2024-01-02 01:00:00"} {
				pmacctDoc(&d, i)
				d.SetString("stamp_inserted", stamp)
				if err := s.Write(context.Background(), &d, strconv.Itoa(i), recordTime(&d, time.UTC)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Indexed != 2 {
				t.Fatalf("stats %+v", st)
			}
			if n := strings.Count(logs.String(), "document type (p2es ES_Type) is ignored"); n != 1 {
				t.Errorf("%d warnings about the document type, want 1:\n%s", n, logs)
			}
			var indices []string
			for _, d := range estest.Docs(t, url, prefix+"-*") {
				indices = append(indices, d.Index)
			}
			slices.Sort(indices)
			if !slices.Equal(indices, []string{prefix + "-2024.01.01", prefix + "-2024.01.02"}) {
				t.Errorf("indices %v", indices)
			}
			types := mapping(t, url, prefix+"-*")
			// p2es's body: its four fields typed, the rest dynamic (text + keyword)
			for f, typ := range map[string]string{
				"@timestamp": "date", "bytes": "long", "packets": "long",
				"ip_src": "text+keyword", "ip_proto": "text+keyword", "port_src": "long",
			} {
				if types[f] != typ {
					t.Errorf("%s is mapped as %q, want %q (p2es's body)", f, types[f], typ)
				}
			}
		})
	}
}

// TestRealTemplateErrors: Start reports what Elasticsearch says about a bad
// template.
func TestRealTemplateErrors(t *testing.T) {
	url := estest.URL(t)
	cfg, _ := realConfig(t, url)
	dir := t.TempDir()
	cfg.IndexBodyFile = filepath.Join(dir, "body.json")
	if err := os.WriteFile(cfg.IndexBodyFile, []byte(`{"mappings":{"properties":{"bytes":{"type":"lng"}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "lng") {
		t.Errorf("Start: %v, want Elasticsearch's refusal", err)
	}
}

// TestRealThroughput measures indexing into the real server; it runs with
// FLOWDEX_ES_THROUGHPUT=<documents>.
func TestRealThroughput(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FLOWDEX_ES_THROUGHPUT"))
	if n <= 0 {
		t.Skip("set FLOWDEX_ES_THROUGHPUT=200000 to measure")
	}
	for _, srv := range estest.Servers {
		for _, ids := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ids=%t", srv.Name, ids), func(t *testing.T) {
				url := srv.URL(t)
				cfg, prefix := realConfig(t, url)
				cfg.Replicas = 0
				s, _ := startSink(t, cfg)
				var d document.Document
				start := time.Now()
				for i := range n {
					pmacctDoc(&d, i)
					id := ""
					if ids {
						id = strconv.Itoa(i)
					}
					if err := s.Write(context.Background(), &d, id, recordTime(&d, time.UTC)); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
				el := time.Since(start)
				st := s.Stats()
				if st.Indexed != uint64(n) {
					t.Errorf("stats %+v", st)
				}
				t.Logf("%d documents in %s: %.0f docs/s, %d requests, %d retried",
					n, el.Round(time.Millisecond), float64(n)/el.Seconds(), st.Requests, st.Retried)
				if c := estest.Count(t, url, prefix+"-*"); c != n {
					t.Errorf("%d documents in Elasticsearch, want %d", c, n)
				}
			})
		}
	}
}

// recordTime is a test document's time as a pipeline gives it: its first
// pmacct timestamp, naive ones read in loc: time.UTC in the tests, whose
// expected indices and @timestamps must not move with the machine's zone.
func recordTime(d *document.Document, loc *time.Location) time.Time {
	t, _ := timestamp.Of(d, []string{"stamp_inserted", "timestamp_start", "timestamp_arrival"}, loc)
	return t
}

// Labels written as maps (pre_tag_label_encode_as_map) need LabelMaps: the
// template's keyword label refuses an object, which is dead-lettered;
// with LabelMaps the label's keys are keywords to search on.
func TestRealLabelMaps(t *testing.T) {
	url := estest.URL(t)
	for _, maps := range []bool{false, true} {
		cfg, prefix := realConfig(t, url)
		cfg.LabelMaps = maps
		s, _ := startSink(t, cfg)
		var d document.Document
		for i, label := range []string{`{"site": "ams", "role": "core"}`, `{}`} {
			pmacctDoc(&d, i)
			d.AppendRaw("label", []byte(label))
			if err := s.Write(context.Background(), &d, fmt.Sprintf("label-%d", i), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := s.Stats()
		if !maps {
			if st.Indexed != 0 || st.DeadLettered != 2 {
				t.Errorf("a keyword label took objects: %+v", st)
			}
			continue
		}
		if st.Indexed != 2 {
			t.Fatalf("label maps: %+v", st)
		}
		estest.Refresh(t, url, prefix+"-*")
		hits := estest.Search(t, url, prefix+"-*", `{"query": {"term": {"label.site": "ams"}}}`)
		// a terms aggregation: only a keyword (not text) takes one
		var out struct {
			Aggregations struct {
				Roles struct {
					Buckets []struct {
						Key string `json:"key"`
					} `json:"buckets"`
				} `json:"roles"`
			} `json:"aggregations"`
		}
		estest.Call(t, http.MethodPost, url+"/"+prefix+"-*/_search", []byte(`{"size": 0, "aggs": {"roles": {"terms": {"field": "label.role"}}}}`), &out)
		if b := out.Aggregations.Roles.Buckets; len(hits) != 1 || len(b) != 1 || b[0].Key != "core" {
			t.Errorf("label.site:ams: %d hits; label.role's terms %+v", len(hits), b)
		}
	}
}
