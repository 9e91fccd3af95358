package elasticsearch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// cutProxy passes requests to the real Elasticsearch at target, and cuts the
// connection of those cut chooses after Elasticsearch has answered them: a
// network that breaks while the answer travels, which no server can be made
// to show.
func cutProxy(t *testing.T, target string, cut func(*http.Request) bool) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(res *http.Response) error {
		if cut(res.Request) {
			return http.ErrAbortHandler // read, then dropped: the client sees the connection close
		}
		return nil
	}
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { panic(http.ErrAbortHandler) }
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Every bulk answer is lost on the way: the documents are indexed, and the
// sink, which never hears so, gives up after its retries. It then asks
// which are there: those count as duplicates (as a retry's 409 would have
// counted them), not as dead-lettered. When that question goes unanswered
// too, they are dead-lettered and counted as unconfirmed.
func TestRealCutRequest(t *testing.T) {
	es := estest.URL(t)
	for _, checked := range []bool{true, false} {
		t.Run("checked="+strconv.FormatBool(checked), func(t *testing.T) {
			proxy := cutProxy(t, es, func(r *http.Request) bool {
				return r.URL.Path == "/_bulk" || !checked && r.URL.Path == "/_mget"
			})
			cfg, prefix := realConfig(t, proxy)
			cfg.Replicas = 0
			cfg.MaxRetries = 1
			cfg.FlushDocs = 10
			s, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			const n = 30
			var doc document.Document
			for i := range n {
				pmacctDoc(&doc, i)
				if err := s.Write(context.Background(), &doc, "cut-"+strconv.Itoa(i), recordTime(&doc, time.UTC)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := len(estest.Docs(t, es, prefix+"-*")); got != n {
				t.Fatalf("Elasticsearch holds %d documents, want %d: the proxy did not pass the requests on?", got, n)
			}
			st := s.Stats()
			if checked && (st.Duplicates != n || st.DeadLettered != 0 || st.Unconfirmed != 0) ||
				!checked && (st.Duplicates != 0 || st.DeadLettered != n || st.Unconfirmed != n) {
				t.Errorf("duplicates %d, dead-lettered %d, unconfirmed %d of %d documents Elasticsearch holds",
					st.Duplicates, st.DeadLettered, st.Unconfirmed, n)
			}
			if st.DeadLettered > 0 && len(readDeadLetters(t, cfg.DeadLetterFile)) != int(st.DeadLettered) {
				t.Errorf("the dead-letter file does not hold the %d documents counted", st.DeadLettered)
			}
		})
	}
}
