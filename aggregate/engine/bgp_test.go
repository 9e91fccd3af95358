package engine

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/birdtest"
)

// a BIRD that announces two routes to flowdex over iBGP
const birdTwoRoutes = `router id 192.0.2.254;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 { ipv4; route 203.0.113.0/24 blackhole; route 198.51.100.0/24 blackhole; }
protocol bgp flowdex {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.1 port %[2]d as 64500;
  connect retry time 1;
  ipv4 { import none; export all; next hop self; };
}
`

// A [bgp] table starts the listener with the engine: BIRD's session and
// routes show on /metrics and /readyz, and the engine's stop closes the
// session.
func TestBGPListener(t *testing.T) {
	birdtest.Require(t)
	stdin, feed := io.Pipe()
	e := startEngine(t, `
[[input]]
type = "pmacct"
file = "-"
[output.print]
type = "print"
file = "out.json"
[http]
listen = "127.0.0.1:0"
[bgp]
listen = "127.0.0.1:0"
asn = 64500
[[bgp.peer]]
prefix = "127.0.0.0/8"
asn = 64500
max_prefixes = 10
`, stdin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := e.run(ctx)
	_, port, _ := net.SplitHostPort(e.BGPAddr())
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	b := birdtest.Start(t, birdTwoRoutes, p)
	get := func(path string) string {
		res, err := http.Get("http://" + e.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	b.WaitFor("2 routes on /metrics", func() bool {
		return strings.Contains(get("/metrics"), `flowdex_bgp_peer_routes{peer="127.0.0.2"} 2`)
	})
	metrics := get("/metrics")
	for _, want := range []string{`flowdex_bgp_peer_established{asn="64500",peer="127.0.0.2"} 1`, "flowdex_bgp_sessions_established_total 1",
		`flowdex_bgp_routes_total{event="announced"} 2`, "flowdex_bgp_attribute_sets 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if r := get("/readyz"); !strings.Contains(r, `"bgp_peers":[{"peer":"127.0.0.2","asn":64500,"state":"established","routes":2}]`) {
		t.Errorf("/readyz: %s", r)
	}
	feed.Close()
	if err := <-done; err != nil {
		t.Error(err)
	}
	b.WaitFor("BIRD to see the session closed", func() bool {
		return !strings.Contains(b.Ctl("show", "protocols", "flowdex"), "Established")
	})
}
