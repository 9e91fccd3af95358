package elasticsearch

// An in-process fake of Elasticsearch, only for what a real one cannot be made
// to show on demand: overload (429 for a request, or per document), 503, a
// connection cut in the middle of an answer, a server that never recovers, a
// slow server, and the Authorization header.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/internal/testwatch"
)

// fakeES stores documents by id and answers bulk requests, asking script what
// to do with each request (its number from 0) first.
type fakeES struct {
	t      *testing.T
	mu     sync.Mutex
	docs   map[string]json.RawMessage // _id -> source
	autoID int
	bulks  int
	auth   []string
	// script decides for bulk request n: "" (normal), "403", "429", "503", "drop"
	// (store, then cut the answer), "hang" (wait for release), or "items429:K"
	// (refuse every K-th document with es_rejected_execution_exception).
	script  func(n int) string
	release chan struct{}
}

func newFakeES(t *testing.T, script func(int) string) (*fakeES, *httptest.Server) {
	f := &fakeES{t: t, docs: map[string]json.RawMessage{}, script: script, release: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
	})
	return f, srv
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/":
		fmt.Fprint(w, `{"version":{"number":"8.19.21"}}`)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_index_template/"):
		fmt.Fprint(w, `{"acknowledged":true}`)
	case r.Method == http.MethodPost && r.URL.Path == "/_bulk":
		f.bulk(w, r)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"type":"not_found","reason":"fake"},"status":404}`)
	}
}

func (f *fakeES) bulk(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	n := f.bulks
	f.bulks++
	f.mu.Unlock()
	action := ""
	if f.script != nil {
		action = f.script(n)
	}
	switch action {
	case "429":
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"},"status":429}`)
		return
	case "403":
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":{"type":"security_exception","reason":"action [indices:data/write/bulk] is unauthorized for user [flowdex]"},"status":403}`)
		return
	case "503":
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"},"status":503}`)
		return
	case "hang":
		select {
		case <-f.release:
		case <-r.Context().Done():
			return
		}
	}
	every := 0
	if k, ok := strings.CutPrefix(action, "items429:"); ok {
		every, _ = strconv.Atoi(k)
	}

	var items []string
	errs := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for i := 0; sc.Scan(); i++ {
		var a map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			f.t.Errorf("fake: bad action line %q: %v", sc.Bytes(), err)
			return
		}
		if !sc.Scan() {
			f.t.Errorf("fake: action without a document")
			return
		}
		src := json.RawMessage(append([]byte(nil), sc.Bytes()...))
		op, meta := "", a["create"]
		if _, ok := a["create"]; ok {
			op = "create"
		} else {
			op, meta = "index", a["index"]
		}
		if every > 0 && i%every == 0 {
			errs = true
			items = append(items, fmt.Sprintf(`{%q:{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of primary operation [queue capacity = 200]"}}}`, op))
			continue
		}
		f.mu.Lock()
		id := meta.ID
		if id == "" {
			f.autoID++
			id = "auto-" + strconv.Itoa(f.autoID)
		}
		_, exists := f.docs[id]
		if op == "create" && exists {
			errs = true
			items = append(items, fmt.Sprintf(`{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[%s]: version conflict, document already exists (current version [1])"}}}`, id))
		} else {
			f.docs[id] = src
			items = append(items, fmt.Sprintf(`{%q:{"status":201}}`, op))
		}
		f.mu.Unlock()
	}
	answer := fmt.Sprintf(`{"errors":%t,"items":[%s]}`, errs, strings.Join(items, ","))
	if action == "drop" {
		// the documents are stored; the client sees the connection cut mid-answer
		hj, ok := w.(http.Hijacker)
		if !ok {
			f.t.Error("fake: cannot hijack")
			return
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			f.t.Error(err)
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Elastic-Product: Elasticsearch\r\nContent-Length: %d\r\n\r\n%s",
			len(answer), answer[:len(answer)/2])
		buf.Flush()
		conn.Close()
		return
	}
	fmt.Fprint(w, answer)
}

func (f *fakeES) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.docs)
}

// fakeConfig is a configuration for srv with fast retries.
func fakeConfig(url string) Configuration {
	cfg := DefaultConfiguration()
	cfg.URLs = []string{url}
	cfg.BackoffMin = time.Millisecond
	cfg.BackoffMax = 5 * time.Millisecond
	cfg.FlushDocs = 10
	return cfg
}

func startSink(t *testing.T, cfg Configuration) (*Sink, *testwatch.Log) {
	t.Helper()
	var logs testwatch.Log
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, &logs
}

func pmacctDoc(doc *document.Document, i int) {
	doc.Reset()
	doc.SetString("event_type", "purge")
	doc.SetString("ip_src", fmt.Sprintf("192.0.2.%d", i%250+1))
	doc.SetString("ip_dst", "198.51.100.7")
	doc.SetInt("port_src", int64(10000+i))
	doc.SetInt("port_dst", 443)
	doc.SetString("ip_proto", "tcp")
	doc.SetString("stamp_inserted", "2024-01-01 00:00:00")
	doc.SetInt("packets", 7)
	doc.SetInt("bytes", int64(430+i))
}

// docWriter writes documents with ids id-0, id-1… to a started sink.
type docWriter struct {
	s    *Sink
	doc  document.Document
	next int // documents written
}

// write writes n more documents, flushes, and waits until each is indexed,
// a duplicate, failed or dead-lettered.
func (w *docWriter) write(t *testing.T, n int) {
	t.Helper()
	for range n {
		pmacctDoc(&w.doc, w.next)
		if err := w.s.Write(context.Background(), &w.doc, "id-"+strconv.Itoa(w.next), recordTime(&w.doc, time.UTC)); err != nil {
			t.Fatal(err)
		}
		w.next++
	}
	if err := w.s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the documents to be indexed", 10*time.Second, func() bool {
		st := w.s.Stats()
		return st.Indexed+st.Duplicates+st.Failed+st.DeadLettered == uint64(w.next)
	})
}

// stop stops the sink and checks that every document written was indexed.
func (w *docWriter) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := w.s.Stats(); st.Written != uint64(w.next) || st.Indexed != uint64(w.next) || st.Failed != 0 || st.DeadLettered != 0 {
		t.Errorf("stats %+v: want all %d indexed", st, w.next)
	}
}

// writeDocs writes n documents with ids id-0… (or none) and stops the sink.
func writeDocs(t *testing.T, s *Sink, n int, ids bool) {
	t.Helper()
	var doc document.Document
	for i := range n {
		pmacctDoc(&doc, i)
		id := ""
		if ids {
			id = "id-" + strconv.Itoa(i)
		}
		if err := s.Write(context.Background(), &doc, id, recordTime(&doc, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFakeRetries(t *testing.T) {
	const n = 100 // 10 bulk requests of 10
	tests := []struct {
		name   string
		script func(int) string
		check  func(t *testing.T, st Stats)
	}{
		{"whole request 429 then success", func(n int) string {
			if n < 2 {
				return "429"
			}
			return ""
		}, func(t *testing.T, st Stats) {
			if st.BulkErrors != 2 || st.Retried != 20 {
				t.Errorf("bulk errors %d, retried %d: want 2 and 20", st.BulkErrors, st.Retried)
			}
		}},
		{"per-item 429 then success", func(n int) string {
			if n%2 == 0 {
				return "items429:3"
			}
			return ""
		}, func(t *testing.T, st Stats) {
			if st.BulkErrors != 0 || st.Retried == 0 {
				t.Errorf("bulk errors %d, retried %d: want 0 and > 0", st.BulkErrors, st.Retried)
			}
		}},
		{"503 then success", func(n int) string {
			if n%3 == 0 && n < 9 {
				return "503"
			}
			return ""
		}, func(t *testing.T, st Stats) {
			if st.BulkErrors != 3 || st.Retried != 30 {
				t.Errorf("bulk errors %d, retried %d: want 3 and 30", st.BulkErrors, st.Retried)
			}
		}},
		{"connection cut mid-answer", func(n int) string {
			if n == 0 || n == 3 {
				return "drop"
			}
			return ""
		}, func(t *testing.T, st Stats) {
			// the cut requests were applied: their retry finds the documents there
			if st.BulkErrors != 2 || st.Duplicates != 20 || st.Indexed != n-20 {
				t.Errorf("bulk errors %d, duplicates %d, indexed %d: want 2, 20, %d", st.BulkErrors, st.Duplicates, st.Indexed, n-20)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeES(t, tt.script)
			cfg := fakeConfig(srv.URL)
			cfg.Workers = 1 // the script numbers requests in order
			s, _ := startSink(t, cfg)
			writeDocs(t, s, n, true)
			st := s.Stats()
			if st.Written != n || st.Indexed+st.Duplicates != n || st.Failed != 0 || st.DeadLettered != 0 {
				t.Errorf("stats %+v: want all %d indexed or duplicates", st, n)
			}
			if got := f.count(); got != n {
				t.Errorf("the fake holds %d documents, want %d", got, n)
			}
			tt.check(t, st)
		})
	}
}

func TestFakeGiveUp(t *testing.T) {
	always := func(action string) func(int) string { return func(int) string { return action } }
	tests := []struct {
		name       string
		script     func(int) string
		status     int
		errType    string
		requests   uint64
		bulkErrors uint64
	}{
		{"503 for ever", always("503"), 503, "cluster_block_exception", 3, 3},
		{"per-item 429 for ever", always("items429:1"), 429, "es_rejected_execution_exception", 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newFakeES(t, tt.script)
			cfg := fakeConfig(srv.URL)
			cfg.MaxRetries = 2
			cfg.DeadLetterFile = filepath.Join(t.TempDir(), "dead.ndjson")
			s, logs := startSink(t, cfg)
			writeDocs(t, s, 5, true)
			st := s.Stats()
			if st.DeadLettered != 5 || st.Indexed != 0 || st.Requests != tt.requests || st.BulkErrors != tt.bulkErrors || st.Retried != 10 {
				t.Errorf("stats %+v", st)
			}
			recs := readDeadLetters(t, cfg.DeadLetterFile)
			if len(recs) != 5 {
				t.Fatalf("%d dead letters, want 5", len(recs))
			}
			for i, r := range recs {
				if r.Status != tt.status || r.Error.Type != tt.errType || r.ID != "id-"+strconv.Itoa(i) ||
					r.Index != "flowdex-2024.01.01" || r.Document["@timestamp"] != "2024-01-01T00:00:00.000Z" {
					t.Errorf("dead letter %d: %+v", i, r)
				}
			}
			if !strings.Contains(logs.String(), "document not delivered") {
				t.Errorf("no log of the lost documents:\n%s", logs)
			}
		})
	}
}

type deadLetterRecord struct {
	Time   string `json:"time"`
	Index  string `json:"index"`
	ID     string `json:"id"`
	Status int    `json:"status"`
	Error  struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
	Document map[string]any `json:"document"`
}

func readDeadLetters(t *testing.T, path string) []deadLetterRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []deadLetterRecord
	for line := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
		var r deadLetterRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("dead letter %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// TestFakeStopDeadline: a server that never answers; Stop's deadline
// abandons the requests and dead-letters their documents.
func TestFakeStopDeadline(t *testing.T) {
	_, srv := newFakeES(t, func(int) string { return "hang" })
	cfg := fakeConfig(srv.URL)
	cfg.DeadLetterFile = filepath.Join(t.TempDir(), "dead.ndjson")
	s, _ := startSink(t, cfg)
	var doc document.Document
	for i := range 25 {
		pmacctDoc(&doc, i)
		if err := s.Write(context.Background(), &doc, "", recordTime(&doc, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop: %v, want a deadline error", err)
	}
	st := s.Stats()
	if st.DeadLettered != 25 || st.Written != 25 {
		t.Errorf("stats %+v", st)
	}
	for _, r := range readDeadLetters(t, cfg.DeadLetterFile) {
		if r.Error.Type != "stopped" || r.ID != "" {
			t.Errorf("dead letter %+v", r)
		}
	}
	if err := s.Write(context.Background(), &doc, "", recordTime(&doc, time.UTC)); !errors.Is(err, ErrStopped) {
		t.Errorf("Write after Stop: %v", err)
	}
}

// TestFakeStopGrace: once the context of Start ends (SIGTERM), Stop waits
// StopGrace for a server that never answers, not its retries nor its own
// context: what is left is spooled, or dead-lettered without a spool.
func TestFakeStopGrace(t *testing.T) {
	for _, spool := range []bool{false, true} {
		t.Run(fmt.Sprintf("spool=%v", spool), func(t *testing.T) {
			f, srv := newFakeES(t, func(int) string { return "hang" })
			cfg := fakeConfig(srv.URL)
			cfg.RequestTimeout.Duration = time.Hour
			cfg.StopGrace.Duration = 100 * time.Millisecond
			cfg.DeadLetterFile = filepath.Join(t.TempDir(), "dead.ndjson")
			if spool {
				cfg.SpoolDir = filepath.Join(t.TempDir(), "spool")
			}
			s, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			daemon, signal := context.WithCancel(context.Background())
			if err := s.Start(daemon); err != nil {
				t.Fatal(err)
			}
			var doc document.Document
			for i := range 25 { // two requests hang, the third waits in memory
				pmacctDoc(&doc, i)
				if err := s.Write(context.Background(), &doc, "id-"+strconv.Itoa(i), recordTime(&doc, time.UTC)); err != nil {
					t.Fatal(err)
				}
			}
			testwatch.WaitFor(t, "two requests in flight", 10*time.Second, func() bool {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.bulks == 2
			})
			signal()
			start := time.Now()
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Stop took %s; stop_grace is 100ms", took)
			}
			st := s.Stats()
			if spool && (st.Spooled != 25 || st.SpoolDocs != 25 || st.DeadLettered != 0) ||
				!spool && (st.DeadLettered != 25 || st.Spooled != 0) {
				t.Errorf("stats %+v", st)
			}
			if !spool {
				for _, r := range readDeadLetters(t, cfg.DeadLetterFile) {
					if r.Error.Type != "stopped" || !strings.Contains(r.Error.Reason, "stop_grace") {
						t.Errorf("dead letter %+v", r)
					}
				}
			}
		})
	}
}

// TestFakeSync: Sync returns once every document written before it is
// settled, not before: here the server holds the requests until released.
func TestFakeSync(t *testing.T) {
	f, srv := newFakeES(t, func(n int) string {
		if n < 3 {
			return "hang"
		}
		return ""
	})
	s, _ := startSink(t, fakeConfig(srv.URL))
	var doc document.Document
	for i := range 25 { // three requests: two hang, the third waits for a worker
		pmacctDoc(&doc, i)
		if err := s.Write(context.Background(), &doc, "id-"+strconv.Itoa(i), recordTime(&doc, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync with every request held: %v", err)
	}
	close(f.release)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Indexed+st.Duplicates != 25 || st.Queued != 0 {
		t.Errorf("after Sync: %+v", st)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("Sync after Stop: %v", err)
	}
}

// TestFakeSyncTo: SyncTo waits for the documents up to its mark only, so
// that a consumer commits one batch while the next is in flight; the tail
// of the marked documents, still buffered, is sent for it.
func TestFakeSyncTo(t *testing.T) {
	f, srv := newFakeES(t, func(n int) string {
		if n >= 2 {
			return "hang"
		}
		return ""
	})
	s, _ := startSink(t, fakeConfig(srv.URL))
	var doc document.Document
	write := func(from, to int) {
		for i := from; i < to; i++ {
			pmacctDoc(&doc, i)
			if err := s.Write(context.Background(), &doc, "id-"+strconv.Itoa(i), recordTime(&doc, time.UTC)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 15) // a request of 10, and 5 buffered
	mark := s.Mark()
	if mark != 15 {
		t.Fatalf("Mark %d after 15 documents", mark)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.SyncTo(ctx, mark); err != nil { // sends the 5 as the second request
		t.Fatal(err)
	}
	if st := s.Stats(); st.Indexed != 15 {
		t.Fatalf("SyncTo returned with %d of the 15 documents indexed", st.Indexed)
	}
	write(15, 25) // the third request hangs
	if err := s.SyncTo(ctx, mark); err != nil {
		t.Fatalf("SyncTo of settled documents, later ones held: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := s.SyncTo(short, s.Mark()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SyncTo of held documents: %v", err)
	}
	close(f.release)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFakeStartHangs: a server that accepts connections and never answers
// does not hold Start up when a spool can take the documents; they wait
// there, behind the setup still to do.
func TestFakeStartHangs(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cfg := fakeConfig(srv.URL)
	cfg.SpoolDir = filepath.Join(t.TempDir(), "spool")
	var logs testwatch.Log
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Start took %s with Elasticsearch not answering; request_timeout is %s", took, cfg.RequestTimeout)
	}
	var doc document.Document
	for i := range 25 {
		pmacctDoc(&doc, i)
		if err := s.Write(context.Background(), &doc, "id-"+strconv.Itoa(i), recordTime(&doc, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the documents to be spooled", 10*time.Second, func() bool { return s.Stats().SpoolDocs == 25 })
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Requests != 0 || st.Spooled != 25 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "not ready at start; spooling") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestFakeBackpressure: with every body in flight, Write blocks until its
// context ends.
func TestFakeBackpressure(t *testing.T) {
	f, srv := newFakeES(t, func(int) string { return "hang" })
	cfg := fakeConfig(srv.URL)
	cfg.Workers, cfg.FlushDocs = 1, 1 // two bodies: one in flight, one queued
	s, _ := startSink(t, cfg)
	var doc document.Document
	pmacctDoc(&doc, 0)
	for i := range 2 {
		if err := s.Write(context.Background(), &doc, "id-"+strconv.Itoa(i), recordTime(&doc, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Write(ctx, &doc, "id-2", recordTime(&doc, time.UTC)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write with every body in flight: %v, want to block until the deadline", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("Write returned after %s", d)
	}
	close(f.release)
	if err := s.Write(context.Background(), &doc, "id-2", recordTime(&doc, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written != 3 || st.Indexed != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestFakeFlushTriggers: by count, by bytes, by interval. The count and size
// triggers are checked on a sink whose interval never comes: a 50 ms ticker
// beside them flushed between two writes whenever the writes were slower
// than the ticker (a loaded machine) and made an extra request. The
// interval has a sink of its own.
func TestFakeFlushTriggers(t *testing.T) {
	f, srv := newFakeES(t, nil)
	cfg := fakeConfig(srv.URL)
	cfg.FlushDocs, cfg.FlushBytes, cfg.FlushInterval.Duration = 4, 1200, time.Hour
	s, _ := startSink(t, cfg)
	var doc document.Document
	pmacctDoc(&doc, 0)
	write := func(s *Sink, n int) {
		for range n {
			if err := s.Write(context.Background(), &doc, "", recordTime(&doc, time.UTC)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor := func(s *Sink, what string, cond func(Stats) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(s.Stats()); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timeout waiting for %s: stats %+v", what, s.Stats())
			}
		}
	}
	write(s, 4) // count
	waitFor(s, "a flush by count", func(st Stats) bool { return st.Indexed == 4 })
	if r := s.Stats().Requests; r != 1 {
		t.Errorf("%d requests after 4 documents, want 1", r)
	}
	big := strings.Repeat("x", 700) // two do not fit in 1200 bytes
	doc.SetString("label", big)
	before := s.Stats().Requests
	write(s, 3)
	// the first two go when the next does not fit; the third waits
	waitFor(s, "flushes by size", func(st Stats) bool { return st.Indexed == 6 })
	if r := s.Stats().Requests - before; r != 2 {
		t.Errorf("%d requests for 3 documents of 700+ bytes with 1200 bytes a request, want 2 and the third waiting", r)
	}
	doc.SetString("label", strings.Repeat("y", 5000)) // larger than a request: sent alone, after the third
	write(s, 1)
	waitFor(s, "the third and the large document", func(st Stats) bool { return st.Indexed == 8 })
	if r := s.Stats().Requests - before; r != 4 {
		t.Errorf("%d requests for the 4 large documents, want 4", r)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	cfg.FlushInterval.Duration = 50 * time.Millisecond
	s, _ = startSink(t, cfg)
	pmacctDoc(&doc, 0)
	write(s, 1) // interval
	waitFor(s, "a flush by interval", func(st Stats) bool { return st.Indexed == 1 })
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Indexed != 1 || st.Requests != 1 || f.count() != 9 {
		t.Errorf("stats %+v, fake %d, want 9 documents in all", st, f.count())
	}
}

// TestFakeAuth: basic credentials reach the server; the password is never
// logged, even when requests fail.
func TestFakeAuth(t *testing.T) {
	const password = "s3cr3t-Pa55"
	f, srv := newFakeES(t, func(n int) string {
		if n == 0 {
			return "503"
		}
		return ""
	})
	cfg := fakeConfig(srv.URL)
	cfg.Username, cfg.Password = "flowdex", password
	s, logs := startSink(t, cfg)
	s.logger.Info("configuration", "cfg", cfg)
	writeDocs(t, s, 10, true)
	want := "Basic " + "Zmxvd2RleDpzM2NyM3QtUGE1NQ==" // base64("flowdex:s3cr3t-Pa55")
	f.mu.Lock()
	for _, a := range f.auth {
		if a != want {
			t.Errorf("Authorization %q, want %q", a, want)
		}
	}
	f.mu.Unlock()
	if strings.Contains(logs.String(), password) {
		t.Errorf("the password is in the log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "password=REDACTED") {
		t.Errorf("the configuration is not logged redacted:\n%s", logs)
	}
}

// TestFakeNotElasticsearch: a server without the product header is refused.
func TestFakeNotElasticsearch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"version":{"number":"2.11.0","distribution":"opensearch"}}`)
	}))
	defer srv.Close()
	s, err := New(fakeConfig(srv.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Errorf("Start: %v, want the product check to fail", err)
	}
}

// TestFakeNoDeadLetterFile: without a dead-letter file the documents given up
// are counted as failed, and a thousand of them make two log lines, not a
// thousand.
func TestFakeNoDeadLetterFile(t *testing.T) {
	_, srv := newFakeES(t, func(int) string { return "items429:1" })
	cfg := fakeConfig(srv.URL)
	cfg.MaxRetries = 0
	cfg.FlushDocs = 100
	s, logs := startSink(t, cfg)
	writeDocs(t, s, 1000, true)
	if st := s.Stats(); st.Failed != 1000 || st.DeadLettered != 0 || st.Requests != 10 || st.Retried != 0 {
		t.Errorf("stats %+v", st)
	}
	out := logs.String()
	if n := strings.Count(out, "document not delivered"); n != 1 {
		t.Errorf("%d log lines for the lost documents, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "more documents not delivered than logged") || !strings.Contains(out, "not_logged=999") {
		t.Errorf("no summary of the lost documents at Stop:\n%s", out)
	}
	if !strings.Contains(out, "error_type=es_rejected_execution_exception") || !strings.Contains(out, "id=id-") {
		t.Errorf("the log line lacks the details:\n%s", out)
	}
}

// An API key goes in "Authorization: ApiKey ..." on every request and is never
// logged. (The fake, because the test distribution of Elasticsearch cannot
// make API keys: its .security index needs the absent analysis-common module.)
// A key and a password together are refused.
func TestFakeAPIKey(t *testing.T) {
	const key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
	f, srv := newFakeES(t, func(int) string { return "" })
	cfg := fakeConfig(srv.URL)
	cfg.APIKey = key
	s, logs := startSink(t, cfg)
	s.logger.Info("configuration", "cfg", cfg)
	writeDocs(t, s, 10, true)
	f.mu.Lock()
	if len(f.auth) == 0 {
		t.Error("no request seen")
	}
	for _, a := range f.auth {
		// the scheme is case-insensitive: go-elasticsearch writes "APIKey"
		if scheme, value, _ := strings.Cut(a, " "); !strings.EqualFold(scheme, "ApiKey") || value != key {
			t.Errorf("Authorization %q, want the API key", a)
		}
	}
	f.mu.Unlock()
	if strings.Contains(logs.String(), key) || !strings.Contains(logs.String(), "api_key=REDACTED") {
		t.Errorf("the key is logged, or not shown as redacted:\n%s", logs)
	}
	cfg.Username, cfg.Password = "flowdex", "pw"
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "one way to authenticate") {
		t.Errorf("key and password together: %v", err)
	}
}
