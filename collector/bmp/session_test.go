package bmp

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	packet "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/bmp"

	"github.com/flowdex/flowdex/aggregate/routes"
)

func listen(t *testing.T, policy string, routers ...string) (*Listener, *routes.RIB) {
	t.Helper()
	rib := routes.New()
	cfg := DefaultConfiguration()
	cfg.Listen, cfg.Policy = "127.0.0.1:0", policy
	for _, r := range routers {
		cfg.Routers = append(cfg.Routers, netip.MustParsePrefix(r))
	}
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

// fakeRouter is a BMP speaker made of GoBGP's messages, for what FRR
// cannot be made to send (malformed messages, pre-policy and two-octet AS
// peers side by side).
type fakeRouter struct {
	t    *testing.T
	conn net.Conn
}

func dialRouter(t *testing.T, l *Listener, local string) *fakeRouter {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeRouter{t: t, conn: conn}
}

func (r *fakeRouter) send(m *bmp.BMPMessage) {
	r.t.Helper()
	b, err := m.Serialize()
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(b)
}

func (r *fakeRouter) write(b []byte) {
	r.t.Helper()
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// closed tells whether flowdex closed the connection within 5 seconds.
func (r *fakeRouter) closed() bool {
	r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err := r.conn.Read(b[:])
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func peerHeader(flags uint8, addr string, asn uint32) bmp.BMPPeerHeader {
	return *bmp.NewBMPPeerHeader(bmp.BMP_PEER_TYPE_GLOBAL, flags, 0, addr, asn, "192.0.2.200", 0)
}

func initiation(name string) *bmp.BMPMessage {
	return bmp.NewBMPInitiation([]bmp.BMPInfoTLVInterface{bmp.NewBMPInfoTLVString(bmp.BMP_INIT_TLV_TYPE_SYS_NAME, name)})
}

func peerUp(h bmp.BMPPeerHeader) *bmp.BMPMessage {
	open := packet.NewBGPOpenMessage(64500, 90, "192.0.2.200", nil)
	return bmp.NewBMPPeerUpNotification(h, "192.0.2.254", 179, 40000, open, open)
}

// update announces pfxs with the AS path (two-octet when as2) and local
// preference.
func update(as2 bool, path []uint32, lp uint32, pfxs ...string) *packet.BGPMessage {
	var seg packet.AsPathParamInterface = packet.NewAs4PathParam(packet.BGP_ASPATH_ATTR_TYPE_SEQ, path)
	if as2 {
		p16 := make([]uint16, len(path))
		for i, a := range path {
			p16[i] = uint16(a)
		}
		seg = packet.NewAsPathParam(packet.BGP_ASPATH_ATTR_TYPE_SEQ, p16)
	}
	attrs := []packet.PathAttributeInterface{
		packet.NewPathAttributeOrigin(0),
		packet.NewPathAttributeAsPath([]packet.AsPathParamInterface{seg}),
		packet.NewPathAttributeNextHop("192.0.2.9"),
		packet.NewPathAttributeLocalPref(lp),
	}
	var nlri []*packet.IPAddrPrefix
	for _, p := range pfxs {
		pp := netip.MustParsePrefix(p)
		nlri = append(nlri, packet.NewIPAddrPrefix(uint8(pp.Bits()), pp.Addr().String()))
	}
	return packet.NewBGPUpdateMessage(nil, attrs, nlri)
}

func withdraw(pfxs ...string) *packet.BGPMessage {
	var w []*packet.IPAddrPrefix
	for _, p := range pfxs {
		pp := netip.MustParsePrefix(p)
		w = append(w, packet.NewIPAddrPrefix(uint8(pp.Bits()), pp.Addr().String()))
	}
	return packet.NewBGPUpdateMessage(w, nil, nil)
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10s", what)
		}
	}
}

func routesOf(rib *routes.RIB, router string) int {
	if v := rib.Find(netip.MustParseAddr(router)); v != nil {
		return v.Len()
	}
	return 0
}

// A router's view merges its monitored peers' post-policy routes, the
// best of each prefix taken; pre-policy ones are counted and left; a
// two-octet peer's path (the A flag) is read so; a Peer Down drops its
// peer's routes and the other's take their place; a Termination drops
// the router's; a connection from outside the routers' prefixes is
// refused.
func TestMonitoredPeers(t *testing.T) {
	l, rib := listen(t, "post", "127.0.0.0/29")
	const post, as2 = bmp.BMP_PEER_FLAG_POST_POLICY, bmp.BMP_PEER_FLAG_TWO_AS
	r := dialRouter(t, l, "127.0.0.5")
	r.send(initiation("edge1"))
	p1, p2 := peerHeader(post, "198.51.100.1", 64501), peerHeader(post|as2, "198.51.100.2", 64502)
	r.send(peerUp(p1))
	r.send(peerUp(p2))
	r.send(bmp.NewBMPRouteMonitoring(p1, update(false, []uint32{64501, 4200000001}, 100, "203.0.113.0/24", "198.51.100.0/24")))
	r.send(bmp.NewBMPRouteMonitoring(p2, update(true, []uint32{64502, 64503}, 200, "203.0.113.0/24")))
	// pre-policy: left
	r.send(bmp.NewBMPRouteMonitoring(peerHeader(0, "198.51.100.1", 64501), update(false, []uint32{64501}, 900, "192.0.2.0/24", "203.0.113.0/24")))
	r.send(bmp.NewBMPStatisticsReport(p1, []bmp.BMPStatsTLVInterface{bmp.NewBMPStatsTLV32(bmp.BMP_STAT_TYPE_REJECTED, 3)}))
	waitFor(t, "the statistics report", func() bool { return l.Stats().StatsReports == 1 })
	v := rib.Find(netip.MustParseAddr("127.0.0.5"))
	if v == nil || v.Len() != 2 {
		t.Fatalf("view: %v", v)
	}
	lookup := func(ip string) string {
		rt, ok := v.Lookup(netip.MustParseAddr(ip))
		if !ok {
			return ""
		}
		return rt.ASPath
	}
	if got := lookup("203.0.113.1"); got != "64502_64503" {
		t.Errorf("the higher local preference's route: %q, want 64502_64503 (two-octet, read so)", got)
	}
	if got := lookup("198.51.100.7"); got != "64501_4200000001" {
		t.Errorf("198.51.100.0/24: %q", got)
	}
	if got := lookup("192.0.2.1"); got != "" {
		t.Errorf("a pre-policy route taken: %q", got)
	}
	st := l.Routers()
	if len(st) != 1 || st[0].SysName != "edge1" || st[0].Routes != 2 || len(st[0].Peers) != 2 ||
		st[0].Peers[0] != (PeerState{Address: netip.MustParseAddr("198.51.100.1"), ASN: 64501, Up: true, Routes: 2, Updates: 1}) ||
		st[0].Peers[1] != (PeerState{Address: netip.MustParseAddr("198.51.100.2"), ASN: 64502, Up: true, Routes: 1, Updates: 1}) {
		t.Errorf("routers: %+v", st)
	}

	r.send(bmp.NewBMPRouteMonitoring(p1, withdraw("198.51.100.0/24")))
	waitFor(t, "the withdrawal", func() bool { return v.Len() == 1 })
	r.send(bmp.NewBMPPeerDownNotification(p2, bmp.BMP_PEER_DOWN_REASON_REMOTE_NO_NOTIFICATION, nil, nil))
	waitFor(t, "the peer down", func() bool { return lookup("203.0.113.1") == "64501_4200000001" })
	if st := l.Routers(); len(st[0].Peers) != 1 {
		t.Errorf("a peer down still listed: %+v", st)
	}

	// another router, refused
	if out := dialRouter(t, l, "127.0.0.9"); !out.closed() {
		t.Error("a router outside the prefixes not refused")
	}
	r.send(bmp.NewBMPTermination([]bmp.BMPTermTLVInterface{bmp.NewBMPTermTLV16(bmp.BMP_TERM_TLV_TYPE_REASON, bmp.BMP_TERM_REASON_ADMIN)}))
	if !r.closed() {
		t.Error("the session not closed after a Termination")
	}
	waitFor(t, "the router gone", func() bool { return len(l.Routers()) == 0 })
	if rib.Find(netip.MustParseAddr("127.0.0.5")) != nil || rib.AttrSets() != 0 {
		t.Errorf("the router's routes kept after its Termination: %d attribute sets", rib.AttrSets())
	}
	want := Stats{Refused: 1, Sessions: 1, Resets: map[string]uint64{"terminated": 1}, Initiations: 1, Terminations: 1, PeerUps: 2, PeerDowns: 1,
		RouteMonitoring: 3, Ignored: map[string]uint64{"pre_policy": 1}, Announced: 3, Withdrawn: 1, StatsReports: 1}
	if got := l.Stats(); !equalStats(got, want) {
		t.Errorf("stats: %+v\nwant   %+v", got, want)
	}
}

func equalStats(a, b Stats) bool {
	return reflect.DeepEqual(a, b)
}

// With policy "pre", pre-policy routes are taken and post-policy ones
// left.
func TestPrePolicy(t *testing.T) {
	l, rib := listen(t, "pre", "127.0.0.0/8")
	r := dialRouter(t, l, "127.0.0.5")
	r.send(initiation("edge1"))
	r.send(bmp.NewBMPRouteMonitoring(peerHeader(0, "198.51.100.1", 64501), update(false, []uint32{64501}, 100, "192.0.2.0/24")))
	r.send(bmp.NewBMPRouteMonitoring(peerHeader(bmp.BMP_PEER_FLAG_POST_POLICY, "198.51.100.1", 64501), update(false, []uint32{64501}, 100, "203.0.113.0/24")))
	waitFor(t, "the messages", func() bool { return l.Stats().RouteMonitoring == 1 && l.Stats().Ignored["post_policy"] == 1 })
	v := rib.Find(netip.MustParseAddr("127.0.0.5"))
	if _, ok := v.Lookup(netip.MustParseAddr("192.0.2.1")); !ok || v.Len() != 1 {
		t.Errorf("pre-policy route not taken, or post-policy taken: %d routes", v.Len())
	}
}

// A malformed message closes its router's session, counted, the router's
// routes dropped; another router's session and routes go on, and the
// router that sent it can connect again.
func TestMalformed(t *testing.T) {
	l, rib := listen(t, "post", "127.0.0.0/8")
	good, bad := dialRouter(t, l, "127.0.0.5"), dialRouter(t, l, "127.0.0.6")
	h := peerHeader(bmp.BMP_PEER_FLAG_POST_POLICY, "198.51.100.1", 64501)
	for _, r := range []*fakeRouter{good, bad} {
		r.send(initiation("edge"))
		r.send(peerUp(h))
		r.send(bmp.NewBMPRouteMonitoring(h, update(false, []uint32{64501}, 100, "203.0.113.0/24")))
	}
	waitFor(t, "both routers' routes", func() bool { return routesOf(rib, "127.0.0.5") == 1 && routesOf(rib, "127.0.0.6") == 1 })
	for _, tt := range []struct {
		name string
		msg  []byte
	}{
		// a Route Monitoring whose UPDATE's AS_PATH segment claims 9
		// ASes and holds 1
		{"bad update", func() []byte {
			m := bmp.NewBMPRouteMonitoring(h, update(false, []uint32{64501}, 100, "203.0.113.0/24"))
			b, err := m.Serialize()
			if err != nil {
				t.Fatal(err)
			}
			for i := bmp.BMP_HEADER_SIZE + bmp.BMP_PEER_HEADER_SIZE; i+3 < len(b); i++ {
				if b[i] == 0x40 && b[i+1] == 2 && b[i+3] == packet.BGP_ASPATH_ATTR_TYPE_SEQ { // AS_PATH, its segment
					b[i+4] = 9
					return b
				}
			}
			t.Fatal("no AS_PATH")
			return nil
		}()},
		{"short peer header", []byte{3, 0, 0, 0, 10, bmp.BMP_MSG_ROUTE_MONITORING, 0, 0, 0, 0}},
		{"version 2", []byte{2, 0, 0, 0, 6, bmp.BMP_MSG_INITIATION}},
		{"length under the header", []byte{3, 0, 0, 0, 2, bmp.BMP_MSG_INITIATION}},
		{"unknown type", []byte{3, 0, 0, 0, 6, 42}},
	} {
		resets := l.Stats().Resets["malformed"]
		bad.write(tt.msg)
		if !bad.closed() {
			t.Fatalf("%s: the session not closed", tt.name)
		}
		waitFor(t, tt.name+": the reset counted, the bad router's routes dropped", func() bool {
			return l.Stats().Resets["malformed"] == resets+1 && rib.Find(netip.MustParseAddr("127.0.0.6")) == nil
		})
		if routesOf(rib, "127.0.0.5") != 1 {
			t.Fatalf("%s: the other router's routes gone", tt.name)
		}
		// connects again
		bad = dialRouter(t, l, "127.0.0.6")
		bad.send(initiation("edge"))
		bad.send(bmp.NewBMPRouteMonitoring(h, update(false, []uint32{64501}, 100, "203.0.113.0/24")))
		waitFor(t, "the router back", func() bool { return routesOf(rib, "127.0.0.6") == 1 })
	}
	good.send(bmp.NewBMPRouteMonitoring(h, update(false, []uint32{64501}, 100, "192.0.2.0/24")))
	waitFor(t, "the good router still applied", func() bool { return routesOf(rib, "127.0.0.5") == 2 })
}

// A router that connects again replaces its session (the old one may be
// half-open: BMP has no keepalives): the old routes are dropped before
// the new session's come.
func TestReplaced(t *testing.T) {
	l, rib := listen(t, "post", "127.0.0.0/8")
	h := peerHeader(bmp.BMP_PEER_FLAG_POST_POLICY, "198.51.100.1", 64501)
	old := dialRouter(t, l, "127.0.0.5")
	old.send(initiation("edge"))
	old.send(bmp.NewBMPRouteMonitoring(h, update(false, []uint32{64501}, 100, "203.0.113.0/24", "192.0.2.0/24")))
	waitFor(t, "the routes", func() bool { return routesOf(rib, "127.0.0.5") == 2 })
	r := dialRouter(t, l, "127.0.0.5")
	r.send(initiation("edge"))
	r.send(bmp.NewBMPRouteMonitoring(h, update(false, []uint32{64501}, 100, "198.51.100.0/24")))
	waitFor(t, "the new session's route alone", func() bool { return routesOf(rib, "127.0.0.5") == 1 && l.Stats().Resets["replaced"] == 1 })
	if !old.closed() {
		t.Error("the old session not closed")
	}
}
