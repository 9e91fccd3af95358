// Package webview serves flowdex's web page: traffic over time and the top
// talkers, ports and protocols of a time range, read from Elasticsearch
// aggregations over the indices an output writes.
package webview

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// Searcher runs an Elasticsearch search body over the output's indices.
type Searcher interface {
	Search(ctx context.Context, body []byte) (status int, answer []byte, err error)
}

// Configuration of the view.
type Configuration struct {
	Searcher  Searcher
	Indices   string           // what the page says it shows (the index wildcard)
	TimeField string           // default @timestamp, which every document flowdex writes has
	Now       func() time.Time // default time.Now
	Logger    *slog.Logger     // default slog.Default()
}

// View is the page and its JSON API.
type View struct {
	cfg      Configuration
	mux      *http.ServeMux
	searches chan struct{} // a slot per search running: the page must not swamp Elasticsearch
}

// maxSearches is how many API requests search at once (a page load makes
// six); others wait up to searchWait for a slot, then get 503.
const maxSearches = 4

var searchWait = 10 * time.Second

// securityHeaders keep the page to its own files: no inline or foreign
// script, no framing by another site, no type sniffing.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
}

//go:embed static
var static embed.FS

// New returns the view; nothing is contacted before a request.
func New(cfg Configuration) (*View, error) {
	if cfg.Searcher == nil {
		return nil, errors.New("webview: no searcher")
	}
	if cfg.TimeField == "" {
		cfg.TimeField = "@timestamp"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &View{cfg: cfg, mux: http.NewServeMux(), searches: make(chan struct{}, maxSearches)}
	files, _ := fs.Sub(static, "static")
	v.mux.Handle("GET /", noListing(http.FileServerFS(files)))
	v.mux.HandleFunc("GET /api/traffic", v.traffic)
	v.mux.HandleFunc("GET /api/top", v.top)
	v.mux.HandleFunc("GET /api/info", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"indices": cfg.Indices, "time_field": cfg.TimeField})
	})
	return v, nil
}

func (v *View) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, val := range securityHeaders {
		w.Header().Set(k, val)
	}
	v.mux.ServeHTTP(w, r)
}

// noListing serves files and the page at /, but no directory listing.
func noListing(files http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// dimensions are the fields a top list may be grouped by; no other name from
// a request reaches Elasticsearch.
var dimensions = map[string]bool{
	"ip_src": true, "ip_dst": true, "port_src": true, "port_dst": true, "ip_proto": true,
	"peer_ip_src": true, "as_src": true, "as_dst": true, "country_ip_src": true, "country_ip_dst": true,
	"tag": true, "tag2": true, "label": true, // a pre_tag_map's
	"post_nat_ip_src": true, "post_nat_ip_dst": true, // NAT's
}

// Sums are bytes and packets.
type Sums struct {
	Bytes   int64 `json:"bytes"`
	Packets int64 `json:"packets"`
}

// Bucket is one step of the traffic chart: its start (Unix milliseconds) and
// how much of it lies in the range (the first and last buckets, aligned to
// the interval, may stick out of it: their rate is over what they cover).
type Bucket struct {
	Time    int64   `json:"t"`
	Seconds float64 `json:"seconds"`
	Sums
}

// Traffic is /api/traffic's answer.
type Traffic struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Interval int64     `json:"interval_seconds"`
	Buckets  []Bucket  `json:"buckets"`
	Total    Sums      `json:"total"`
	Docs     int64     `json:"documents"`
}

// Row is one entry of a top list.
type Row struct {
	Key string `json:"key"`
	Sums
}

// Top is /api/top's answer: the rows by bytes, the total of the range and
// what the rows leave out.
type Top struct {
	By    string    `json:"by"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Rows  []Row     `json:"rows"`
	Total Sums      `json:"total"`
	Other Sums      `json:"other"`
}

func (v *View) traffic(w http.ResponseWriter, r *http.Request) {
	from, to, err := v.timeRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	step := interval(to.Sub(from))
	body := fmt.Sprintf(`{"size":0,"track_total_hits":true,"query":%s,"aggs":{"t":{"date_histogram":{"field":%q,"fixed_interval":"%ds","min_doc_count":0,"extended_bounds":{"min":%d,"max":%d}},"aggs":%s},%s}}`,
		v.rangeQuery(from, to), v.cfg.TimeField, int64(step.Seconds()), from.UnixMilli(), to.UnixMilli()-1, sumAggs, sumAggs[1:len(sumAggs)-1])
	var answer struct {
		Hits struct {
			Total struct{ Value int64 }
		}
		Aggregations struct {
			T struct {
				Buckets []struct {
					Key     int64
					Bytes   sum
					Packets sum
				}
			}
			Bytes, Packets sum
		}
	}
	if !v.search(w, r, body, &answer) {
		return
	}
	out := Traffic{From: from, To: to, Interval: int64(step.Seconds()), Docs: answer.Hits.Total.Value,
		Total: Sums{answer.Aggregations.Bytes.int(), answer.Aggregations.Packets.int()}, Buckets: []Bucket{}}
	for _, b := range answer.Aggregations.T.Buckets {
		startMs := max(b.Key, from.UnixMilli())
		endMs := min(b.Key+step.Milliseconds(), to.UnixMilli())
		covered := time.Duration(endMs-startMs) * time.Millisecond
		out.Buckets = append(out.Buckets, Bucket{Time: b.Key, Seconds: covered.Seconds(), Sums: Sums{b.Bytes.int(), b.Packets.int()}})
	}
	writeJSON(w, http.StatusOK, out)
}

func (v *View) top(w http.ResponseWriter, r *http.Request) {
	from, to, err := v.timeRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	by := r.URL.Query().Get("by")
	if !dimensions[by] {
		writeError(w, http.StatusBadRequest, fmt.Errorf("by=%q: expected one of ip_src, ip_dst, port_src, port_dst, ip_proto, peer_ip_src, as_src, as_dst, country_ip_src, country_ip_dst, tag, tag2, label, post_nat_ip_src, post_nat_ip_dst", by))
		return
	}
	size := 10
	if s := r.URL.Query().Get("size"); s != "" {
		if size, err = strconv.Atoi(s); err != nil || size < 1 || size > 100 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("size=%q: expected 1 to 100", s))
			return
		}
	}
	// each shard proposes more candidates than shown: ordered by a sum, a
	// top list over daily indices is otherwise easily wrong
	terms, shard := size, max(10*size, 200)
	if by == "ip_proto" {
		// pmacct writes a protocol as its name or, with num_protos, its
		// number: every bucket is asked for (256 numbers and their names at
		// most) and "6" and "tcp" are summed into one row below
		terms, shard = 512, 512
	}
	body := fmt.Sprintf(`{"size":0,"query":%s,"aggs":{"top":{"terms":{"field":%q,"size":%d,"shard_size":%d,"order":{"bytes":"desc"}},"aggs":%s},%s}}`,
		v.rangeQuery(from, to), by, terms, shard, sumAggs, sumAggs[1:len(sumAggs)-1])
	var answer struct {
		Aggregations struct {
			Top struct {
				Buckets []struct {
					Key     json.RawMessage
					Bytes   sum
					Packets sum
				}
			}
			Bytes, Packets sum
		}
	}
	if !v.search(w, r, body, &answer) {
		return
	}
	out := Top{By: by, From: from, To: to, Rows: []Row{},
		Total: Sums{answer.Aggregations.Bytes.int(), answer.Aggregations.Packets.int()}}
	out.Other = out.Total
	index := map[string]int{} // row of a key
	for _, b := range answer.Aggregations.Top.Buckets {
		key := keyString(b.Key)
		if by == "ip_proto" {
			key = protoName(key)
		}
		i, ok := index[key]
		if !ok {
			i = len(out.Rows)
			index[key] = i
			out.Rows = append(out.Rows, Row{Key: key})
		}
		out.Rows[i].Bytes += b.Bytes.int()
		out.Rows[i].Packets += b.Packets.int()
	}
	slices.SortStableFunc(out.Rows, func(a, b Row) int { return cmp.Compare(b.Bytes, a.Bytes) })
	out.Rows = out.Rows[:min(len(out.Rows), size)]
	for _, row := range out.Rows {
		out.Other.Bytes -= row.Bytes
		out.Other.Packets -= row.Packets
	}
	writeJSON(w, http.StatusOK, out)
}

// protoName is the name pmacct gives a protocol number ("6": "tcp"); names,
// and numbers without one, are kept.
func protoName(key string) string {
	if n, err := strconv.ParseUint(key, 10, 8); err == nil {
		if name := flow.ProtoName(uint8(n)); name != "" {
			return name
		}
	}
	return key
}

const sumAggs = `{"bytes":{"sum":{"field":"bytes"}},"packets":{"sum":{"field":"packets"}}}`

// sum is a sum aggregation's answer: a double, exact for counts below 2^53.
type sum struct{ Value float64 }

func (s sum) int() int64 { return int64(math.Round(s.Value)) }

// keyString is a terms key as text: addresses and names as they are,
// numbers (ports, protocols, AS numbers) without a fraction.
func keyString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSuffix(string(raw), ".0")
}

func (v *View) rangeQuery(from, to time.Time) string {
	return fmt.Sprintf(`{"range":{%q:{"gte":%q,"lt":%q,"format":"strict_date_optional_time"}}}`,
		v.cfg.TimeField, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
}

// search runs body and decodes the answer into out; on failure it has
// answered the request (502 with Elasticsearch's reason).
func (v *View) search(w http.ResponseWriter, r *http.Request, body string, out any) bool {
	if !v.searchSlot(w, r) {
		return false
	}
	defer func() { <-v.searches }()
	_, answer, err := v.cfg.Searcher.Search(r.Context(), []byte(body))
	if err == nil {
		err = json.Unmarshal(answer, out)
	}
	if err != nil {
		v.cfg.Logger.Warn("web view: search failed", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusBadGateway, err)
		return false
	}
	return true
}

// searchSlot waits up to searchWait for one of the maxSearches slots; on
// failure it has answered the request (503).
func (v *View) searchSlot(w http.ResponseWriter, r *http.Request) bool {
	t := time.NewTimer(searchWait)
	defer t.Stop()
	select {
	case v.searches <- struct{}{}:
		return true
	case <-r.Context().Done():
		return false
	case <-t.C:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%d searches are running; try again", maxSearches))
		return false
	}
}

// timeRange reads from and to (RFC 3339, or now, now-15m, now-6h, now-7d);
// the default is the last hour.
func (v *View) timeRange(r *http.Request) (from, to time.Time, err error) {
	now := v.cfg.Now()
	q := r.URL.Query()
	if from, err = parseTime(q.Get("from"), now, now.Add(-time.Hour)); err != nil {
		return from, to, fmt.Errorf("from: %w", err)
	}
	if to, err = parseTime(q.Get("to"), now, now); err != nil {
		return from, to, fmt.Errorf("to: %w", err)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("from (%s) is not before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if to.Sub(from) > 400*24*time.Hour {
		return from, to, errors.New("the range is longer than 400 days")
	}
	return from, to, nil
}

func parseTime(s string, now, def time.Time) (time.Time, error) {
	switch {
	case s == "":
		return def, nil
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "now-"):
		if len(s) < len("now-1s") {
			return time.Time{}, fmt.Errorf("%q: expected now-N followed by s, m, h or d", s)
		}
		n, err := strconv.Atoi(s[4 : len(s)-1])
		unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
		// past 1000 days the range check refuses it anyway; the bound keeps
		// n*unit from overflowing
		if err != nil || unit == 0 || n < 1 || time.Duration(n) > 1000*24*time.Hour/unit {
			return time.Time{}, fmt.Errorf("%q: expected now-N followed by s, m, h or d", s)
		}
		return now.Add(-time.Duration(n) * unit), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: expected RFC 3339 (2026-11-24T08:00:00Z) or now-1h", s)
	}
	return t, nil
}

// steps are the chart's bucket lengths: the first that gives at most 150
// buckets. None is under a minute: flows come in bins of a minute or more
// (pmacct's history, refresh), and shorter buckets would show their teeth.
var steps = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

func interval(span time.Duration) time.Duration {
	for _, s := range steps {
		if span/s <= 150 {
			return s
		}
	}
	return steps[len(steps)-1] * time.Duration(math.Ceil(float64(span/steps[len(steps)-1])/150))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
