package engine

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// The HTTP server answers only requests that name it: a Host of another
// site (a page whose name was rebound to the server's address) gets 421,
// counted and logged; loopback names, addresses and allowed_hosts get the
// page.
func TestHTTPRefusesUnknownHosts(t *testing.T) {
	stdin, feed := io.Pipe() // the input stays open: the server serves until it ends
	e := startEngine(t, `
[[input]]
type = "pmacct"
file = "-"
[output.print]
type = "print"
file = "out.json"
[http]
listen = "127.0.0.1:0"
allowed_hosts = ["flowdex.example.net"]
`, stdin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := e.run(ctx)
	defer func() {
		feed.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := e.HTTPAddr()
	_, port, _ := strings.Cut(addr, ":")
	get := func(host, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	testwatch.WaitFor(t, "the server", 20*time.Second, func() bool {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == http.StatusOK
	})
	for _, host := range []string{"evil.example", "evil.example:" + port, "flowdex.example.net.evil.example", "127.0.0.1.evil.example:" + port} {
		for _, path := range []string{"/metrics", "/readyz"} {
			if code, body := get(host, path); code != http.StatusMisdirectedRequest || !strings.Contains(body, "allowed_hosts") || strings.Contains(body, "flowdex_") {
				t.Errorf("Host %s %s: %d %.80q, want 421 without the page", host, path, code, body)
			}
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "127.0.0.1", "localhost:" + port, "LocalHost.", "[::1]:" + port,
		"flowdex.example.net", "flowdex.example.net:" + port, "FLOWDEX.example.net.:" + port} {
		if code, body := get(host, "/metrics"); code != http.StatusOK || !strings.Contains(body, "flowdex_build_info") {
			t.Errorf("Host %s: %d, want the metrics", host, code)
		}
	}
	if got := testwatch.Metrics(t, "http://"+addr)["flowdex_http_refused_requests_total"][""]; got != 8 {
		t.Errorf("flowdex_http_refused_requests_total %v, want 8", got)
	}
	if log := e.log.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "host=evil.example") {
		t.Errorf("no warning naming the refused host:\n%s", log)
	}
}

// Which Host headers each listen address answers to.
func TestHostGuard(t *testing.T) {
	for _, tt := range []struct {
		listen      string
		allowed     []string
		yes, no     []string
		description string
	}{
		{"127.0.0.1:8090", nil, []string{"localhost", "127.0.0.1:8090", "127.0.0.2", "[::1]:8090", "192.0.2.7:8090", "[2001:db8::1]", ""},
			[]string{"evil.example", "evil.example:8090", "localhost.evil.example", "flowdex.example.net"}, "loopback: names refused"},
		{"myhost:8090", nil, []string{"myhost:8090", "MyHost", "localhost"}, []string{"evil.example"}, "a name as listen host"},
		{"0.0.0.0:8090", nil, []string{"evil.example", "flowdex.example.net:8090"}, nil, "wildcard: exposed on purpose"},
		{"[::]:8090", nil, []string{"evil.example"}, nil, "IPv6 wildcard"},
		{":8090", nil, []string{"evil.example"}, nil, "empty host"},
		{"0.0.0.0:8090", []string{"flowdex.example.net"}, []string{"flowdex.example.net:8090", "192.0.2.7:8090", "localhost"},
			[]string{"evil.example"}, "wildcard restricted"},
		{"192.0.2.7:8090", []string{"*"}, []string{"evil.example"}, nil, "any name"},
	} {
		g := newHostGuard(tt.listen, tt.allowed, nil, slog.New(slog.DiscardHandler))
		for _, h := range tt.yes {
			if !g.allowed(h) {
				t.Errorf("%s, listen %s, allowed %q: %q refused", tt.description, tt.listen, tt.allowed, h)
			}
		}
		for _, h := range tt.no {
			if g.allowed(h) {
				t.Errorf("%s, listen %s, allowed %q: %q accepted", tt.description, tt.listen, tt.allowed, h)
			}
		}
	}
}
