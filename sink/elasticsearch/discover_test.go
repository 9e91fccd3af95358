package elasticsearch

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// GET /_nodes/http as Elasticsearch answers it (filtered as discoverNodes
// asks), read into the URLs requests can go to.
func TestParseNodes(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // URLs, or the error
	}{
		{"cluster", `{"nodes":{
			"b":{"name":"es-2","roles":["data","ingest","master"],"http":{"publish_address":"127.0.0.1:9202"}},
			"a":{"name":"es-1","roles":["data_hot","data_content","master","remote_cluster_client"],"http":{"publish_address":"127.0.0.1:9201"}},
			"m":{"name":"es-m","roles":["master"],"http":{"publish_address":"127.0.0.1:9203"}},
			"v":{"name":"es-v","roles":["master","voting_only"],"http":{"publish_address":"127.0.0.1:9204"}},
			"c":{"name":"es-c","roles":[],"http":{"publish_address":"[::1]:9205"}},
			"h":{"name":"es-h","roles":["data"],"http":{"publish_address":"es-h.example.net/192.0.2.7:9200"}},
			"x":{"name":"es-x","roles":["data"]}}}`,
			"https://127.0.0.1:9201 https://127.0.0.1:9202 https://[::1]:9205 https://es-h.example.net:9200"},
		{"only masters", `{"nodes":{"m":{"name":"es-m","roles":["master"],"http":{"publish_address":"127.0.0.1:9203"}}}}`,
			"GET /_nodes/http named no node to send requests to (1 nodes, 1 of them dedicated masters)"},
		{"no node", `{"nodes":{}}`, "GET /_nodes/http named no node to send requests to (0 nodes, 0 of them dedicated masters)"},
		{"not JSON", `<html>proxy error</html>`, "reading GET /_nodes/http: invalid character '<' looking for beginning of value"},
		{"bad address", `{"nodes":{"a":{"name":"es-1","roles":["data"],"http":{"publish_address":"127.0.0.1"}}}}`,
			`GET /_nodes/http: node es-1 (a): publish address "127.0.0.1": address 127.0.0.1: missing port in address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			urls, err := parseNodes([]byte(tt.body), "https")
			var got []string
			for _, u := range urls {
				got = append(got, u.String())
			}
			s := strings.Join(got, " ")
			if err != nil {
				s = err.Error()
			}
			if s != tt.want {
				t.Errorf("got  %s\nwant %s", s, tt.want)
			}
		})
	}
}

// nodesFake answers GET /_nodes/http with body (status when not 0), and
// passes other requests to next.
type nodesFake struct {
	next  http.Handler
	state *nodesAnswer
}

type nodesAnswer struct {
	mu     sync.Mutex
	body   string
	status int
	asked  int
}

func (a *nodesAnswer) set(status int, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.body = status, body
}

func (n nodesFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/_nodes/http" {
		n.next.ServeHTTP(w, r)
		return
	}
	n.state.mu.Lock()
	n.state.asked++
	status, body := n.state.status, n.state.body
	n.state.mu.Unlock()
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	if status != 0 {
		w.WriteHeader(status)
	}
	fmt.Fprint(w, body)
}

// Node discovery against three fake nodes, one configured: the start's
// discovery adds the other two, which then take requests; a discovery that
// fails (no JSON, no node, only dedicated masters, errors from every node)
// is counted and changes nothing, except that the configured node comes
// back if a discovery had removed it; a discovery that names fewer nodes
// removes the others, which get no more requests.
func TestFakeDiscovery(t *testing.T) {
	var answer nodesAnswer
	var fakes []*fakeES
	var addrs []string
	for range 3 {
		f, _ := newFakeES(t, nil)
		srv := httptest.NewServer(nodesFake{next: f, state: &answer})
		t.Cleanup(srv.Close)
		fakes = append(fakes, f)
		addrs = append(addrs, strings.TrimPrefix(srv.URL, "http://"))
	}
	nodes := func(which ...int) string {
		var b strings.Builder
		for i, n := range which {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"id%d":{"name":"es-%d","roles":["data","ingest","master"],"http":{"publish_address":%q}}`, n, n, addrs[n])
		}
		return `{"nodes":{` + b.String() + `}}`
	}
	answer.set(0, nodes(0, 1, 2))

	cfg := fakeConfig("http://" + addrs[0])
	cfg.DiscoverNodes = true
	cfg.DiscoverInterval.Duration = time.Hour // the test runs the next ones itself
	var logs testwatch.Log
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the start's discovery", 10*time.Second, func() bool { return s.Stats().Discoveries == 1 })
	w := &docWriter{s: s}
	// write sends n documents and waits until they are indexed; it returns
	// how many each node got
	write := func(n int) []int {
		t.Helper()
		got := make([]int, len(fakes))
		for i, f := range fakes {
			got[i] = -f.count()
		}
		w.write(t, n)
		for i, f := range fakes {
			got[i] += f.count()
		}
		return got
	}
	// check runs a discovery and checks the counters and the pool's nodes
	check := func(what string, discoveries, failures uint64, want ...int) {
		t.Helper()
		s.discover(context.Background())
		st := s.Stats()
		urls := s.client.pool.all()
		var got []string
		for _, u := range urls {
			got = append(got, u.Host)
		}
		var wantHosts []string
		for _, n := range want {
			wantHosts = append(wantHosts, addrs[n])
		}
		if st.Discoveries != discoveries || st.DiscoveryFailures != failures || st.Nodes != len(want) || strings.Join(got, " ") != strings.Join(wantHosts, " ") {
			t.Errorf("%s: %d discoveries, %d failed, nodes %v; want %d, %d, %v\n%s", what, st.Discoveries, st.DiscoveryFailures, got,
				discoveries, failures, wantHosts, logs.String())
		}
	}

	check("all three nodes", 2, 0, 0, 1, 2)
	if got := write(90); got[0] == 0 || got[1] == 0 || got[2] == 0 {
		t.Errorf("documents per node %v: want each node used", got)
	}
	for _, c := range []struct {
		what, body string
		status     int
	}{
		{"not JSON", "<html>bad gateway</html>", 0},
		{"no node", `{"nodes":{}}`, 0},
		{"only dedicated masters", `{"nodes":{"m":{"name":"m","roles":["master"],"http":{"publish_address":"127.0.0.1:1"}}}}`, 0},
		{"every node answers 503", `{"error":{"type":"master_not_discovered_exception","reason":"no master"},"status":503}`, 503},
	} {
		answer.set(c.status, c.body)
		failures := s.Stats().DiscoveryFailures
		check(c.what, 2, failures+1, 0, 1, 2)
	}
	if !strings.Contains(logs.String(), "node discovery failed") {
		t.Errorf("no log of the failed discovery:\n%s", logs.String())
	}

	answer.set(0, nodes(1, 2)) // the configured node leaves the cluster
	check("the configured node gone", 3, 4, 1, 2)
	if got := write(60); got[0] != 0 || got[1] == 0 || got[2] == 0 {
		t.Errorf("documents per node %v: want none to the node removed", got)
	}
	if !strings.Contains(logs.String(), "removed=[http://"+addrs[0]+"]") {
		t.Errorf("no log of the node removed:\n%s", logs.String())
	}
	answer.set(0, "not JSON")
	check("a failure brings the configured node back", 3, 5, 1, 2, 0)
	answer.set(0, nodes(0, 1))
	check("a node gone", 4, 5, 0, 1)
	if got := write(60); got[2] != 0 || got[0] == 0 || got[1] == 0 {
		t.Errorf("documents per node %v: want none to the node removed", got)
	}

	w.stop(t)
	if total := fakes[0].count() + fakes[1].count() + fakes[2].count(); total != w.next {
		t.Errorf("the nodes hold %d documents, want %d", total, w.next)
	}
}
