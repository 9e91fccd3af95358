package elasticsearch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// notReady answers the start's requests (GET /, PUT _index_template) with
// the statuses it is given first, then passes them to next; hang (-1) gives
// no answer until the client gives up.
type notReady struct {
	next http.Handler

	mu               sync.Mutex
	root, template   []int
	roots, templates int
	version          string // else the fake's
	nodeInfos        int
}

const hang = -1

func (n *notReady) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var script *[]int
	n.mu.Lock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/":
		n.roots++
		script = &n.root
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_index_template/"):
		n.templates++
		script = &n.template
	case strings.HasPrefix(r.URL.Path, "/_nodes"):
		n.nodeInfos++
	}
	status := 0
	if script != nil && len(*script) > 0 {
		status, *script = (*script)[0], (*script)[1:]
	}
	version := n.version
	n.mu.Unlock()
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	switch {
	case status == hang:
		<-r.Context().Done()
	case status != 0:
		reason := map[int]string{
			400: `"type":"mapper_parsing_exception","reason":"No handler for type [lng] declared on field [bytes]"`,
			401: `"type":"security_exception","reason":"missing authentication credentials for REST request [/]"`,
			429: `"type":"es_rejected_execution_exception","reason":"rejected execution"`,
			503: `"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"`,
		}[status]
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{%s},"status":%d}`, reason, status)
	case version != "" && r.URL.Path == "/":
		fmt.Fprintf(w, `{"version":{"number":%q}}`, version)
	default:
		n.next.ServeHTTP(w, r)
	}
}

func (n *notReady) counts() (roots, templates, nodeInfos int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.roots, n.templates, n.nodeInfos
}

// The start's setup against a server that is not ready yet: 503 and 429
// answers and requests without answer are tried again, within
// start_timeout, and the start succeeds once it is ready; refused
// credentials, a rejected template and an old version end the start at
// once, with their reason; a server never ready ends it after
// start_timeout, saying so.
func TestFakeStartSetupRetries(t *testing.T) {
	many := make([]int, 10000)
	for i := range many {
		many[i] = 503
	}
	tests := []struct {
		name           string
		root, template []int
		version        string
		roots          int // GET / expected; 0: more than 2
		templates      int
		want           string        // in Start's error; "": Start succeeds
		requestTimeout time.Duration // 0: 300 ms
	}{
		{name: "503 twice", root: []int{503, 503}, roots: 3, templates: 1},
		{name: "template 429 then 503", template: []int{429, 503}, roots: 1, templates: 3},
		{name: "no answer once", root: []int{hang}, roots: 2, templates: 1},
		{name: "401", root: []int{401}, roots: 1, want: "authentication required"},
		{name: "template refused", template: []int{400}, roots: 1, templates: 1, want: "HTTP 400: mapper_parsing_exception"},
		{name: "version too old", version: "7.9.3", roots: 1, want: "7.10 or later"},
		{name: "never ready", root: many, want: "HTTP 503: cluster_block_exception"},
		// the last try, cut short by start_timeout, does not hide why the others failed
		{name: "503 then no answer", root: []int{503, hang}, roots: 2, want: "HTTP 503: cluster_block_exception", requestTimeout: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newFakeES(t, nil)
			n := &notReady{next: f, root: tt.root, template: tt.template, version: tt.version}
			srv := httptest.NewServer(n)
			t.Cleanup(srv.Close)
			cfg := fakeConfig(srv.URL)
			cfg.RequestTimeout.Duration = cmp.Or(tt.requestTimeout, 300*time.Millisecond)
			cfg.StartTimeout.Duration = 2 * time.Second
			var logs testwatch.Log
			s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = s.Start(context.Background())
			took := time.Since(start)
			roots, templates, nodeInfos := n.counts()
			t.Logf("Start took %v: %v; GET / %d, PUT template %d", took.Round(time.Millisecond), err, roots, templates)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Start: %v\n%s", err, logs.String())
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Start: %v, want an error saying %q", err, tt.want)
			}
			if err == nil {
				if err := s.Stop(context.Background()); err != nil {
					t.Error(err)
				}
			}
			permanent := tt.want != "" && tt.roots == 1 // the others fail at start_timeout
			if tt.want != "" && strings.Contains(err.Error(), "start_timeout") == permanent {
				t.Errorf("Start: %v; want start_timeout named when it ran out, and only then", err)
			}
			if tt.roots == 0 {
				// tried until start_timeout, which the error names
				if roots <= 2 || took < cfg.StartTimeout.Duration-cfg.BackoffMax || !strings.Contains(err.Error(), "start_timeout") {
					t.Errorf("GET / %d times in %v: %v; want tries until start_timeout (%v)", roots, took, err, cfg.StartTimeout)
				}
			} else if roots != tt.roots || templates != tt.templates {
				t.Errorf("GET / %d times, PUT template %d times; want %d and %d\n%s", roots, templates, tt.roots, tt.templates, logs.String())
			}
			if nodeInfos != 0 && tt.version == "" {
				t.Errorf("the node info was asked for %d times: a 503 of GET / is to be tried again, not worked around", nodeInfos)
			}
			var transient *transientError
			if permanent && errors.As(err, &transient) {
				t.Errorf("a permanent failure is marked transient: %v", err)
			}
		})
	}
}

// The start's setup against the real server: one version check and one
// template install when it is ready; when it listens only after a while
// (connections refused until then: a node starting), the start waits for it
// and installs the template.
func TestRealStartSetup(t *testing.T) {
	es := estest.URL(t)
	t.Run("ready", func(t *testing.T) {
		cfg, prefix := realConfig(t, es)
		var rt countingTransport
		s, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.transport = &rt
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer s.Stop(context.Background())
		// GET /_nodes/_local: the test distribution has no GET /
		got := rt.seen()
		if got != "GET /, PUT /_index_template/"+prefix && got != "GET /, GET /_nodes/_local, PUT /_index_template/"+prefix {
			t.Errorf("requests at start: %s; want one version check and one template install", got)
		}
	})
	t.Run("listening late", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // refused until the proxy below listens
		cfg, prefix := realConfig(t, "http://"+addr)
		cfg.StartTimeout.Duration = time.Minute
		var logs testwatch.Log
		s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		target, _ := url.Parse(es)
		proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
		listening := make(chan bool)
		go func() {
			time.Sleep(time.Second)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Error(err)
				close(listening)
				return
			}
			proxy.Listener = l
			proxy.Start()
			listening <- true
		}()
		t.Cleanup(func() {
			if <-listening {
				proxy.Close()
			}
		})
		start := time.Now()
		if err := s.Start(context.Background()); err != nil {
			t.Fatalf("Start: %v\n%s", err, logs.String())
		}
		defer s.Stop(context.Background())
		t.Logf("started after %v", time.Since(start).Round(time.Millisecond))
		if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), "elasticsearch: ready") {
			t.Errorf("the log does not show the retries:\n%s", logs.String())
		}
		var templates map[string]any
		estest.Call(t, http.MethodGet, es+"/_index_template/"+prefix, nil, &templates)
		if !strings.Contains(fmt.Sprint(templates), prefix+"-*") {
			t.Errorf("template %s: %v", prefix, templates)
		}
	})
}

// countingTransport lists the requests it sends, "METHOD /path".
type countingTransport struct {
	mu   sync.Mutex
	reqs []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) seen() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.reqs, ", ")
}
