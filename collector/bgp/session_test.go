package bgp

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// fakePeer is a BGP speaker made of GoBGP's messages, for what BIRD cannot
// be made to send (a malformed UPDATE, too many routes, silence).
type fakePeer struct {
	t    *testing.T
	conn net.Conn
}

// dialPeer connects from local (127.0.0.x) and opens a session with hold
// time hold (seconds), AS 64500.
func dialPeer(t *testing.T, l *Listener, local string, hold uint16) *fakePeer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &fakePeer{t: t, conn: conn}
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapFourOctetASNumber(64500)}
	p.send(bgp.NewBGPOpenMessage(64500, hold, "192.0.2.77", []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}))
	if m := p.read(); m.Header.Type != bgp.BGP_MSG_OPEN {
		t.Fatalf("got message type %d, want OPEN", m.Header.Type)
	}
	if m := p.read(); m.Header.Type != bgp.BGP_MSG_KEEPALIVE {
		t.Fatalf("got message type %d, want KEEPALIVE", m.Header.Type)
	}
	p.send(bgp.NewBGPKeepAliveMessage())
	return p
}

func (p *fakePeer) send(m *bgp.BGPMessage) {
	p.t.Helper()
	b, err := m.Serialize()
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

func (p *fakePeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// read reads a message within 15 seconds.
func (p *fakePeer) read() *bgp.BGPMessage {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	h := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(p.conn, h); err != nil {
		p.t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(h[16:]))
	copy(b, h)
	if _, err := io.ReadFull(p.conn, b[len(h):]); err != nil {
		p.t.Fatal(err)
	}
	m, err := bgp.ParseBGPMessage(b)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

// readNotification skips keepalives to the NOTIFICATION, then expects the
// connection closed.
func (p *fakePeer) readNotification() *bgp.BGPNotification {
	p.t.Helper()
	for {
		m := p.read()
		if n, ok := m.Body.(*bgp.BGPNotification); ok {
			if _, err := p.conn.Read(make([]byte, 1)); err != io.EOF {
				p.t.Errorf("after the NOTIFICATION: %v, want the connection closed", err)
			}
			return n
		}
	}
}

func update(nlri ...string) *bgp.BGPMessage {
	var ps []*bgp.IPAddrPrefix
	for _, s := range nlri {
		p := netip.MustParsePrefix(s)
		ps = append(ps, bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String()))
	}
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64501, 64502})}),
		bgp.NewPathAttributeNextHop("192.0.2.77"),
		bgp.NewPathAttributeLocalPref(100),
	}
	return bgp.NewBGPUpdateMessage(nil, attrs, ps)
}

var loopback = PeerConfiguration{Prefix: netip.MustParsePrefix("127.0.0.0/8"), ASN: 64500}

// A malformed UPDATE resets its session (NOTIFICATION, routes dropped,
// counted); another peer's session and routes go on.
func TestMalformedUpdate(t *testing.T) {
	l, rib := listen(t, loopback)
	good := dialPeer(t, l, "127.0.0.4", 90)
	good.send(update("10.4.0.0/16"))
	bad := dialPeer(t, l, "127.0.0.3", 90)
	bad.send(update("10.3.0.0/16"))
	waitRoutes(t, l, map[string]int{"127.0.0.3": 1, "127.0.0.4": 1})

	b, err := update("10.3.1.0/24").Serialize()
	if err != nil {
		t.Fatal(err)
	}
	// the path attributes' length runs past the message
	off := bgp.BGP_HEADER_LENGTH + 2 + int(binary.BigEndian.Uint16(b[bgp.BGP_HEADER_LENGTH:]))
	binary.BigEndian.PutUint16(b[off:], binary.BigEndian.Uint16(b[off:])+40)
	bad.write(b)
	if n := bad.readNotification(); n.ErrorCode != bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR {
		t.Errorf("NOTIFICATION %d/%d, want an UPDATE message error", n.ErrorCode, n.ErrorSubcode)
	}
	waitRoutes(t, l, map[string]int{"127.0.0.4": 1})
	if rib.Find(netip.MustParseAddr("127.0.0.3")) != nil {
		t.Error("the reset peer's routes are still in the RIB")
	}
	if got := l.Stats().Resets["malformed"]; got != 1 {
		t.Errorf("%d malformed resets, want 1", got)
	}
	good.send(update("10.4.1.0/24"))
	waitRoutes(t, l, map[string]int{"127.0.0.4": 2})
}

// A peer past max_prefixes is closed with Cease (maximum number of prefixes
// reached); an address outside the peers' prefixes is refused; a peer that
// goes silent is closed when its hold time runs out.
func TestSessionLimits(t *testing.T) {
	l, _ := listen(t, PeerConfiguration{Prefix: netip.MustParsePrefix("127.0.0.5/32"), MaxPrefixes: 2},
		PeerConfiguration{Prefix: netip.MustParsePrefix("127.0.0.6/32")})
	p := dialPeer(t, l, "127.0.0.5", 90)
	p.send(update("10.5.0.0/24", "10.5.1.0/24", "10.5.2.0/24"))
	if n := p.readNotification(); n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED {
		t.Errorf("NOTIFICATION %d/%d, want Cease, maximum number of prefixes", n.ErrorCode, n.ErrorSubcode)
	}

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}
	conn, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a connection from no peer's address: %v, want it closed", err)
	}
	conn.Close()

	silent := dialPeer(t, l, "127.0.0.6", 3) // hold time 3s: flowdex takes the smaller
	if n := silent.readNotification(); n.ErrorCode != bgp.BGP_ERROR_HOLD_TIMER_EXPIRED {
		t.Errorf("NOTIFICATION %d/%d, want hold timer expired", n.ErrorCode, n.ErrorSubcode)
	}
	st := l.Stats()
	if st.Refused != 1 || st.Resets["max_prefixes"] != 1 || st.Resets["hold_expired"] != 1 {
		t.Errorf("counters: %+v", st)
	}
}

// waitRoutes waits until the established peers and their routes are want.
func waitRoutes(t *testing.T, l *Listener, want map[string]int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		got := map[string]int{}
		for _, p := range l.Peers() {
			if p.Established {
				got[p.Address.String()] = p.Routes
			}
		}
		if len(got) == len(want) {
			same := true
			for k, v := range want {
				same = same && got[k] == v
			}
			if same {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("peers and routes %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
