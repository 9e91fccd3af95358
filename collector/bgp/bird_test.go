package bgp

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/internal/birdtest"
	"golang.org/x/sys/unix"
)

// birdConf announces over iBGP (so that local preference goes too) three
// IPv4 and two IPv6 routes with paths, communities, large communities,
// extended communities, MED and local preference.
const birdConf = `router id 192.0.2.254;
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
filter to_flowdex {
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
protocol bgp flowdex {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.1 port %[2]d as 64500;
  hold time 9;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 { import none; export filter to_flowdex; next hop self; };
  ipv6 { import none; export filter to_flowdex; next hop address 2001:db8::fe; };
}
`

func listen(t *testing.T, peers ...PeerConfiguration) (*Listener, *routes.RIB) {
	t.Helper()
	rib := routes.New()
	cfg := DefaultConfiguration()
	cfg.Listen, cfg.ASN, cfg.HoldTime, cfg.Peers = "127.0.0.1:0", 64500, 9*time.Second, peers
	l, err := New(cfg, rib, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l, rib
}

func port(l *Listener) int { return l.Addr().(*net.TCPAddr).Port }

// BIRD's routes reach the RIB with every attribute; a protocol disabled in
// BIRD withdraws its routes; a session restarted drops and learns them
// again; flowdex's counters say so.
func TestBIRDRoutes(t *testing.T) {
	l, rib := listen(t, PeerConfiguration{Prefix: netip.MustParsePrefix("127.0.0.0/8"), ASN: 64500})
	b := birdtest.Start(t, birdConf, port(l))
	peerAddr := netip.MustParseAddr("127.0.0.2")
	routesOf := func() int {
		if p := rib.Find(peerAddr); p != nil {
			return p.Len()
		}
		return 0
	}
	b.WaitFor("5 routes from BIRD", func() bool { return routesOf() == 5 })
	p := rib.Find(peerAddr)
	for _, tt := range []struct {
		ip   string
		want routes.Attrs
	}{
		{"203.0.113.9", routes.Attrs{ASPath: "64510_64511", StdComm: "64500:1_64500:2", ExtComm: "RT:64500:7", LrgComm: "64500:1:2",
			LocalPref: 200, MED: 50, NextHop: netip.MustParseAddr("127.0.0.2"), PeerAS: 64510, OriginAS: 64511}},
		{"198.51.100.9", routes.Attrs{ASPath: "4200000001", LocalPref: 100, NextHop: netip.MustParseAddr("127.0.0.2"), PeerAS: 4200000001, OriginAS: 4200000001}},
		{"198.51.100.200", routes.Attrs{ASPath: "64520", LocalPref: 100, NextHop: netip.MustParseAddr("127.0.0.2"), PeerAS: 64520, OriginAS: 64520}},
		{"2001:db8:100::1", routes.Attrs{ASPath: "64530", StdComm: "64530:9", LocalPref: 300, NextHop: netip.MustParseAddr("2001:db8::fe"), PeerAS: 64530, OriginAS: 64530}},
		{"2001:db8:2ff::1", routes.Attrs{ASPath: "64540", LocalPref: 100, NextHop: netip.MustParseAddr("2001:db8::fe"), PeerAS: 64540, OriginAS: 64540}},
	} {
		got, ok := p.Lookup(netip.MustParseAddr(tt.ip))
		if !ok || got.Attrs != tt.want {
			t.Errorf("%s: %+v %v\n want %+v", tt.ip, got, ok, tt.want)
		}
	}
	if st := l.Peers(); len(st) != 1 || st[0].State != "established" || st[0].ASN != 64500 || st[0].Routes != 5 {
		t.Errorf("peers: %+v", st)
	}

	// withdrawals
	b.Ctl("disable", "s6")
	b.WaitFor("IPv6 routes withdrawn", func() bool { return routesOf() == 3 })
	if _, ok := p.Lookup(netip.MustParseAddr("2001:db8:100::1")); ok {
		t.Error("a withdrawn route still found")
	}
	// a flap: BIRD closes the session (NOTIFICATION), flowdex drops the
	// routes, BIRD comes back and announces them again
	established := l.Stats().Established
	b.Ctl("restart", "flowdex")
	b.WaitFor("the session again", func() bool { return l.Stats().Established > established && routesOf() == 3 })
	st := l.Stats()
	if st.Resets["notification"] < 1 || st.Announced < 8 || st.Withdrawn < 2 || st.Updates < 2 {
		t.Errorf("counters: %+v", st)
	}
	if rib.AttrSets() != 3 {
		t.Errorf("%d attribute sets, want 3", rib.AttrSets())
	}
}

// a BIRD whose session to flowdex is signed with TCP MD5
const birdMD5 = `router id 192.0.2.254;
log "%[1]s/bird.log" all;
protocol device {}
protocol static s4 { ipv4; route 203.0.113.0/24 blackhole; }
protocol bgp flowdex {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.1 port %[2]d as 64500;
  password "s3cret-key";
  connect retry time 1;
  ipv4 { import none; export all; next hop self; };
}
`

// A peer prefix with a password signs its sessions with TCP MD5: BIRD,
// configured with the same key, establishes and announces; without the
// key on flowdex's side, the kernel drops BIRD's segments and no session
// comes up.
func TestBIRDMD5(t *testing.T) {
	signed := loopback
	signed.Password = "s3cret-key"
	cfg := DefaultConfiguration()
	cfg.Listen, cfg.ASN, cfg.Peers = "127.0.0.1:0", 64500, []PeerConfiguration{signed}
	probe, err := New(cfg, routes.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Start(); errors.Is(err, unix.ENOPROTOOPT) {
		// a kernel without TCP MD5 (this test's machine may be one): the
		// start fails, saying so, rather than run unsigned
		if !strings.Contains(err.Error(), "no TCP MD5 signatures") {
			t.Errorf("the refusal does not say why: %v", err)
		}
		t.Logf("kernel without TCP MD5: the start is refused (%v); BIRD's signed session not tried", err)
		return
	} else if err != nil {
		t.Fatal(err)
	}
	probe.Stop()
	l, rib := listen(t, signed)
	b := birdtest.Start(t, birdMD5, port(l))
	b.WaitFor("the signed session's route", func() bool {
		p := rib.Find(netip.MustParseAddr("127.0.0.2"))
		return p != nil && p.Len() == 1
	})

	plain, _ := listen(t, loopback)
	birdtest.Start(t, birdMD5, port(plain))
	time.Sleep(5 * time.Second)
	if st := plain.Stats(); st.Established != 0 || len(plain.Peers()) != 0 {
		t.Errorf("a session without the key: %+v %+v", st, plain.Peers())
	}
}

// birdAddPath has two routes to 203.0.113.0/24 (static protocols a and b,
// different paths and next hops) and sends both (ADD-PATH).
const birdAddPath = `router id 192.0.2.254;
log "%[1]s/bird.log" all;
protocol device {}
protocol static a { ipv4; route 203.0.113.0/24 blackhole; route 198.51.100.0/24 blackhole; }
protocol static b { ipv4; route 203.0.113.0/24 blackhole; }
filter to_flowdex {
  if proto = "a" then { bgp_path.prepend(64510); bgp_local_pref = 200; bgp_next_hop = 192.0.2.10; }
  if proto = "b" then { bgp_path.prepend(64520); bgp_local_pref = 100; bgp_next_hop = 192.0.2.20; }
  accept;
}
protocol bgp flowdex {
  local 127.0.0.2 port %[3]d as 64500;
  neighbor 127.0.0.1 port %[2]d as 64500;
  hold time 9;
  connect retry time 1;
  ipv4 { import none; export filter to_flowdex; add paths tx; };
}
`

// A peer sending ADD-PATH has its paths kept each: a flow takes the one
// whose next hop is its BGP next hop, none if no path has it (as pmacct);
// Lookup, without a next hop, the best (local preference); a path
// withdrawn leaves the other.
func TestBIRDAddPath(t *testing.T) {
	l, rib := listen(t, PeerConfiguration{Prefix: netip.MustParsePrefix("127.0.0.0/8"), ASN: 64500})
	b := birdtest.Start(t, birdAddPath, port(l))
	peerAddr := netip.MustParseAddr("127.0.0.2")
	paths := func() int {
		if p := rib.Find(peerAddr); p != nil {
			return p.Len()
		}
		return 0
	}
	b.WaitFor("2 prefixes from BIRD", func() bool { return paths() == 2 && l.Stats().Announced >= 3 })
	p := rib.Find(peerAddr)
	ip := netip.MustParseAddr("203.0.113.9")
	for _, tt := range []struct {
		nh, path string
	}{{"", ""}, {"192.0.2.20", "64520"}, {"192.0.2.10", "64510"}, {"192.0.2.99", ""}} {
		var nh netip.Addr
		if tt.nh != "" {
			nh = netip.MustParseAddr(tt.nh)
		}
		if rt, _, ok := p.LookupVia(ip, nh); ok != (tt.path != "") || ok && rt.ASPath != tt.path {
			t.Errorf("via %q: %+v %v, want path %q", tt.nh, rt, ok, tt.path)
		}
	}
	if rt, ok := p.Lookup(ip); !ok || rt.ASPath != "64510" || !p.ByNextHop() {
		t.Errorf("the best path: %+v %v (by next hop: %v)", rt, ok, p.ByNextHop())
	}
	b.Ctl("disable", "a")
	b.WaitFor("path a withdrawn", func() bool {
		rt, ok := p.Lookup(ip)
		return ok && rt.ASPath == "64520" && paths() == 1
	})
}
