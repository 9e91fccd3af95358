package bgp

import (
	"net/netip"
	"testing"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/internal/birdtest"
	"github.com/flowdex/flowdex/internal/frrtest"
)

// birdToFRR announces to FRR's bgpd over iBGP routes with paths,
// communities, large and extended communities, MED and local preference;
// the next hops are not loopback addresses, which FRR takes for martians.
const birdToFRR = `router id 192.0.2.254;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 { ipv4; route 203.0.113.0/24 blackhole; route 198.51.100.0/24 blackhole; }
protocol static s6 { ipv6; route 2001:db8:100::/48 blackhole; }
filter to_frr {
  if net = 203.0.113.0/24 then {
    bgp_path.prepend(64511); bgp_path.prepend(64510);
    bgp_community.add((64500,2)); bgp_community.add((64500,1));
    bgp_large_community.add((64500,1,2)); bgp_ext_community.add((rt, 64500, 7));
    bgp_med = 50; bgp_local_pref = 200;
  }
  if net = 198.51.100.0/24 then { bgp_path.prepend(4200000001); bgp_local_pref = 100; }
  if net = 2001:db8:100::/48 then { bgp_path.prepend(64530); bgp_community.add((64530,9)); bgp_local_pref = 300; }
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

// frrReflector is a bgpd that BIRD (127.0.0.2) peers with, and that
// reflects BIRD's routes to flowdex (its client) over BGP: FRR, not BIRD,
// is the router here.
const frrReflector = `frr defaults traditional
hostname frr-rr
log file %[1]s/bgpd.log informational
router bgp 64500
 bgp router-id 192.0.2.253
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 127.0.0.2 remote-as 64500
 neighbor 127.0.0.2 passive
 neighbor 127.0.0.2 timers 3 9
 neighbor 127.0.0.1 remote-as 64500
 neighbor 127.0.0.1 port %[2]d
 neighbor 127.0.0.1 update-source 127.0.0.3
 neighbor 127.0.0.1 timers 3 9
 neighbor 127.0.0.1 timers connect 1
 address-family ipv4 unicast
  neighbor 127.0.0.2 activate
  neighbor 127.0.0.1 activate
  neighbor 127.0.0.1 route-reflector-client
 exit-address-family
 address-family ipv6 unicast
  neighbor 127.0.0.2 activate
  neighbor 127.0.0.1 activate
  neighbor 127.0.0.1 route-reflector-client
 exit-address-family
exit
`

// FRR's bgpd peers with flowdex and announces the routes it has (learnt
// from BIRD) with every attribute; a route BIRD withdraws, FRR withdraws.
func TestFRRRoutes(t *testing.T) {
	frrtest.Require(t)
	birdtest.Require(t)
	l, rib := listen(t, PeerConfiguration{Prefix: netip.MustParsePrefix("127.0.0.3/32"), ASN: 64500})
	f := frrtest.Start(t, frrReflector, port(l))
	b := birdtest.Start(t, birdToFRR, f.Port)
	frr := netip.MustParseAddr(frrtest.Addr)
	routesOf := func() int {
		if p := rib.Find(frr); p != nil {
			return p.Len()
		}
		return 0
	}
	f.WaitFor("3 routes from FRR", func() bool { return routesOf() == 3 })
	p := rib.Find(frr)
	for _, tt := range []struct {
		ip   string
		want routes.Attrs
	}{
		{"203.0.113.9", routes.Attrs{ASPath: "64510_64511", StdComm: "64500:1_64500:2", ExtComm: "RT:64500:7", LrgComm: "64500:1:2",
			LocalPref: 200, MED: 50, NextHop: netip.MustParseAddr("192.0.2.1"), PeerAS: 64510, OriginAS: 64511}},
		{"198.51.100.9", routes.Attrs{ASPath: "4200000001", LocalPref: 100, NextHop: netip.MustParseAddr("192.0.2.1"), PeerAS: 4200000001, OriginAS: 4200000001}},
		{"2001:db8:100::1", routes.Attrs{ASPath: "64530", StdComm: "64530:9", LocalPref: 300, NextHop: netip.MustParseAddr("2001:db8::fe"), PeerAS: 64530, OriginAS: 64530}},
	} {
		got, ok := p.Lookup(netip.MustParseAddr(tt.ip))
		if !ok || got.Attrs != tt.want {
			t.Errorf("%s: %+v %v\n want %+v", tt.ip, got, ok, tt.want)
		}
	}
	if st := l.Peers(); len(st) != 1 || st[0].State != "established" || st[0].Routes != 3 {
		t.Errorf("peers: %+v", st)
	}
	b.Ctl("disable", "s6")
	f.WaitFor("the IPv6 route withdrawn", func() bool { return routesOf() == 2 })
}
