package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
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

// startBird runs BIRD with conf (birdtest.Start), peering with e's BGP
// listener.
func startBird(t *testing.T, e *testEngine, conf string) *birdtest.Bird {
	t.Helper()
	_, port, _ := net.SplitHostPort(e.BGPAddr())
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return birdtest.Start(t, conf, p)
}

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
	b := startBird(t, e, birdTwoRoutes)
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

// routes with attributes for TestBGPPrimitives: a destination route and a
// source route
const birdAttrRoutes = `router id 192.0.2.254;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 { ipv4; route 203.0.113.0/24 blackhole; route 198.51.100.0/24 blackhole; }
filter to_flowdex {
  if net = 203.0.113.0/24 then {
    bgp_path.prepend(64511); bgp_path.prepend(64510);
    bgp_community.add((64500,1)); bgp_large_community.add((64500,1,2)); bgp_ext_community.add((rt, 64500, 7));
    bgp_med = 50; bgp_local_pref = 200;
  }
  if net = 198.51.100.0/24 then { bgp_path.prepend(64520); bgp_local_pref = 100; }
  accept;
}
protocol bgp flowdex {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.1 port %[2]d as 64500;
  connect retry time 1;
  ipv4 { import none; export filter to_flowdex; next hop self; };
}
`

// v9Datagram is a NetFlow v9 datagram of one template (source and
// destination addresses, bytes, packets) and its records.
func v9Datagram(flows ...[2]string) []byte {
	be := binary.BigEndian
	b := be.AppendUint16(nil, 9)
	b = be.AppendUint16(b, uint16(1+len(flows)))
	b = be.AppendUint32(b, 3_600_000)
	b = be.AppendUint32(b, uint32(time.Now().Unix()))
	b = be.AppendUint32(b, 1)
	b = be.AppendUint32(b, 7)
	b = append(b, 0, 0, 0, 24, 1, 0, 0, 4, 0, 8, 0, 4, 0, 12, 0, 4, 0, 1, 0, 4, 0, 2, 0, 4) // template 256
	b = be.AppendUint16(b, 256)
	b = be.AppendUint16(b, uint16(4+16*len(flows)))
	for _, f := range flows {
		b = append(b, netip.MustParseAddr(f[0]).AsSlice()...)
		b = append(b, netip.MustParseAddr(f[1]).AsSlice()...)
		b = be.AppendUint32(b, 1000)
		b = be.AppendUint32(b, 10)
	}
	return b
}

// Flows exported by the BGP peer's address take the attributes of its
// routes: to the destination (as_path, communities, local_pref, med) and
// from the source (src_*); a destination without a route takes none.
func TestBGPPrimitives(t *testing.T) {
	birdtest.Require(t)
	udp := freeUDP(t)
	out := filepath.Join(t.TempDir(), "out.json")
	e := startEngine(t, fmt.Sprintf(`
[[input]]
type = "netflow"
listen = [%q]
[[pipeline]]
aggregate = ["peer_src_ip", "src_host", "dst_host", "as_path", "std_comm", "ext_comm", "lrg_comm", "local_pref", "med", "src_as_path", "src_local_pref"]
refresh = "24h"
outputs = ["print"]
[output.print]
type = "print"
file = %q
[bgp]
listen = "127.0.0.1:0"
asn = 64500
[[bgp.peer]]
prefix = "127.0.0.0/8"
`, udp, out), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := e.run(ctx)
	b := startBird(t, e, birdAttrRoutes)
	b.WaitFor("the routes", func() bool {
		peer := e.rib.Find(netip.MustParseAddr("127.0.0.2"))
		return peer != nil && peer.Len() == 2
	})
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(udp)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(v9Datagram([2]string{"198.51.100.7", "203.0.113.9"}, [2]string{"198.51.100.7", "192.0.2.1"})); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	b.WaitFor("the records", func() bool { return e.Counters().Records >= 2 || e.flowInputs[0].records.Load() >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"event_type": "purge", "comms": "64500:1", "ecomms": "RT:64500:7", "lcomms": "64500:1:2", "as_path": "64510_64511", "local_pref": 200, "med": 50, "peer_ip_src": "127.0.0.2", "as_path_src": "64520", "local_pref_src": 100, "ip_src": "198.51.100.7", "ip_dst": "203.0.113.9", "packets": 10, "bytes": 1000}`,
		`{"event_type": "purge", "comms": "", "ecomms": "", "lcomms": "", "as_path": "", "local_pref": 0, "med": 0, "peer_ip_src": "127.0.0.2", "as_path_src": "64520", "local_pref_src": 100, "ip_src": "198.51.100.7", "ip_dst": "192.0.2.1", "packets": 10, "bytes": 1000}`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("no record\n%s\nin\n%s", want, got)
		}
	}
}

// A session that goes down while flows come (BIRD's protocol disabled,
// then enabled again): the flows meanwhile take no route, those before and
// after take the peer's; the engine goes on, the reset counted.
func TestBGPSessionFlap(t *testing.T) {
	birdtest.Require(t)
	udp := freeUDP(t)
	out := filepath.Join(t.TempDir(), "out.json")
	e := startEngine(t, fmt.Sprintf(`
[[input]]
type = "netflow"
listen = [%q]
[[pipeline]]
aggregate = ["src_host", "dst_host", "as_path"]
refresh = "24h"
outputs = ["print"]
[output.print]
type = "print"
file = %q
[bgp]
listen = "127.0.0.1:0"
asn = 64500
[[bgp.peer]]
prefix = "127.0.0.0/8"
`, udp, out), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := e.run(ctx)
	b := startBird(t, e, birdAttrRoutes)
	peer := netip.MustParseAddr("127.0.0.2")
	routes := func() int {
		if p := e.rib.Find(peer); p != nil {
			return p.Len()
		}
		return 0
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(udp)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := uint64(0)
	send := func(dst string) {
		t.Helper()
		if _, err := conn.Write(v9Datagram([2]string{"198.51.100.7", dst})); err != nil {
			t.Fatal(err)
		}
		sent++
		b.WaitFor("the record", func() bool { return e.flowInputs[0].records.Load() >= sent })
	}
	b.WaitFor("the routes", func() bool { return routes() == 2 })
	send("203.0.113.1")
	b.Ctl("disable", "flowdex")
	b.WaitFor("the routes dropped", func() bool { return e.rib.Find(peer) == nil })
	send("203.0.113.2")
	b.Ctl("enable", "flowdex")
	b.WaitFor("the routes again", func() bool { return routes() == 2 })
	send("203.0.113.3")
	if st := e.bgp.Stats(); st.Resets["notification"] < 1 || st.Established < 2 {
		t.Errorf("counters: %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"as_path": "64510_64511", "ip_src": "198.51.100.7", "ip_dst": "203.0.113.1"`,
		`"as_path": "", "ip_src": "198.51.100.7", "ip_dst": "203.0.113.2"`,
		`"as_path": "64510_64511", "ip_src": "198.51.100.7", "ip_dst": "203.0.113.3"`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("no record with\n%s\nin\n%s", want, got)
		}
	}
}

// freeUDP returns an address of 127.0.0.1 with a free UDP port, for a
// NetFlow input.
func freeUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}
