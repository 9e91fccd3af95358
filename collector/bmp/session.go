package bmp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	packet "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/bmp"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/collector/bgp"
)

// reason is why a session ended.
type reason uint8

const (
	reasonClosed     reason = iota // the router closed the connection
	reasonTerminated               // the router sent a Termination
	reasonMalformed                // a message flowdex could not read
	reasonReplaced                 // the router connected again
	reasonShutdown                 // flowdex stopped
	numReasons
)

var reasonNames = [numReasons]string{"closed", "terminated", "malformed", "replaced", "shutdown"}

func (r reason) String() string { return reasonNames[r] }

// ignoredWhy is why a message's routes were left.
type ignoredWhy uint8

const (
	ignoredPrePolicy  ignoredWhy = iota // pre-policy, with policy "post"
	ignoredPostPolicy                   // post-policy, with policy "pre"
	ignoredAdjRIBOut                    // Adj-RIB-Out (RFC 8671's O flag)
	ignoredPeerType                     // a peer other than a global instance one (RD instance, local instance, Loc-RIB)
	ignoredMirroring                    // Route Mirroring
	numIgnored
)

var ignoredNames = [numIgnored]string{"pre_policy", "post_policy", "adj_rib_out", "peer_type", "route_mirroring"}

func (r ignoredWhy) String() string { return ignoredNames[r] }

// maxMessage bounds a BMP message: a Route Monitoring of an extended
// (65535-byte) UPDATE is under 66 KB, a Peer Up of two such OPENs and its
// information under 200 KB.
const maxMessage = 1 << 20

// session is one router's connection.
type session struct {
	l        *Listener
	conn     net.Conn
	addr     netip.Addr
	replaced atomic.Bool
	done     chan struct{} // closed when run returned: the routes are dropped

	mu      sync.Mutex // what state reads
	sysName string
	peers   map[netip.Addr]*monitored
	view    *routes.Peer
}

// monitored is a monitored peer: its routes' source in the router's view
// (bgp.Routes for ApplyUpdate).
type monitored struct {
	view    *routes.Peer
	addr    netip.Addr
	asn     uint32
	up      bool
	routes  int
	updates uint64
}

func (m *monitored) Announce(pfx netip.Prefix, _ uint32, a *routes.Attrs) {
	if m.view.AnnounceFrom(m.addr, pfx, a) {
		m.routes++
	}
}

func (m *monitored) Withdraw(pfx netip.Prefix, _ uint32) bool {
	if m.view.WithdrawFrom(m.addr, pfx) {
		m.routes--
		return true
	}
	return false
}

func (s *session) state() RouterState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := RouterState{Address: s.addr, SysName: s.sysName}
	if s.view != nil {
		st.Routes = s.view.Len()
	}
	for _, m := range s.peers {
		st.Peers = append(st.Peers, PeerState{Address: m.addr, ASN: m.asn, Up: m.up, Routes: m.routes, Updates: m.updates})
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Address.Less(st.Peers[j].Address) })
	return st
}

// sessionError ends a session.
type sessionError struct {
	why reason
	err error
}

func (e *sessionError) Error() string { return e.err.Error() }

func fail(why reason, format string, args ...any) error {
	return &sessionError{why, fmt.Errorf(format, args...)}
}

// run holds the session until it ends, then drops the router's routes.
func (s *session) run(ctx context.Context) {
	defer s.conn.Close()
	s.l.logger.Info("bmp: router connected", "router", s.addr)
	s.mu.Lock()
	s.view = s.l.rib.Peer(s.addr)
	s.mu.Unlock()
	err := s.serve()
	s.l.rib.Drop(s.addr)
	var se *sessionError
	if !errors.As(err, &se) {
		se = &sessionError{why: reasonClosed, err: err}
		switch {
		case ctx.Err() != nil:
			se = &sessionError{why: reasonShutdown, err: errors.New("flowdex stopped")}
		case s.replaced.Load():
			se = &sessionError{why: reasonReplaced, err: errors.New("the router connected again")}
		case errors.Is(err, io.EOF):
			se.err = errors.New("the router closed the connection")
		}
	}
	s.l.resets[se.why].Add(1)
	s.l.logger.Warn("bmp: session ended, the router's routes dropped", "router", s.addr, "sys_name", s.sysName, "reason", se.why.String(), "error", se.err)
}

func (s *session) serve() error {
	for {
		m, err := s.read()
		if err != nil {
			return err
		}
		if err := s.handle(m); err != nil {
			return err
		}
	}
}

// read reads one message.
func (s *session) read() (*bmp.BMPMessage, error) {
	var h [bmp.BMP_HEADER_SIZE]byte
	if _, err := io.ReadFull(s.conn, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[1:5])
	switch {
	case h[0] != bmp.BMP_VERSION:
		return nil, fail(reasonMalformed, "BMP version %d (expected 3)", h[0])
	case n < bmp.BMP_HEADER_SIZE || n > maxMessage:
		return nil, fail(reasonMalformed, "message length %d", n)
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(s.conn, b[bmp.BMP_HEADER_SIZE:]); err != nil {
		return nil, err
	}
	if t := h[5]; t != bmp.BMP_MSG_INITIATION && t != bmp.BMP_MSG_TERMINATION && n < bmp.BMP_HEADER_SIZE+bmp.BMP_PEER_HEADER_SIZE {
		return nil, fail(reasonMalformed, "message type %d of %d bytes: no room for its per-peer header", t, n)
	}
	m, err := bmp.ParseBMPMessage(b)
	if err != nil {
		return nil, fail(reasonMalformed, "message type %d: %v", h[5], err)
	}
	return m, nil
}

// peerAddr is the monitored peer's address in a per-peer header.
func peerAddr(h *bmp.BMPPeerHeader) netip.Addr {
	a, _ := netip.AddrFromSlice(h.PeerAddress)
	return a.Unmap()
}

// take tells whether a message of a per-peer header is flowdex's,
// counting those left: a global instance peer's; for Route Monitoring
// (routes: true), of the Adj-RIB-In and policy configured. Peer Up and
// Down are of the peer whatever the RIB (FRR sends them with no L flag
// while it monitors post-policy).
func (s *session) take(h *bmp.BMPPeerHeader, routes bool) bool {
	why := ignoredWhy(numIgnored)
	switch post := h.Flags&bmp.BMP_PEER_FLAG_POST_POLICY != 0; {
	case h.PeerType != bmp.BMP_PEER_TYPE_GLOBAL:
		why = ignoredPeerType
	case !routes:
		return true
	case h.Flags&bmp.BMP_PEER_FLAG_ADJ_RIB_TYP != 0:
		why = ignoredAdjRIBOut
	case !post && s.l.cfg.Policy == "post":
		why = ignoredPrePolicy
	case post && s.l.cfg.Policy == "pre":
		why = ignoredPostPolicy
	default:
		return true
	}
	s.l.ignored[why].Add(1)
	return false
}

// peerLocked returns the monitored peer of a per-peer header, made when new.
// The caller holds s.mu.
func (s *session) peerLocked(h *bmp.BMPPeerHeader) *monitored {
	a := peerAddr(h)
	m := s.peers[a]
	if m == nil {
		m = &monitored{view: s.view, addr: a}
		s.peers[a] = m
	}
	m.asn = h.PeerAS
	return m
}

func (s *session) handle(msg *bmp.BMPMessage) error {
	switch body := msg.Body.(type) {
	case *bmp.BMPInitiation:
		s.l.initiations.Add(1)
		var descr string
		s.mu.Lock()
		for _, tlv := range body.Info {
			if v, ok := tlv.(*bmp.BMPInfoTLVString); ok {
				switch v.Type {
				case bmp.BMP_INIT_TLV_TYPE_SYS_NAME:
					s.sysName = v.Value
				case bmp.BMP_INIT_TLV_TYPE_SYS_DESCR:
					descr = v.Value
				}
			}
		}
		s.mu.Unlock()
		s.l.logger.Info("bmp: router initiated", "router", s.addr, "sys_name", s.sysName, "sys_descr", descr)
	case *bmp.BMPTermination:
		s.l.terminations.Add(1)
		why := "unknown"
		for _, tlv := range body.Info {
			switch v := tlv.(type) {
			case *bmp.BMPTermTLV16:
				why = fmt.Sprintf("reason %d", v.Value)
			case *bmp.BMPTermTLVString:
				why = v.Value
			}
		}
		return fail(reasonTerminated, "Termination (%s)", why)
	case *bmp.BMPPeerUpNotification:
		s.l.peerUps.Add(1)
		if !s.take(&msg.PeerHeader, false) {
			return nil
		}
		s.mu.Lock()
		m := s.peerLocked(&msg.PeerHeader)
		m.up = true
		s.mu.Unlock()
		s.l.logger.Info("bmp: monitored peer up", "router", s.addr, "peer", m.addr, "asn", m.asn)
	case *bmp.BMPPeerDownNotification:
		s.l.peerDowns.Add(1)
		if !s.take(&msg.PeerHeader, false) {
			return nil
		}
		a := peerAddr(&msg.PeerHeader)
		s.mu.Lock()
		_, known := s.peers[a]
		delete(s.peers, a)
		s.mu.Unlock()
		if known {
			n := s.view.DropSource(a)
			s.l.logger.Info("bmp: monitored peer down, its routes dropped", "router", s.addr, "peer", a, "routes", n, "reason", body.Reason)
		}
	case *bmp.BMPRouteMonitoring:
		if !s.take(&msg.PeerHeader, true) {
			return nil
		}
		u, ok := body.BGPUpdate.Body.(*packet.BGPUpdate)
		if !ok {
			return fail(reasonMalformed, "Route Monitoring of a BGP message type %d, not an UPDATE", body.BGPUpdate.Header.Type)
		}
		s.l.routeMonitoring.Add(1)
		s.mu.Lock()
		m := s.peerLocked(&msg.PeerHeader)
		m.updates++
		announced, withdrawn := bgp.ApplyUpdate(u, msg.PeerHeader.Flags&bmp.BMP_PEER_FLAG_TWO_AS != 0, &s.l.cfg.Texts, m)
		s.mu.Unlock()
		s.l.announced.Add(uint64(announced))
		s.l.withdrn.Add(uint64(withdrawn))
	case *bmp.BMPStatisticsReport:
		s.l.statsReports.Add(1)
	case *bmp.BMPRouteMirroring:
		s.l.ignored[ignoredMirroring].Add(1)
	}
	return nil
}
