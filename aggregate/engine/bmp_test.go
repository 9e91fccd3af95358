package engine

import (
	"context"
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

	"github.com/flowdex/flowdex/internal/birdtest"
	"github.com/flowdex/flowdex/internal/frrtest"
)

// birdToFRR is birdAttrRoutes announced to FRR's bgpd, with a next hop
// FRR does not take for a martian.
const birdToFRR = `router id 192.0.2.254;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 { ipv4; route 203.0.113.0/24 blackhole; route 198.51.100.0/24 blackhole; }
filter to_frr {
  if net = 203.0.113.0/24 then {
    bgp_path.prepend(64511); bgp_path.prepend(64510);
    bgp_community.add((64500,1)); bgp_large_community.add((64500,1,2)); bgp_ext_community.add((rt, 64500, 7));
    bgp_med = 50; bgp_local_pref = 200;
  }
  if net = 198.51.100.0/24 then { bgp_path.prepend(64520); bgp_local_pref = 100; }
  accept;
}
protocol bgp frr {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.3 port %[2]d as 64500;
  connect retry time 1;
  ipv4 { import none; export filter to_frr; next hop address 192.0.2.1; };
}
`

// frrMonitoring is a bgpd that BIRD peers with, monitoring its
// post-policy Adj-RIB-In to flowdex over BMP.
const frrMonitoring = `frr defaults traditional
hostname frr-edge
log file %[1]s/bgpd.log informational
router bgp 64500
 bgp router-id 192.0.2.253
 no bgp default ipv4-unicast
 neighbor 127.0.0.2 remote-as 64500
 neighbor 127.0.0.2 passive
 address-family ipv4 unicast
  neighbor 127.0.0.2 activate
 exit-address-family
 bmp targets flowdex
  bmp monitor ipv4 unicast post-policy
  bmp connect 127.0.0.1 port %[2]d min-retry 100 max-retry 1000
 exit
exit
`

// Flows exported by a BMP router (from the address of its BMP session, or
// mapped to it by bgp_agent_map) take the attributes of its monitored
// peers' routes, as from a BGP peer's; the router and its peer show on
// /metrics and /readyz.
func TestBMPPrimitives(t *testing.T) {
	frrtest.Require(t)
	birdtest.Require(t)
	udp := freeUDP(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	agents := filepath.Join(dir, "agents.map")
	if err := os.WriteFile(agents, []byte("bgp_ip=127.0.0.1 ip=127.0.0.7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, fmt.Sprintf(`
[[input]]
type = "netflow"
listen = [%q]
bgp_agent_map = %q
[[pipeline]]
aggregate = ["peer_src_ip", "src_host", "dst_host", "as_path", "std_comm", "ext_comm", "lrg_comm", "local_pref", "med", "src_as_path", "src_local_pref"]
refresh = "24h"
outputs = ["print"]
[output.print]
type = "print"
file = %q
[http]
listen = "127.0.0.1:0"
[bmp]
listen = "127.0.0.1:0"
routers = ["127.0.0.0/8"]
`, udp, agents, out), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := e.run(ctx)
	_, port, _ := net.SplitHostPort(e.BMPAddr())
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	f := frrtest.Start(t, frrMonitoring, p)
	birdtest.Start(t, birdToFRR, f.Port)
	router := netip.MustParseAddr("127.0.0.1") // FRR's BMP source toward flowdex's 127.0.0.1
	f.WaitFor("the routes over BMP", func() bool {
		v := e.bmpRIB.Find(router)
		return v != nil && v.Len() == 2
	})
	get := func(path string) string {
		res, err := http.Get("http://" + e.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	metrics := get("/metrics")
	for _, want := range []string{"flowdex_bmp_routers 1", "flowdex_bmp_sessions_total 1", `flowdex_bmp_router_routes{router="127.0.0.1",sys_name="frr-edge"} 2`,
		`flowdex_bmp_monitored_peers{router="127.0.0.1"} 1`, `flowdex_bmp_peer_routes{asn="64500",peer="127.0.0.2",router="127.0.0.1"} 2`,
		`flowdex_bmp_routes_total{event="announced"} 2`, `flowdex_bmp_peer_notifications_total{event="up"} 1`, "flowdex_bmp_attribute_sets 2"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if r := get("/readyz"); !strings.Contains(r, `"bmp_routers":[{"router":"127.0.0.1","sys_name":"frr-edge","routes":2,"peers":[{"peer":"127.0.0.2","asn":64500,"up":true,"routes":2}]}]`) {
		t.Errorf("/readyz: %s", r)
	}
	datagram := v9Datagram([2]string{"198.51.100.7", "203.0.113.9"}, [2]string{"198.51.100.7", "192.0.2.1"})
	for _, from := range []string{"127.0.0.1", "127.0.0.7"} {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(udp)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(datagram); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	f.WaitFor("the records", func() bool { return e.flowInputs[0].records.Load() >= 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, exporter := range []string{"127.0.0.1", "127.0.0.7"} {
		for _, want := range []string{
			`{"event_type": "purge", "comms": "64500:1", "ecomms": "RT:64500:7", "lcomms": "64500:1:2", "as_path": "64510_64511", "local_pref": 200, "med": 50, "peer_ip_src": "` + exporter + `", "as_path_src": "64520", "local_pref_src": 100, "ip_src": "198.51.100.7", "ip_dst": "203.0.113.9", "packets": 10, "bytes": 1000}`,
			`{"event_type": "purge", "comms": "", "ecomms": "", "lcomms": "", "as_path": "", "local_pref": 0, "med": 0, "peer_ip_src": "` + exporter + `", "as_path_src": "64520", "local_pref_src": 100, "ip_src": "198.51.100.7", "ip_dst": "192.0.2.1", "packets": 10, "bytes": 1000}`,
		} {
			if !strings.Contains(string(got), want) {
				t.Errorf("no record\n%s\nin\n%s", want, got)
			}
		}
	}
}
