package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/flowdex/flowdex/aggregate/routes/routestest"
)

// speakerAS is the AS of the bench's BGP speakers and of the collectors:
// iBGP sessions, as a route reflector's clients have with pmacct.
const speakerAS = 64500

// table is one speaker's routes as the UPDATE messages that carry them,
// serialized once and sent to every collector.
type table struct {
	addr    netip.Addr // the speaker's address, 127.0.0.(10+i)
	updates []byte
}

// speakerAddr is the address of the i-th speaker.
func speakerAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)}) }

// makeTable serializes t as the i-th speaker announces it: every path
// through the speaker's own upstream AS (65001+i) and with its own next
// hop, so that no attribute set is shared between speakers, as between
// real routers' tables.
func makeTable(t *routestest.Table, i int) (*table, error) {
	addr := speakerAddr(i)
	nh6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(10 + i)})
	b, err := t.Updates(uint32(65001+i), addr, nh6)
	if err != nil {
		return nil, err
	}
	return &table{addr: addr, updates: b}, nil
}

// speak opens a session from t's address to the collector at to, sends
// the table, and keeps the session up (keepalives) until stop is closed
// or the collector closes it. sent is closed when the table is written.
func speak(t *table, to string, sent chan<- struct{}, stop <-chan struct{}) error {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(t.addr, 0)), Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if conn, err = d.Dial("tcp", to); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("speaker %s: %w", t.addr, err)
		}
	}
	defer conn.Close()
	go func() { <-stop; conn.Close() }()
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC), bgp.NewCapFourOctetASNumber(speakerAS)}
	open := bgp.NewBGPOpenMessage(speakerAS, 240, netip.AddrFrom4([4]byte{10, 0, 0, t.addr.As4()[3]}).String(),
		[]bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	keepalive, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	b, err := open.Serialize()
	if err != nil {
		return err
	}
	if _, err := conn.Write(append(b, keepalive...)); err != nil {
		return fmt.Errorf("speaker %s: %w", t.addr, err)
	}
	r := bufio.NewReader(conn)
	// the collector's OPEN and KEEPALIVE, then whatever it sends is read
	// and dropped while the table goes out
	for _, want := range []uint8{bgp.BGP_MSG_OPEN, bgp.BGP_MSG_KEEPALIVE} {
		typ, err := readMessage(r)
		if err != nil {
			return fmt.Errorf("speaker %s: waiting for the collector's %d: %w", t.addr, want, err)
		}
		if typ != want {
			return fmt.Errorf("speaker %s: message type %d, want %d", t.addr, typ, want)
		}
	}
	go func() {
		for {
			if _, err := readMessage(r); err != nil {
				return
			}
		}
	}()
	if _, err := conn.Write(t.updates); err != nil {
		return fmt.Errorf("speaker %s: sending the table: %w", t.addr, err)
	}
	close(sent)
	tick := time.NewTicker(60 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
			if _, err := conn.Write(keepalive); err != nil {
				return nil // the collector ended
			}
		}
	}
}

// readMessage reads one BGP message and returns its type.
func readMessage(r *bufio.Reader) (uint8, error) {
	var h [19]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h[16:]))
	if n < 19 {
		return 0, fmt.Errorf("message length %d", n)
	}
	if _, err := r.Discard(n - 19); err != nil {
		return 0, err
	}
	return h[18], nil
}
