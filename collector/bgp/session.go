package bgp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/flowdex/flowdex/aggregate/routes"
)

// reason is why a session ended.
type reason uint8

const (
	reasonClosed       reason = iota // the peer closed the connection
	reasonNotification               // the peer sent a NOTIFICATION
	reasonHoldExpired                // nothing from the peer within the hold time
	reasonMalformed                  // a message flowdex could not read
	reasonOpen                       // an OPEN flowdex refuses (AS, hold time, version)
	reasonFSM                        // a message out of turn
	reasonMaxPrefixes                // the peer's table grew past max_prefixes
	reasonShutdown                   // flowdex stopped
	numReasons
)

var reasonNames = [numReasons]string{"closed", "notification", "hold_expired", "malformed", "open", "fsm", "max_prefixes", "shutdown"}

func (r reason) String() string { return reasonNames[r] }

// notifications flowdex sends
var (
	ceaseCollision   = bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION, nil)
	ceaseShutdown    = bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN, nil)
	ceaseMaxPrefixes = bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED, nil)
	holdExpired      = bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_HOLD_TIMER_EXPIRED, 0, nil)
	fsmError         = bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_FSM_ERROR, 0, nil)
)

// maxMessage is BGP's largest message without the extended message
// capability, which flowdex does not offer.
const maxMessage = 4096

// asTrans is the 2-octet AS a 4-octet one shows in OPEN's My AS.
const asTrans = 23456

// session is one peer's connection.
type session struct {
	l    *Listener
	conn net.Conn
	addr netip.Addr
	cfg  PeerConfiguration

	writeMu sync.Mutex
	asn     uint32
	id      netip.Addr // the BGP identifier
	// addPath: the families whose UPDATEs carry path identifiers (the peer
	// sends ADD-PATH, flowdex receives it); nil for none
	addPath     map[bgp.RouteFamily]bgp.BGPAddPathMode
	as4         bool // the peer has the four-octet AS capability: its AS paths are so
	established atomic.Bool
	updates     atomic.Uint64
	peer        *routes.Peer
}

func (s *session) state() PeerState {
	st := PeerState{Address: s.addr, ASN: s.asn, State: "open", Updates: s.updates.Load(), Established: s.established.Load()}
	if st.Established {
		st.State = "established"
		st.Routes = s.peer.Len()
	}
	return st
}

// notify sends m, best effort: the session ends anyway.
func (s *session) notify(m *bgp.BGPMessage) {
	b, err := m.Serialize()
	if err != nil {
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.conn.Write(b)
}

func (s *session) send(m *bgp.BGPMessage) error {
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = s.conn.Write(b)
	return err
}

// sessionError ends a session: why, and what to tell the peer (nil:
// nothing).
type sessionError struct {
	why    reason
	notify *bgp.BGPMessage
	err    error
}

func (e *sessionError) Error() string { return e.err.Error() }

func fail(why reason, notify *bgp.BGPMessage, format string, args ...any) error {
	return &sessionError{why, notify, fmt.Errorf(format, args...)}
}

// run holds the session until it ends, then drops the peer's routes.
func (s *session) run(ctx context.Context) {
	defer s.conn.Close()
	err := s.serve(ctx)
	if s.established.Load() {
		s.l.rib.Drop(s.addr)
	}
	var se *sessionError
	if !errors.As(err, &se) {
		se = &sessionError{why: reasonClosed, err: err}
		if ctx.Err() != nil {
			se = &sessionError{why: reasonShutdown, notify: ceaseShutdown, err: errors.New("flowdex stopped")}
		}
	}
	if se.notify != nil {
		s.notify(se.notify)
	}
	s.l.resets[se.why].Add(1)
	s.l.logger.Warn("bgp: session ended, the peer's routes dropped", "peer", s.addr, "asn", s.asn, "reason", se.why.String(), "error", se.err)
}

func (s *session) serve(ctx context.Context) error {
	hold := s.l.cfg.HoldTime
	// OPEN, within the proposed hold time (or 4 minutes without one)
	wait := hold
	if wait == 0 {
		wait = 4 * time.Minute
	}
	m, err := s.read(wait)
	if err != nil {
		return err
	}
	open, ok := m.Body.(*bgp.BGPOpen)
	if !ok {
		return fail(reasonFSM, fsmError, "expected OPEN, got message type %d", m.Header.Type)
	}
	if hold, err = s.checkOpen(open, hold); err != nil {
		return err
	}
	if err := s.send(s.open()); err != nil {
		return err
	}
	if err := s.send(bgp.NewBGPKeepAliveMessage()); err != nil {
		return err
	}
	if hold > 0 {
		s.l.wg.Go(func() { s.keepalive(ctx, hold/3) })
	}
	for {
		m, err := s.read(hold)
		if err != nil {
			return err
		}
		switch body := m.Body.(type) {
		case *bgp.BGPKeepAlive:
			if !s.established.Load() {
				s.peer = s.l.rib.Peer(s.addr)
				s.l.rib.Identify(s.id, s.addr) // routers export from their router ID
				if s.addPath != nil {
					s.peer.SelectByNextHop()
				}
				s.established.Store(true)
				s.l.established.Add(1)
				s.l.logger.Info("bgp: session established", "peer", s.addr, "asn", s.asn, "hold_time", hold)
			}
		case *bgp.BGPUpdate:
			if !s.established.Load() {
				return fail(reasonFSM, fsmError, "UPDATE before the session was established")
			}
			s.updates.Add(1)
			s.l.updates.Add(1)
			if err := s.update(body); err != nil {
				return err
			}
		case *bgp.BGPNotification:
			return fail(reasonNotification, nil, "NOTIFICATION %d/%d from the peer", body.ErrorCode, body.ErrorSubcode)
		case *bgp.BGPRouteRefresh:
			// flowdex announces nothing: no route to send again
		case *bgp.BGPOpen:
			return fail(reasonFSM, fsmError, "a second OPEN")
		}
	}
}

// read reads one message, within wait (0: no bound).
func (s *session) read(wait time.Duration) (*bgp.BGPMessage, error) {
	var deadline time.Time
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	s.conn.SetReadDeadline(deadline)
	var h [bgp.BGP_HEADER_LENGTH]byte
	if _, err := io.ReadFull(s.conn, h[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fail(reasonHoldExpired, holdExpired, "nothing from the peer for %s", wait)
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[16:18]))
	if n < bgp.BGP_HEADER_LENGTH || n > maxMessage {
		return nil, fail(reasonMalformed, bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH, h[16:18]),
			"message length %d", n)
	}
	b := make([]byte, n)
	copy(b, h[:])
	if _, err := io.ReadFull(s.conn, b[bgp.BGP_HEADER_LENGTH:]); err != nil {
		return nil, err
	}
	m, err := bgp.ParseBGPMessage(b, &bgp.MarshallingOption{AddPath: s.addPath})
	if err != nil {
		notify := bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, 0, nil)
		var me *bgp.MessageError
		if errors.As(err, &me) {
			notify = bgp.NewBGPNotificationMessage(me.TypeCode, me.SubTypeCode, me.Data)
		}
		return nil, fail(reasonMalformed, notify, "malformed message: %v", err)
	}
	return m, nil
}

// checkOpen checks the peer's OPEN and returns the session's hold time.
func (s *session) checkOpen(o *bgp.BGPOpen, hold time.Duration) (time.Duration, error) {
	openErr := func(sub uint8, format string, args ...any) error {
		return fail(reasonOpen, bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, sub, nil), format, args...)
	}
	if o.Version != 4 {
		return 0, openErr(bgp.BGP_ERROR_SUB_UNSUPPORTED_VERSION_NUMBER, "BGP version %d", o.Version)
	}
	s.asn = uint32(o.MyAS)
	s.id, _ = netip.AddrFromSlice(o.ID.To4())
	for _, p := range o.OptParams {
		if c, ok := p.(*bgp.OptionParameterCapability); ok {
			for _, cv := range c.Capability {
				if as4, ok := cv.(*bgp.CapFourOctetASNumber); ok {
					s.asn, s.as4 = as4.CapValue, true
				}
				if ap, ok := cv.(*bgp.CapAddPath); ok {
					for _, t := range ap.Tuples {
						if (t.RouteFamily == bgp.RF_IPv4_UC || t.RouteFamily == bgp.RF_IPv6_UC) && t.Mode&bgp.BGP_ADD_PATH_SEND != 0 {
							if s.addPath == nil {
								s.addPath = map[bgp.RouteFamily]bgp.BGPAddPathMode{}
							}
							s.addPath[t.RouteFamily] = bgp.BGP_ADD_PATH_RECEIVE
						}
					}
				}
			}
		}
	}
	if s.cfg.ASN != 0 && s.asn != s.cfg.ASN {
		return 0, openErr(bgp.BGP_ERROR_SUB_BAD_PEER_AS, "AS %d, expected %d", s.asn, s.cfg.ASN)
	}
	peerHold := time.Duration(o.HoldTime) * time.Second
	if o.HoldTime == 1 || o.HoldTime == 2 {
		return 0, openErr(bgp.BGP_ERROR_SUB_UNACCEPTABLE_HOLD_TIME, "hold time %ds", o.HoldTime)
	}
	if peerHold < hold {
		hold = peerHold
	}
	return hold, nil
}

// open is flowdex's OPEN.
func (s *session) open() *bgp.BGPMessage {
	asn := s.l.cfg.ASN
	my := uint16(asn)
	if asn > 0xffff {
		my = asTrans
	}
	caps := []bgp.ParameterCapabilityInterface{
		bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC),
		bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC),
		bgp.NewCapFourOctetASNumber(asn),
		bgp.NewCapRouteRefresh(),
	}
	if s.addPath != nil { // receive where the peer sends (RFC 7911)
		var tuples []*bgp.CapAddPathTuple
		for _, rf := range []bgp.RouteFamily{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
			if _, ok := s.addPath[rf]; ok {
				tuples = append(tuples, bgp.NewCapAddPathTuple(rf, bgp.BGP_ADD_PATH_RECEIVE))
			}
		}
		caps = append(caps, bgp.NewCapAddPath(tuples))
	}
	return bgp.NewBGPOpenMessage(my, uint16(s.l.cfg.HoldTime/time.Second), s.l.cfg.RouterID.String(),
		[]bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
}

func (s *session) keepalive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.send(bgp.NewBGPKeepAliveMessage()); err != nil {
				return // the reader sees the connection end
			}
		}
	}
}
