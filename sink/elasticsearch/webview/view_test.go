package webview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// recorder is a Searcher that keeps the bodies it is given and answers with
// a canned answer or error: for the paths a real server does not take here
// (bad requests never reach it; a failing server).
type recorder struct {
	bodies []string
	answer string
	err    error
}

func (r *recorder) Search(_ context.Context, body []byte) (int, []byte, error) {
	r.bodies = append(r.bodies, string(body))
	return 200, []byte(r.answer), r.err
}

var now = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func get(t *testing.T, v *View, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	v.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w.Code, w.Body.String()
}

// Bad parameters are 400s with what was expected, and never reach
// Elasticsearch: no field name from the query string gets into a search.
func TestBadRequests(t *testing.T) {
	r := &recorder{answer: `{}`}
	v, err := New(Configuration{Searcher: r, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{"/api/top?by=bytes", `by=\"bytes\": expected one of`},
		{`/api/top?by=ip_src"}},"x":{"`, `expected one of`},
		{"/api/top", `by=\"\"`},
		{"/api/top?by=ip_src&size=0", `size=\"0\": expected 1 to 100`},
		{"/api/top?by=ip_src&size=x", `size=\"x\"`},
		{"/api/traffic?from=yesterday", `from: \"yesterday\": expected RFC 3339`},
		{"/api/traffic?from=now-3w", `expected now-N followed by s, m, h or d`},
		{"/api/traffic?from=now-", `expected now-N followed by s, m, h or d`},
		{"/api/traffic?from=now-d", `expected now-N followed by s, m, h or d`},
		{"/api/traffic?from=now-9223372036854775807d", `expected now-N followed by s, m, h or d`},
		{"/api/traffic?from=now-1001d", `expected now-N followed by s, m, h or d`},
		{"/api/traffic?from=now&to=now-1h", `is not before to`},
		{"/api/traffic?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", `longer than 400 days`},
	} {
		code, body := get(t, v, tt.path)
		if code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want 400 with %s", tt.path, code, body, tt.want)
		}
	}
	if len(r.bodies) > 0 {
		t.Errorf("bad requests reached Elasticsearch: %q", r.bodies)
	}
}

// A good request builds the search from the whitelisted field and the range;
// a failing Elasticsearch is a 502 with its reason.
func TestSearches(t *testing.T) {
	r := &recorder{answer: `{"aggregations":{"top":{"buckets":[{"key":443,"bytes":{"value":10},"packets":{"value":1}}]},"bytes":{"value":15},"packets":{"value":3}}}`}
	v, _ := New(Configuration{Searcher: r, Now: func() time.Time { return now }})
	code, body := get(t, v, "/api/top?by=port_dst&size=5&from=now-15m")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var top Top
	if err := json.Unmarshal([]byte(body), &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Rows) != 1 || top.Rows[0].Key != "443" || top.Rows[0].Bytes != 10 || top.Other != (Sums{5, 2}) || top.Total != (Sums{15, 3}) {
		t.Errorf("%+v", top)
	}
	for _, want := range []string{`"field":"port_dst","size":5`, `"gte":"2026-11-24T08:45:00Z","lt":"2026-11-24T09:00:00Z"`, `"range":{"@timestamp"`} {
		if !strings.Contains(r.bodies[0], want) {
			t.Errorf("search %s lacks %s", r.bodies[0], want)
		}
	}
	r.err = errors.New("elasticsearch: search: HTTP 400: search_phase_execution_exception")
	if code, body := get(t, v, "/api/traffic"); code != http.StatusBadGateway || !strings.Contains(body, "search_phase_execution_exception") {
		t.Errorf("failing search: %d %s", code, body)
	}
}

// Protocols written as names by some records and as numbers by others
// (pmacct's num_protos) are one row, the name pmacct gives the number; the
// rows are ranked after merging and cut to size.
func TestProtocolNamesAndNumbersMerge(t *testing.T) {
	r := &recorder{answer: `{"aggregations":{"top":{"buckets":[` +
		`{"key":"udp","bytes":{"value":50},"packets":{"value":5}},{"key":"tcp","bytes":{"value":40},"packets":{"value":4}},` +
		`{"key":"6","bytes":{"value":30},"packets":{"value":3}},{"key":"253","bytes":{"value":7},"packets":{"value":1}},` +
		`{"key":"17","bytes":{"value":1},"packets":{"value":1}}]},"bytes":{"value":128},"packets":{"value":14}}}`}
	v, _ := New(Configuration{Searcher: r, Now: func() time.Time { return now }})
	code, body := get(t, v, "/api/top?by=ip_proto&size=2")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var top Top
	if err := json.Unmarshal([]byte(body), &top); err != nil {
		t.Fatal(err)
	}
	want := []Row{{Key: "tcp", Sums: Sums{70, 7}}, {Key: "udp", Sums: Sums{51, 6}}}
	if !slices.Equal(top.Rows, want) || top.Other != (Sums{7, 1}) {
		t.Errorf("rows %+v other %+v; want %+v other {7 1}", top.Rows, top.Other, want)
	}
	if !strings.Contains(r.bodies[0], `"size":512`) {
		t.Errorf("every protocol bucket is not asked for: %s", r.bodies[0])
	}
}

// The buckets at the range's edges, aligned to the interval, say how much of
// them the range covers: their rate is over that part only.
func TestEdgeBuckets(t *testing.T) {
	first := time.Date(2026, 11, 24, 8, 45, 0, 0, time.UTC).UnixMilli()
	r := &recorder{answer: fmt.Sprintf(`{"hits":{"total":{"value":3}},"aggregations":{"t":{"buckets":[`+
		`{"key":%d,"bytes":{"value":300},"packets":{"value":1}},{"key":%d,"bytes":{"value":600},"packets":{"value":1}},`+
		`{"key":%d,"bytes":{"value":60},"packets":{"value":1}}]},"bytes":{"value":960},"packets":{"value":3}}}`,
		first, first+60000, first+14*60000)}
	v, _ := New(Configuration{Searcher: r, Now: func() time.Time { return now }})
	code, body := get(t, v, "/api/traffic?from=2026-11-24T08:45:30Z&to=2026-11-24T08:59:20Z")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var tr Traffic
	if err := json.Unmarshal([]byte(body), &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Interval != 60 || len(tr.Buckets) != 3 || tr.Buckets[0].Seconds != 30 || tr.Buckets[1].Seconds != 60 || tr.Buckets[2].Seconds != 20 {
		t.Errorf("buckets %+v, want 30, 60 and 20 s covered", tr.Buckets)
	}
	if !strings.Contains(r.bodies[0], `"extended_bounds":{"min":`+fmt.Sprint(first+30000)) {
		t.Errorf("search %s: bounds not from the range", r.bodies[0])
	}
}

func TestInterval(t *testing.T) {
	for _, tt := range []struct{ span, want time.Duration }{
		{15 * time.Minute, time.Minute}, {time.Hour, time.Minute}, {6 * time.Hour, 5 * time.Minute},
		{24 * time.Hour, 10 * time.Minute}, {7 * 24 * time.Hour, 3 * time.Hour}, {400 * 24 * time.Hour, 3 * 24 * time.Hour},
	} {
		if got := interval(tt.span); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.span, got, tt.want)
		}
	}
}

// The page and its vendored chart library are served from the binary, with
// a content security policy; directories are not listed.
func TestStatic(t *testing.T) {
	v, _ := New(Configuration{Searcher: &recorder{}})
	for _, p := range []string{"/", "/app.js", "/style.css", "/vendor/chart.umd.min.js"} {
		if code, body := get(t, v, p); code != 200 || len(body) < 100 {
			t.Errorf("%s: %d, %d bytes", p, code, len(body))
		}
	}
	for _, p := range []string{"/vendor/", "/vendor", "/nothing.js"} {
		w := httptest.NewRecorder()
		v.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil))
		if w.Code == 200 || strings.Contains(w.Body.String(), "chart.umd.min.js") {
			t.Errorf("%s: %d %s, want no listing", p, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	v.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// blocking is a Searcher that holds every search until released.
type blocking struct {
	started chan struct{}
	release chan struct{}
}

func (b *blocking) Search(ctx context.Context, _ []byte) (int, []byte, error) {
	b.started <- struct{}{}
	<-b.release
	return 200, []byte(`{}`), nil
}

// At most maxSearches API requests search at once; the next waits for a slot
// (503 after searchWait), and a slot is free again when a search ends.
func TestSearchLimit(t *testing.T) {
	defer func(d time.Duration) { searchWait = d }(searchWait)
	searchWait = 50 * time.Millisecond
	b := &blocking{started: make(chan struct{}, maxSearches+1), release: make(chan struct{})}
	v, _ := New(Configuration{Searcher: b, Now: func() time.Time { return now }})
	done := make(chan int, maxSearches+1)
	for range maxSearches {
		go func() {
			code, _ := get(t, v, "/api/traffic")
			done <- code
		}()
	}
	for range maxSearches {
		<-b.started
	}
	if code, body := get(t, v, "/api/top?by=ip_src"); code != http.StatusServiceUnavailable || !strings.Contains(body, "searches are running") {
		t.Errorf("search %d: %d %s, want 503", maxSearches+1, code, body)
	}
	// one more waits, and runs once a slot is free
	searchWait = time.Minute
	go func() {
		code, _ := get(t, v, "/api/traffic")
		done <- code
	}()
	time.Sleep(10 * time.Millisecond)
	b.release <- struct{}{}
	<-b.started
	close(b.release)
	for range maxSearches + 1 {
		if code := <-done; code != 200 {
			t.Errorf("held search: %d", code)
		}
	}
	if code, body := get(t, v, "/api/traffic"); code != 200 {
		t.Errorf("after the others: %d %s", code, body)
	}
}
