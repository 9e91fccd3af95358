package routes_test

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/routes/routestest"
)

// A merged view takes, for each prefix, the best of its sources' routes:
// the highest local preference, then the shortest AS path, the lowest MED,
// the lowest source address; a source's withdrawal or its going away puts
// the next best in its place, and its attribute sets go with their last
// route.
func TestMergedView(t *testing.T) {
	r := routes.New()
	v := r.Peer(addr("192.0.2.1"))
	s1, s2, s3 := addr("198.51.100.1"), addr("198.51.100.2"), addr("2001:db8::3")
	lp200 := &routes.Attrs{ASPath: "64501_64502_64503", LocalPref: 200, MED: 50, PeerAS: 64501, OriginAS: 64503}
	short := &routes.Attrs{ASPath: "64510_{64511,64512,64513}", LocalPref: 100, MED: 90, PeerAS: 64510, OriginAS: 64513}
	long := &routes.Attrs{ASPath: "(65001_65002)_64520_64521_64522", LocalPref: 100, MED: 10, PeerAS: 65001, OriginAS: 64522}
	lowMED := &routes.Attrs{ASPath: "64530_64531", LocalPref: 100, MED: 5, PeerAS: 64530, OriginAS: 64531}
	highMED := &routes.Attrs{ASPath: "64540_64541", LocalPref: 100, MED: 6, PeerAS: 64540, OriginAS: 64541}
	p := pfx("10.0.0.0/8")
	lookup := func(ip string) *routes.Attrs {
		t.Helper()
		rt, ok := v.Lookup(addr(ip))
		if !ok {
			return nil
		}
		return &rt.Attrs
	}
	check := func(what, ip string, want *routes.Attrs) {
		t.Helper()
		if got := lookup(ip); (got == nil) != (want == nil) || got != nil && *got != *want {
			t.Errorf("%s: %s takes %+v, want %+v", what, ip, got, want)
		}
	}
	if !v.AnnounceFrom(s1, p, long) || !v.AnnounceFrom(s2, p, short) {
		t.Fatal("a first announcement is not new")
	}
	// a set counts one AS: 2 against the confederation's path of 3
	check("shorter path", "10.1.1.1", short)
	if !v.AnnounceFrom(s3, p, lp200) {
		t.Fatal("a first announcement is not new")
	}
	check("higher local preference over a shorter path", "10.1.1.1", lp200)
	if v.AnnounceFrom(s3, p, highMED) {
		t.Error("a replaced route counted as new")
	}
	check("replaced: lower MED at equal path length", "10.1.1.1", highMED)
	v.AnnounceFrom(s2, p, lowMED)
	check("lower MED again", "10.1.1.1", lowMED)
	tagged := *lowMED
	tagged.StdComm = "64530:3" // equal for the choice, s3's
	v.AnnounceFrom(s3, p, &tagged)
	check("tie: the lower source address", "10.1.1.1", lowMED)
	if v.Len() != 1 {
		t.Errorf("%d routes, want 1 prefix", v.Len())
	}
	if !v.WithdrawFrom(s2, p) || v.WithdrawFrom(s2, p) {
		t.Error("withdraw: not once")
	}
	check("the next best after a withdrawal", "10.1.1.1", &tagged)
	v.AnnounceFrom(s1, pfx("10.1.0.0/16"), short)
	v.AnnounceFrom(s3, pfx("2001:db8:1::/48"), lp200)
	check("longest match", "10.1.2.3", short)
	check("IPv6", "2001:db8:1::9", lp200)
	if n := v.DropSource(s3); n != 2 {
		t.Errorf("DropSource: %d routes, want 2", n)
	}
	check("s3 gone, s1's route", "10.2.0.1", long)
	check("s3 gone, IPv6", "2001:db8:1::9", nil)
	if n := r.AttrSets(); n != 2 { // long, short
		t.Errorf("%d attribute sets, want 2 (s1's)", n)
	}
	if v.WithdrawFrom(s1, pfx("10.0.0.0/8")); lookup("10.2.0.1") != nil || v.Len() != 1 {
		t.Errorf("the last candidate withdrawn: still a route, or %d routes", v.Len())
	}
	r.Drop(addr("192.0.2.1"))
	if r.AttrSets() != 0 || r.Find(addr("192.0.2.1")) != nil {
		t.Errorf("dropped view: %d attribute sets, or still found", r.AttrSets())
	}
}

// Sources announce the same generated table with different attributes
// beside lookups (go test -race); each source's going away leaves the
// others' routes, and the last's leaves nothing.
func TestMergedViewConcurrent(t *testing.T) {
	tab := routestest.Generate(5, 5000, 1000)
	r := routes.New()
	v := r.Peer(addr("192.0.2.1"))
	srcs := []netip.Addr{addr("198.51.100.1"), addr("198.51.100.2"), addr("198.51.100.3")}
	addrs := tab.Addrs(6, 2000)
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, a := range addrs {
			v.Lookup(a)
		}
	})
	for i, src := range srcs {
		wg.Go(func() {
			for _, rt := range tab.Routes {
				a := tab.Attrs[rt.Attrs]
				a.LocalPref = uint32(100 + i)
				v.AnnounceFrom(src, rt.Prefix, &a)
			}
		})
	}
	wg.Wait()
	for _, a := range addrs {
		if rt, ok := v.Lookup(a); !ok || rt.LocalPref != 102 {
			t.Fatalf("%s: %+v %v, want the third source's (local preference 102)", a, rt, ok)
		}
	}
	for i, src := range srcs {
		if n := v.DropSource(src); n != len(tab.Routes) {
			t.Errorf("DropSource: %d routes, want %d", n, len(tab.Routes))
		}
		if want := 0; i < 2 {
			if v.Len() != len(tab.Routes) {
				t.Errorf("after %d sources gone: %d routes, want %d", i+1, v.Len(), len(tab.Routes))
			}
		} else if v.Len() != want || r.AttrSets() != 0 {
			t.Errorf("all gone: %d routes, %d attribute sets", v.Len(), r.AttrSets())
		}
	}
}

// LookupVia picks, among a merged view's candidates to the longest prefix,
// the one whose next hop is the flow's BGP next hop (pmacct's choice among
// ADD-PATH paths), else the best; a session's peer has one route a prefix.
func TestLookupVia(t *testing.T) {
	r := routes.New()
	v := r.Peer(addr("192.0.2.1"))
	a := &routes.Attrs{ASPath: "64500", LocalPref: 200, NextHop: addr("192.0.2.10"), PeerAS: 64500, OriginAS: 64500}
	b := &routes.Attrs{ASPath: "64510", LocalPref: 100, NextHop: addr("192.0.2.20"), PeerAS: 64510, OriginAS: 64510}
	v.AnnounceFrom(addr("0.0.0.1"), pfx("10.0.0.0/8"), a)
	v.AnnounceFrom(addr("0.0.0.2"), pfx("10.0.0.0/8"), b)
	v.AnnounceFrom(addr("0.0.0.2"), pfx("10.1.0.0/16"), b)
	for _, tt := range []struct {
		ip, nh string
		want   *routes.Attrs
		bits   int
	}{
		{"10.9.9.9", "192.0.2.20", b, 8},
		{"10.9.9.9", "192.0.2.10", a, 8},
		{"10.9.9.9", "192.0.2.99", a, 8}, // no candidate via it: the best
		{"10.9.9.9", "", a, 8},
		{"10.1.9.9", "192.0.2.10", b, 16}, // the longest prefix first
	} {
		var nh netip.Addr
		if tt.nh != "" {
			nh = addr(tt.nh)
		}
		got, bits, ok := v.LookupVia(addr(tt.ip), nh)
		if !ok || got.Attrs != *tt.want || bits != tt.bits {
			t.Errorf("%s via %s: %+v /%d %v, want %+v /%d", tt.ip, tt.nh, got, bits, ok, tt.want, tt.bits)
		}
	}
	s := r.Peer(addr("192.0.2.2"))
	s.Announce(pfx("10.0.0.0/8"), b)
	if got, _, _ := s.LookupVia(addr("10.9.9.9"), addr("192.0.2.10")); got.Attrs != *b {
		t.Errorf("a session's peer: %+v", got)
	}
	if _, _, ok := v.LookupVia(addr("11.0.0.1"), netip.Addr{}); ok {
		t.Error("a route where there is none")
	}
	// ADD-PATH paths: by next hop only
	v.SelectByNextHop()
	if _, _, ok := v.LookupVia(addr("10.9.9.9"), addr("192.0.2.99")); ok {
		t.Error("ADD-PATH paths: a path where none has the next hop")
	}
	if _, _, ok := v.LookupVia(addr("10.9.9.9"), netip.Addr{}); ok {
		t.Error("ADD-PATH paths: a path without a next hop")
	}
	if got, _, ok := v.LookupVia(addr("10.9.9.9"), addr("192.0.2.20")); !ok || got.Attrs != *b {
		t.Errorf("ADD-PATH paths via 192.0.2.20: %+v %v", got, ok)
	}
}
