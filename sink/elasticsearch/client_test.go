package elasticsearch

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// recorder answers every request with status (and the product header when
// product) and keeps the requests' headers.
type recorder struct {
	mu      sync.Mutex
	seen    []http.Header
	status  int
	product bool
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.seen = append(r.seen, req.Header.Clone())
	status, product := r.status, r.product
	r.mu.Unlock()
	if product {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	w.WriteHeader(status)
	io.WriteString(w, `{}`)
}

func (r *recorder) set(status int, product bool) {
	r.mu.Lock()
	r.status, r.product = status, product
	r.mu.Unlock()
}

func (r *recorder) last() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1]
}

func testClient(t *testing.T, cfg Configuration) *Client {
	t.Helper()
	c, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	client, err := newClient(&cfg, c, nil, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// The client sends what go-elasticsearch's sends: its User-Agent and
// X-Elastic-Client-Meta, JSON bodies, and the compatibility header when
// ELASTIC_CLIENT_APIVERSIONING is true.
func TestClientHeaders(t *testing.T) {
	rec := &recorder{status: http.StatusOK, product: true}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	cfg := DefaultConfiguration()
	cfg.URLs = []string{srv.URL}
	client := testClient(t, cfg)
	if _, _, err := do(context.Background(), client, esapi.IndicesPutIndexTemplateRequest{Name: "t", Body: strings.NewReader(`{}`)}); err != nil {
		t.Fatal(err)
	}
	h := rec.last()
	goVersion := regexp.MustCompile(`go(\d+\.\d+\..+)`).ReplaceAllString(runtime.Version(), "$1")
	if want := "go-elasticsearch/" + esapi.Version + " (" + runtime.GOOS + " " + runtime.GOARCH + "; Go " + goVersion + ")"; h.Get("User-Agent") != want {
		t.Errorf("User-Agent %q, want %q", h.Get("User-Agent"), want)
	}
	if meta := h.Get("X-Elastic-Client-Meta"); !regexp.MustCompile(`^es=[0-9.]+p?,go=[0-9.]+p?,t=[0-9.]+p?,hc=[0-9.]+p?$`).MatchString(meta) ||
		!strings.HasPrefix(meta, "es="+esapi.Version+",") {
		t.Errorf("X-Elastic-Client-Meta %q", meta)
	}
	if h.Get("Content-Type") != "application/json" || h.Get("Accept") != "" || h.Get("Authorization") != "" {
		t.Errorf("headers %v", h)
	}

	t.Setenv("ELASTIC_CLIENT_APIVERSIONING", "true")
	client = testClient(t, cfg)
	if _, _, err := do(context.Background(), client, esapi.IndicesPutIndexTemplateRequest{Name: "t", Body: strings.NewReader(`{}`)}); err != nil {
		t.Fatal(err)
	}
	h = rec.last()
	const compat = "application/vnd.elasticsearch+json;compatible-with=8"
	if h.Get("Content-Type") != compat || h.Get("Accept") != compat {
		t.Errorf("compatibility mode: headers %v", h)
	}
}

// Credentials: an API key wins; a URL's user and password are used for every
// node when they are in the first URL.
func TestClientCredentials(t *testing.T) {
	rec := &recorder{status: http.StatusOK, product: true}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	withUser := strings.Replace(srv.URL, "http://", "http://url-user:url-pw@", 1)
	for _, c := range []struct {
		name           string
		urls           []string
		user, password string
		key            string
		want           string
	}{
		{"none", []string{srv.URL}, "", "", "", ""},
		{"basic", []string{srv.URL}, "flowdex", "pw", "", "Basic Zmxvd2RleDpwdw=="},
		{"key", []string{srv.URL}, "", "", "a2V5", "APIKey a2V5"},
		{"url", []string{withUser}, "", "", "", "Basic dXJsLXVzZXI6dXJsLXB3"},
		{"url wins", []string{withUser}, "flowdex", "pw", "", "Basic dXJsLXVzZXI6dXJsLXB3"},
		{"key and url", []string{withUser}, "", "", "a2V5", "Basic dXJsLXVzZXI6dXJsLXB3"},
		{"url of the first node", []string{withUser + "/", srv.URL}, "", "", "", "Basic dXJsLXVzZXI6dXJsLXB3"},
	} {
		cfg := DefaultConfiguration()
		cfg.URLs, cfg.Username, cfg.Password, cfg.APIKey = c.urls, c.user, c.password, c.key
		client := testClient(t, cfg)
		for range c.urls {
			if _, _, err := do(context.Background(), client, esapi.InfoRequest{}); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := rec.last().Get("Authorization"); got != c.want {
				t.Errorf("%s: Authorization %q, want %q", c.name, got, c.want)
			}
		}
	}
}

// A 2xx answer without X-Elastic-Product is refused until one has it; other
// answers pass.
func TestClientProductCheck(t *testing.T) {
	rec := &recorder{status: http.StatusUnauthorized}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	cfg := DefaultConfiguration()
	cfg.URLs = []string{srv.URL}
	client := testClient(t, cfg)
	ctx := context.Background()
	if status, _, err := do(ctx, client, esapi.InfoRequest{}); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("401 without the header: %d, %v", status, err)
	}
	rec.set(http.StatusOK, false)
	if _, _, err := do(ctx, client, esapi.InfoRequest{}); err == nil || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Fatalf("200 without the header: %v", err)
	}
	rec.set(http.StatusOK, true)
	if status, _, err := do(ctx, client, esapi.InfoRequest{}); err != nil || status != http.StatusOK {
		t.Fatalf("200 with the header: %d, %v", status, err)
	}
	rec.set(http.StatusOK, false) // checked once
	if status, _, err := do(ctx, client, esapi.InfoRequest{}); err != nil || status != http.StatusOK {
		t.Fatalf("200 without the header, after one with it: %d, %v", status, err)
	}
}
