package bmp

import (
	"net"
	"net/netip"
	"testing"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/internal/birdtest"
	"github.com/flowdex/flowdex/internal/frrtest"
)

// birdToFRR announces to FRR's bgpd over iBGP (so that local preference
// goes too) three IPv4 and two IPv6 routes with paths, communities, large
// communities, extended communities, MED and local preference. The next
// hops are not loopback addresses, which FRR takes for martians.
const birdToFRR = `router id 192.0.2.254;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 {
  ipv4;
  route 203.0.113.0/24 blackhole;
  route 198.51.100.0/24 blackhole;
  route 198.51.100.128/25 blackhole;
}
protocol static s6 {
  ipv6;
  route 2001:db8:100::/48 blackhole;
  route 2001:db8:200::/40 blackhole;
}
filter to_frr {
  if net = 203.0.113.0/24 then {
    bgp_path.prepend(64511); bgp_path.prepend(64510);
    bgp_community.add((64500,1)); bgp_community.add((64500,2));
    bgp_large_community.add((64500,1,2));
    bgp_ext_community.add((rt, 64500, 7));
    bgp_med = 50; bgp_local_pref = 200;
  }
  if net = 198.51.100.0/24 then { bgp_path.prepend(4200000001); bgp_local_pref = 100; }
  if net = 198.51.100.128/25 then { bgp_path.prepend(64520); bgp_local_pref = 100; }
  if net = 2001:db8:100::/48 then { bgp_path.prepend(64530); bgp_community.add((64530,9)); bgp_local_pref = 300; }
  if net = 2001:db8:200::/40 then { bgp_path.prepend(64540); bgp_local_pref = 100; }
  accept;
}
protocol bgp frr {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.3 port %[2]d as 64500;
  hold time 9;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import none; export filter to_frr; next hop address 192.0.2.1; };
  ipv6 { import none; export filter to_frr; next hop address 2001:db8::fe; };
}
`

// frrConf is a bgpd that BIRD (127.0.0.2) peers with, and that monitors
// its post-policy Adj-RIB-In to flowdex over BMP.
const frrConf = `frr defaults traditional
hostname frr-edge
log file %[1]s/bgpd.log informational
router bgp 64500
 bgp router-id 192.0.2.253
 no bgp default ipv4-unicast
 neighbor 127.0.0.2 remote-as 64500
 neighbor 127.0.0.2 passive
 neighbor 127.0.0.2 timers 3 9
 address-family ipv4 unicast
  neighbor 127.0.0.2 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor 127.0.0.2 activate
 exit-address-family
 bmp targets flowdex
  bmp monitor ipv4 unicast post-policy
  bmp monitor ipv6 unicast post-policy
  bmp stats interval 1000
  bmp connect 127.0.0.1 port %[2]d min-retry 100 max-retry 1000
 exit
exit
`

// BIRD's routes, announced to FRR, reach flowdex over FRR's BMP with every
// attribute, in the view of FRR's BMP source address; a protocol disabled
// in BIRD withdraws its routes; BIRD's session to FRR restarted drops them
// (Peer Down) and brings them again; the counters say so.
func TestFRR(t *testing.T) {
	frrtest.Require(t)
	birdtest.Require(t)
	l, rib := listen(t, "post", "127.0.0.0/8")
	f := frrtest.Start(t, frrConf, l.Addr().(*net.TCPAddr).Port)
	b := birdtest.Start(t, birdToFRR, f.Port)
	router := netip.MustParseAddr("127.0.0.1") // FRR's BMP source, the kernel's choice toward flowdex's 127.0.0.1
	monitored := netip.MustParseAddr("127.0.0.2")
	routesOf := func() int {
		if v := rib.Find(router); v != nil {
			return v.Len()
		}
		return 0
	}
	b.WaitFor("5 routes over BMP", func() bool { return routesOf() == 5 })
	v := rib.Find(router)
	for _, tt := range []struct {
		ip   string
		want routes.Attrs
	}{
		{"203.0.113.9", routes.Attrs{ASPath: "64510_64511", StdComm: "64500:1_64500:2", ExtComm: "RT:64500:7", LrgComm: "64500:1:2",
			LocalPref: 200, MED: 50, NextHop: netip.MustParseAddr("192.0.2.1"), PeerAS: 64510, OriginAS: 64511}},
		{"198.51.100.9", routes.Attrs{ASPath: "4200000001", LocalPref: 100, NextHop: netip.MustParseAddr("192.0.2.1"), PeerAS: 4200000001, OriginAS: 4200000001}},
		{"198.51.100.200", routes.Attrs{ASPath: "64520", LocalPref: 100, NextHop: netip.MustParseAddr("192.0.2.1"), PeerAS: 64520, OriginAS: 64520}},
		{"2001:db8:100::1", routes.Attrs{ASPath: "64530", StdComm: "64530:9", LocalPref: 300, NextHop: netip.MustParseAddr("2001:db8::fe"), PeerAS: 64530, OriginAS: 64530}},
		{"2001:db8:2ff::1", routes.Attrs{ASPath: "64540", LocalPref: 100, NextHop: netip.MustParseAddr("2001:db8::fe"), PeerAS: 64540, OriginAS: 64540}},
	} {
		got, ok := v.Lookup(netip.MustParseAddr(tt.ip))
		if !ok || got.Attrs != tt.want {
			t.Errorf("%s: %+v %v\n want %+v", tt.ip, got, ok, tt.want)
		}
	}
	st := l.Routers()
	if len(st) != 1 || st[0].Address != router || st[0].SysName != "frr-edge" || st[0].Routes != 5 || len(st[0].Peers) != 1 ||
		st[0].Peers[0].Address != monitored || st[0].Peers[0].ASN != 64500 || !st[0].Peers[0].Up || st[0].Peers[0].Routes != 5 {
		t.Errorf("routers: %+v", st)
	}

	// withdrawals
	b.Ctl("disable", "s6")
	b.WaitFor("IPv6 routes withdrawn", func() bool { return routesOf() == 3 })
	if _, ok := v.Lookup(netip.MustParseAddr("2001:db8:100::1")); ok {
		t.Error("a withdrawn route still found")
	}
	// BIRD's session to FRR restarted: Peer Down drops the routes, Peer
	// Up and Route Monitoring bring them back
	downs, ups := l.Stats().PeerDowns, l.Stats().PeerUps
	b.Ctl("restart", "frr")
	b.WaitFor("the peer down and up again", func() bool {
		s := l.Stats()
		return s.PeerDowns > downs && s.PeerUps > ups && routesOf() == 3
	})
	s := l.Stats()
	if s.Sessions != 1 || s.Initiations != 1 || s.RouteMonitoring < 3 || s.Announced < 8 || s.Withdrawn < 2 || s.StatsReports < 1 || len(s.Resets) != 0 {
		t.Errorf("counters: %+v", s)
	}
	if rib.AttrSets() != 3 {
		t.Errorf("%d attribute sets, want 3", rib.AttrSets())
	}
	// FRR's BMP target removed: the router's routes go (FRR 8.4 closes
	// the connection without a Termination message)
	f.Ctl("configure terminal", "router bgp 64500", "no bmp targets flowdex")
	b.WaitFor("the router's routes dropped", func() bool { return rib.Find(router) == nil && len(l.Routers()) == 0 })
	if s := l.Stats(); len(s.Resets) != 1 || s.Resets["closed"] != 1 {
		t.Errorf("resets: %+v", s.Resets)
	}
}
