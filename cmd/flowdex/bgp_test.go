package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/birdtest"
	"github.com/flowdex/flowdex/internal/testports"
)

// birdBoth announces the same routes to flowdex (%[2]d) and to nfacctd's
// bgp_daemon (on 127.0.0.3, NFACCTD_PORT), over iBGP from 127.0.0.2.
const birdBoth = `router id ROUTER_ID;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 {
  ipv4;
  route 203.0.113.0/24 blackhole;
  route 203.0.113.128/25 blackhole;
  route 198.51.100.0/24 blackhole;
  route 192.0.2.0/24 blackhole;
}
protocol static s6 { ipv6; route 2001:db8:100::/48 blackhole; route 2001:db8:200::/40 blackhole; }
filter to_collectors {
  if net = 203.0.113.0/24 then {
    bgp_path.prepend(64511); bgp_path.prepend(64510);
    bgp_community.add((64500,1)); bgp_community.add((64500,2));
    bgp_large_community.add((64500,1,2)); bgp_ext_community.add((rt, 64500, 7));
    bgp_med = 50; bgp_local_pref = 200;
  }
  if net = 203.0.113.128/25 then { bgp_path.prepend(4200000001); bgp_community.add((64501,9)); bgp_local_pref = 150; }
  if net = 198.51.100.0/24 then { bgp_path.prepend(64520); bgp_local_pref = 100; bgp_med = 7; }
  if net = 192.0.2.0/24 then { bgp_path.prepend(64530); bgp_path.prepend(64531); bgp_local_pref = 100; bgp_large_community.add((64530,0,1)); }
  if net = 2001:db8:100::/48 then { bgp_path.prepend(64540); bgp_community.add((64540,40)); bgp_local_pref = 300; }
  if net = 2001:db8:200::/40 then { bgp_path.prepend(64550); bgp_local_pref = 100; }
  accept;
}
protocol bgp flowdex {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.1 port %[2]d as 64500;
  connect retry time 1;
  ipv4 { import none; export filter to_collectors; next hop self; };
  ipv6 { import none; export filter to_collectors; next hop address 2001:db8::fe; };
}
protocol bgp nfacctd {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.3 port NFACCTD_PORT as 64500;
  connect retry time 1;
  error wait time 1, 2; # nfacctd runs again if 1.7.7 loses its plugin: BIRD must come back at once
  ipv4 { import none; export filter to_collectors; next hop self; };
  ipv6 { import none; export filter to_collectors; next hop address 2001:db8::fe; };
}
`

// bgpExport is NetFlow v9 from BIRD's address (the exporter is the BGP
// peer, as pmacct's default bgp_agent_map has it) and from 127.0.0.9,
// which the tests' bgp_agent_map maps to BIRD; nfacctd
// (pcap_savefile_delay) and flowdex (replay_delay) read it once the routes
// are in.
func bgpExport() []exportDatagram {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	other := &nfExporter{version: 9, src: netip.MustParseAddrPort("127.0.0.9:2055"), domain: 1}
	e := &nfExporter{version: 9, src: netip.MustParseAddrPort("127.0.0.2:2055"), domain: 1}
	v4 := []nfField{{8, 4, 0}, {12, 4, 0}, {1, 4, 0}, {2, 4, 0}}
	v6 := []nfField{{27, 16, 0}, {28, 16, 0}, {1, 4, 0}, {2, 4, 0}}
	other.send(start, 1, other.templateSet(256, v4...))
	pairs4 := [][2]string{{"198.51.100.7", "203.0.113.9"}, {"198.51.100.7", "203.0.113.200"}, {"192.0.2.5", "198.51.100.1"},
		{"10.0.0.1", "203.0.113.9"}, {"203.0.113.130", "10.9.9.9"}, {"192.0.2.5", "203.0.113.1"}}
	pairs6 := [][2]string{{"2001:db8:100::1", "2001:db8:2ff::1"}, {"2001:db8:ffff::1", "2001:db8:100::9"}}
	for n := range 2 {
		var r4, r6 [][]byte
		for i, p := range pairs4 {
			r4 = append(r4, nfRec(nfIP(p[0]), nfIP(p[1]), nfU32(uint32(100*(i+1))), nfU32(uint32(i+1))))
		}
		for i, p := range pairs6 {
			r6 = append(r6, nfRec(nfIP(p[0]), nfIP(p[1]), nfU32(uint32(1000*(i+1))), nfU32(uint32(10*(i+1)))))
		}
		e.send(start.Add(10*time.Second+time.Duration(n)*time.Second), 2+len(r4)+len(r6),
			e.templateSet(256, v4...), e.templateSet(257, v6...), nfSet(256, r4...), nfSet(257, r6...))
		other.send(start.Add(10*time.Second+time.Duration(n)*time.Second), 1+len(r4[:2]), other.templateSet(256, v4...), nfSet(256, r4[:2]...))
	}
	return append(other.out, e.out...)
}

// bgpCase is a golden run of nfacctd 1.7.7's bgp_daemon and flowdex, both
// peering with the same BIRD (birdBoth), over bgpExport.
type bgpCase struct {
	agg      []string
	nfacctd  string                  // nfacctd's lines more
	bgp      string                  // flowdex's [bgp] lines more
	pipeline string                  // flowdex's pipeline lines
	routerID string                  // BIRD's BGP identifier; "": its address, 127.0.0.2
	noAgents bool                    // no bgp_agent_map (mapping 127.0.0.9 to BIRD)
	bird     string                  // BIRD's configuration, birdBoth's format; "": birdBoth
	export   func() []exportDatagram // the flows; nil: bgpExport
}

func bgpGolden(t *testing.T, c bgpCase) (want, got map[string]string) {
	t.Helper()
	// in parallel: each has its own BIRD, nfacctd and flowdex on their own
	// ports, and spends most of its time waiting for their sessions
	t.Parallel()
	requireTools(t, "nfacctd")
	requireFaketime(t)
	birdtest.Require(t)
	dir := t.TempDir()
	capture := filepath.Join(dir, "export.pcap")
	if c.export == nil {
		c.export = bgpExport
	}
	if c.bird == "" {
		c.bird = birdBoth
	}
	if err := writeExportPcap(capture, c.export()); err != nil {
		t.Fatal(err)
	}
	ports, err := testports.Free(2)
	if err != nil {
		t.Fatal(err)
	}
	if c.routerID == "" {
		c.routerID = "127.0.0.2"
	}
	birdtest.Start(t, strings.NewReplacer("NFACCTD_PORT", fmt.Sprint(ports[1]), "ROUTER_ID", c.routerID).Replace(c.bird), ports[0])
	nfConf := fmt.Sprintf("bgp_daemon: true\nbgp_daemon_ip: 127.0.0.3\nbgp_daemon_port: %d\npcap_savefile_delay: 8\n%s", ports[1], c.nfacctd)
	input := fmt.Sprintf("type = \"netflow\"\nreplay = %q\nreplay_delay = \"8s\"", capture)
	if !c.noAgents {
		agents := writeFile(t, dir, "agents.map", "bgp_ip=127.0.0.2 ip=127.0.0.9\n")
		nfConf += "bgp_agent_map: " + agents + "\n"
		input += fmt.Sprintf("\nbgp_agent_map = %q", agents)
	}
	nfacctd := pmacctRun{daemon: "nfacctd", savefile: capture, extra: nfConf}
	top := fmt.Sprintf("[bgp]\nlisten = \"127.0.0.1:%d\"\nasn = 64500\n%s\n[[bgp.peer]]\nprefix = \"127.0.0.2/32\"\n", ports[0], c.bgp)
	return goldenRun(t, dir, nfacctd, top, input, c.pipeline, c.agg)
}

// The BGP primitives, and AS numbers from BGP (nfacctd_as: bgp, flowdex's
// as_source = "bgp"), against nfacctd 1.7.7's bgp_daemon, both peering
// with the same BIRD and reading the same export: the same records.
func TestBGPPrimitivesMatchNfacctd(t *testing.T) {
	agg := []string{"peer_src_ip", "src_host", "dst_host", "src_as", "dst_as", "peer_dst_as", "as_path", "std_comm", "ext_comm", "lrg_comm", "local_pref", "med",
		"src_as_path", "src_std_comm", "src_ext_comm", "src_lrg_comm", "src_local_pref", "src_med"}
	want, got := bgpGolden(t, bgpCase{agg: agg, nfacctd: `nfacctd_as: bgp
bgp_src_as_path_type: bgp
bgp_src_std_comm_type: bgp
bgp_src_ext_comm_type: bgp
bgp_src_lrg_comm_type: bgp
bgp_src_local_pref_type: bgp
bgp_src_med_type: bgp
`, pipeline: `as_source = "bgp"`})
	if len(want) != 10 {
		t.Fatalf("nfacctd made %d records, want 10: %v", len(want), want)
	}
	compareSums(t, got, want)
	requireValues(t, got, `"as_path":"64510_64511"`, `"as_path":"4200000001"`, `"comms":"64500:1_64500:2"`, `"ecomms":"RT:64500:7"`,
		`"lcomms":"64500:1:2"`, `"as_path_src":"64531_64530"`, `"as_path":"64550"`, `"as_path_src":"64540"`, `"local_pref":200`, `"med":50`, `"as_dst":64511`, `"as_src":64530`, `"peer_as_dst":64510`)
	// the exporter the agent map names took the peer's routes
	mapped := false
	for k := range got {
		mapped = mapped || strings.Contains(k, `"peer_ip_src":"127.0.0.9"`) && strings.Contains(k, `"as_path":"64510_64511"`)
	}
	if !mapped {
		t.Errorf("no record of exporter 127.0.0.9 with its mapped peer's routes: %v", got)
	}
}

// Nets, masks and the next hop from BGP (nfacctd_net: bgp, flowdex's
// net_source = "bgp"): the routes' prefixes and next hops, against
// nfacctd 1.7.7.
func TestBGPNetsMatchNfacctd(t *testing.T) {
	agg := []string{"peer_src_ip", "src_host", "dst_host", "src_net", "dst_net", "src_mask", "dst_mask", "peer_dst_ip", "dst_as"}
	want, got := bgpGolden(t, bgpCase{agg: agg, nfacctd: "nfacctd_net: bgp\nnfacctd_as: bgp\n", pipeline: "net_source = \"bgp\"\nas_source = \"bgp\""})
	if len(want) != 10 {
		t.Fatalf("nfacctd made %d records, want 10: %v", len(want), want)
	}
	compareSums(t, got, want)
	requireValues(t, got, `"mask_dst":25`, `"mask_dst":24`, `"net_dst":"203.0.113.128"`, `"peer_ip_dst":"127.0.0.2"`, `"mask_src":48`, `"peer_ip_dst":"2001:db8::fe"`)
}

// Which communities and AS path hops the texts keep (nfacctd's
// bgp_*comm_pattern and bgp_aspath_radius, flowdex's [bgp]
// *_comm_patterns and as_path_radius). The patterns occur at the start of
// the communities they keep and no community is kept by two: there pmacct
// 1.7.7 and flowdex differ (routes.Texts says how, texts_test.go shows it).
func TestBGPTextsMatchNfacctd(t *testing.T) {
	agg := []string{"peer_src_ip", "src_host", "dst_host", "as_path", "std_comm", "ext_comm", "lrg_comm", "dst_as"}
	want, got := bgpGolden(t, bgpCase{agg: agg, nfacctd: `nfacctd_as: bgp
bgp_stdcomm_pattern: 64500:2,6454.:..
bgp_extcomm_pattern: RT:64500:8
bgp_lrgcomm_pattern: 64500:1:
bgp_aspath_radius: 1
`, bgp: `std_comm_patterns = ["64500:2", "6454.:.."]
ext_comm_patterns = ["RT:64500:8"]
lrg_comm_patterns = ["64500:1:"]
as_path_radius = 1`, pipeline: `as_source = "bgp"`})
	if len(want) != 10 {
		t.Fatalf("nfacctd made %d records, want 10: %v", len(want), want)
	}
	compareSums(t, got, want)
	requireValues(t, got, `"as_path":"64510"`, `"comms":"64500:2"`, `"comms":"64540:40"`, `"lcomms":"64500:1:2"`, `"ecomms":""`, `"as_dst":64511`)
}

// A router exporting flows from its BGP identifier (127.0.0.9) and peering
// from another address (127.0.0.2) has its flows looked up in its routes
// without a bgp_agent_map, as nfacctd finds the peer by identifier.
func TestBGPPeerByIdentifierMatchNfacctd(t *testing.T) {
	agg := []string{"peer_src_ip", "src_host", "dst_host", "as_path", "dst_as"}
	want, got := bgpGolden(t, bgpCase{agg: agg, nfacctd: "nfacctd_as: bgp\n", pipeline: `as_source = "bgp"`, routerID: "127.0.0.9", noAgents: true})
	if len(want) != 10 {
		t.Fatalf("nfacctd made %d records, want 10: %v", len(want), want)
	}
	compareSums(t, got, want)
	mapped := false
	for k := range got {
		mapped = mapped || strings.Contains(k, `"peer_ip_src":"127.0.0.9"`) && strings.Contains(k, `"as_path":"64510_64511"`)
	}
	if !mapped {
		t.Errorf("no record of exporter 127.0.0.9 with the routes of the peer it is the identifier of: %v", got)
	}
}

// birdAddPaths has two routes to 203.0.113.0/24 (static protocols a and b,
// their paths and next hops differing) and sends both (ADD-PATH) to
// flowdex and nfacctd.
const birdAddPaths = `router id ROUTER_ID;
log "%[1]s/bird.log" all;
protocol device {}
protocol static a { ipv4; route 203.0.113.0/24 blackhole; route 198.51.100.0/24 blackhole; }
protocol static b { ipv4; route 203.0.113.0/24 blackhole; }
filter to_collectors {
  if proto = "a" then { bgp_path.prepend(64510); bgp_local_pref = 200; bgp_next_hop = 192.0.2.10; }
  if proto = "b" then { bgp_path.prepend(64520); bgp_local_pref = 100; bgp_next_hop = 192.0.2.20; }
  accept;
}
protocol bgp flowdex {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.1 port %[2]d as 64500;
  connect retry time 1;
  ipv4 { import none; export filter to_collectors; add paths tx; };
}
protocol bgp nfacctd {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.3 port NFACCTD_PORT as 64500;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import none; export filter to_collectors; add paths tx; };
}
`

// addPathExport is NetFlow v9 from BIRD's address to 203.0.113.9 with BGP
// next hops (IE 18) naming either path, one naming neither, and none.
func addPathExport() []exportDatagram {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	e := &nfExporter{version: 9, src: netip.MustParseAddrPort("127.0.0.2:2055"), domain: 1}
	var recs [][]byte
	for i, nh := range []string{"192.0.2.10", "192.0.2.20", "192.0.2.99", "0.0.0.0"} {
		recs = append(recs, nfRec(nfIP(fmt.Sprintf("198.51.100.%d", i+1)), nfIP("203.0.113.9"), nfIP(nh), nfU32(uint32(100*(i+1))), nfU32(uint32(i+1))))
	}
	e.send(start.Add(10*time.Second), 1+len(recs), e.templateSet(256, nfField{8, 4, 0}, nfField{12, 4, 0}, nfField{18, 4, 0}, nfField{1, 4, 0}, nfField{2, 4, 0}), nfSet(256, recs...))
	return e.out
}

// A peer sending several paths to a prefix (ADD-PATH): each flow takes the
// path whose next hop is its BGP next hop, against nfacctd 1.7.7.
func TestBGPAddPathMatchNfacctd(t *testing.T) {
	agg := []string{"src_host", "dst_host", "peer_dst_ip", "as_path", "local_pref", "dst_as"}
	want, got := bgpGolden(t, bgpCase{agg: agg, nfacctd: "nfacctd_as: bgp\n", pipeline: `as_source = "bgp"`, bird: birdAddPaths, export: addPathExport, noAgents: true})
	if len(want) != 4 {
		t.Fatalf("nfacctd made %d records, want 4: %v", len(want), want)
	}
	compareSums(t, got, want)
	requireValues(t, got, `"as_path":"64520"`, `"as_path":"64510"`)
}

// peer_src_as from the route to the source (nfacctd's
// bgp_peer_src_as_type: bgp, flowdex's peer_src_as_source = "bgp"): the
// first AS of its path, against nfacctd 1.7.7.
func TestBGPPeerSrcASMatchNfacctd(t *testing.T) {
	agg := []string{"peer_src_ip", "src_host", "dst_host", "peer_src_as", "src_as", "peer_dst_as"}
	want, got := bgpGolden(t, bgpCase{agg: agg, nfacctd: "nfacctd_as: bgp\nbgp_peer_src_as_type: bgp\n", pipeline: "as_source = \"bgp\"\npeer_src_as_source = \"bgp\""})
	if len(want) != 10 {
		t.Fatalf("nfacctd made %d records, want 10: %v", len(want), want)
	}
	compareSums(t, got, want)
	requireValues(t, got, `"peer_as_src":64531`, `"as_src":64530`, `"peer_as_src":64540`)
}
