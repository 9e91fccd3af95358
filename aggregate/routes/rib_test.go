package routes_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/routes/routestest"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// Routes are looked up by longest match in the peer's own table; a route
// announced again replaces the first; attribute sets are kept once and
// dropped with their last route; a peer that goes away takes its routes.
func TestRIB(t *testing.T) {
	r := routes.New()
	a := &routes.Attrs{ASPath: "64500_64501", PeerAS: 64500, OriginAS: 64501, LocalPref: 100}
	b := &routes.Attrs{ASPath: "64510", PeerAS: 64510, OriginAS: 64510, StdComm: "64510:1"}
	p1, p2 := r.Peer(addr("192.0.2.1")), r.Peer(addr("2001:db8::1"))
	if r.Peer(addr("192.0.2.1")) != p1 || r.Find(addr("192.0.2.9")) != nil {
		t.Fatal("peers: not one per address")
	}
	p1.Announce(pfx("10.0.0.0/8"), a)
	p1.Announce(pfx("10.1.0.0/16"), b)
	p1.Announce(pfx("2001:db8:1::/48"), a)
	p2.Announce(pfx("10.0.0.0/8"), b)
	for _, tt := range []struct {
		peer *routes.Peer
		ip   string
		want *routes.Attrs
		bits int // the route's prefix length
	}{
		{p1, "10.2.3.4", a, 8},
		{p1, "10.1.3.4", b, 16},
		{p1, "2001:db8:1::5", a, 48},
		{p1, "11.0.0.1", nil, 0},
		{p2, "10.1.3.4", b, 8},
	} {
		got, ok := tt.peer.Lookup(addr(tt.ip))
		if ok != (tt.want != nil) || ok && got.Attrs != *tt.want {
			t.Errorf("%s: %+v %v, want %+v", tt.ip, got, ok, tt.want)
		}
		got2, bits, ok2 := tt.peer.LookupNet(addr(tt.ip))
		if ok2 != ok || got2 != got || ok && bits != tt.bits || !ok && bits != 0 {
			t.Errorf("%s: LookupNet %+v /%d %v, want /%d", tt.ip, got2, bits, ok2, tt.bits)
		}
	}
	if n := r.AttrSets(); n != 2 {
		t.Errorf("%d attribute sets, want 2", n)
	}
	p1.Announce(pfx("10.1.0.0/16"), a) // replaced
	if got, _ := p1.Lookup(addr("10.1.3.4")); got.Attrs != *a {
		t.Errorf("replaced route: %+v", got)
	}
	if !p1.Withdraw(pfx("10.1.0.0/16")) || p1.Withdraw(pfx("10.1.0.0/16")) {
		t.Error("withdraw: not once")
	}
	if got, _ := p1.Lookup(addr("10.1.3.4")); got.Attrs != *a {
		t.Errorf("after the withdrawal, the /8: %+v", got)
	}
	// a peer is found by its BGP identifier too, its address first
	r.Identify(addr("10.255.0.1"), addr("192.0.2.1"))
	r.Identify(addr("192.0.2.1"), addr("2001:db8::1")) // another's address: that peer wins
	if r.Find(addr("10.255.0.1")) != p1 || r.Find(addr("192.0.2.1")) != p1 || r.Find(addr("10.255.0.2")) != nil {
		t.Error("peers by identifier: not found, or found wrongly")
	}
	r.Drop(addr("2001:db8::1"))
	if r.Find(addr("2001:db8::1")) != nil || r.AttrSets() != 1 {
		t.Errorf("dropped peer: still found, or %d attribute sets, want 1", r.AttrSets())
	}
	if p1.Len() != 2 {
		t.Errorf("%d routes, want 2", p1.Len())
	}
	r.Drop(addr("192.0.2.1"))
	if r.Find(addr("10.255.0.1")) != nil {
		t.Error("a dropped peer still found by its identifier")
	}
	if p1.Len() != 0 {
		t.Errorf("%d routes of a dropped peer", p1.Len())
	}
}

// A generated table loads with its attribute sets shared, and lookups run
// beside announcements and withdrawals (go test -race).
func TestRIBConcurrent(t *testing.T) {
	tab := routestest.Generate(1, 20000, 4000)
	r := routes.New()
	p := r.Peer(addr("192.0.2.1"))
	addrs := tab.Addrs(2, 5000)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for _, a := range addrs {
				p.Lookup(a)
			}
		})
	}
	for _, rt := range tab.Routes {
		p.Announce(rt.Prefix, &tab.Attrs[rt.Attrs])
	}
	wg.Wait()
	if p.Len() != len(tab.Routes) {
		t.Fatalf("%d routes, want %d", p.Len(), len(tab.Routes))
	}
	distinct := map[routes.Attrs]bool{}
	for _, rt := range tab.Routes {
		distinct[tab.Attrs[rt.Attrs]] = true
	}
	if r.AttrSets() != len(distinct) {
		t.Errorf("%d attribute sets for %d distinct", r.AttrSets(), len(distinct))
	}
	for _, a := range addrs {
		if _, ok := p.Lookup(a); !ok {
			t.Fatalf("%s: no route, though generated inside one", a)
		}
	}
	for _, rt := range tab.Routes {
		p.Withdraw(rt.Prefix)
	}
	if p.Len() != 0 || r.AttrSets() != 0 {
		t.Errorf("after withdrawing all: %d routes, %d attribute sets", p.Len(), r.AttrSets())
	}
}

// The texts of a peer's routes go with its last attribute set that has
// them (flow.FreeLabels, after their release), and those another peer's
// routes still have stay.
func TestRIBTextsFreed(t *testing.T) {
	r := routes.New()
	gone := &routes.Attrs{ASPath: "rib-texts-test_64501", StdComm: "64500:777"}
	stays := &routes.Attrs{ASPath: "rib-texts-test_64502", StdComm: "64500:777"}
	p1, p2 := r.Peer(addr("192.0.2.1")), r.Peer(addr("192.0.2.2"))
	p1.Announce(pfx("10.0.0.0/8"), gone)
	p2.Announce(pfx("10.0.0.0/8"), stays)
	rt, _ := p1.Lookup(addr("10.0.0.1"))
	path, comm := rt.ASPathID, rt.StdCommID
	r.Drop(addr("192.0.2.1"))
	flow.FreeLabels(time.Now().Add(time.Second))
	if flow.LabelText(path) != "" || flow.LabelText(comm) != "64500:777" {
		t.Errorf("after the drop: path %q (want it freed), communities %q (want kept)", flow.LabelText(path), flow.LabelText(comm))
	}
	if rt, _ := p2.Lookup(addr("10.0.0.1")); flow.LabelText(rt.ASPathID) != "rib-texts-test_64502" {
		t.Errorf("the other peer's path: %q", flow.LabelText(rt.ASPathID))
	}
}
