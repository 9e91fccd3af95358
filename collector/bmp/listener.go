package bmp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/flowdex/flowdex/aggregate/routes"
)

// Listener accepts BMP sessions into a RIB, one view a router.
type Listener struct {
	cfg    Configuration
	rib    *routes.RIB
	logger *slog.Logger

	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	sessions map[netip.Addr]*session // one a router address
	cancel   context.CancelFunc

	refused, accepted                   atomic.Uint64
	resets                              [numReasons]atomic.Uint64
	ignored                             [numIgnored]atomic.Uint64
	routeMonitoring, announced, withdrn atomic.Uint64
	statsReports, peerUps, peerDowns    atomic.Uint64
	initiations, terminations           atomic.Uint64
}

// Stats are the collector's counters.
type Stats struct {
	Refused         uint64            // connections from addresses no router prefix holds
	Sessions        uint64            // sessions accepted
	Resets          map[string]uint64 // sessions ended, by reason; each drops the router's routes
	Initiations     uint64            // Initiation messages
	Terminations    uint64            // Termination messages
	PeerUps         uint64            // Peer Up notifications
	PeerDowns       uint64            // Peer Down notifications
	RouteMonitoring uint64            // Route Monitoring messages applied
	Ignored         map[string]uint64 // messages left, by reason (pre_policy, post_policy, adj_rib_out, peer_type, route_mirroring)
	Announced       uint64            // routes announced (a route again counts again)
	Withdrawn       uint64            // routes withdrawn
	StatsReports    uint64            // Statistics Report messages
}

// RouterState is a router's session, for metrics and /readyz.
type RouterState struct {
	Address netip.Addr
	SysName string // from its Initiation
	Routes  int    // prefixes in its view
	Peers   []PeerState
}

// PeerState is a monitored peer.
type PeerState struct {
	Address netip.Addr
	ASN     uint32
	Up      bool   // a Peer Up came (a peer known from its routes only is not)
	Routes  int    // its routes in the view, best or not
	Updates uint64 // Route Monitoring messages of it, this session
}

// New returns a collector, not listening yet.
func New(cfg Configuration, rib *routes.RIB, logger *slog.Logger) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{cfg: cfg, rib: rib, logger: logger, sessions: map[netip.Addr]*session{}}, nil
}

// Start listens and accepts sessions until Stop.
func (l *Listener) Start() error {
	ln, err := net.Listen("tcp", l.cfg.Listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.ln, l.cancel = ln, cancel
	l.wg.Go(func() { l.accept(ctx) })
	return nil
}

// Addr returns the address listened on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Stop closes the listener and every session, dropping their routes.
func (l *Listener) Stop() {
	if l.ln == nil {
		return
	}
	l.cancel()
	l.ln.Close()
	l.mu.Lock()
	for _, s := range l.sessions {
		s.conn.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *Listener) accept(ctx context.Context) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				l.logger.Error("bmp: accept", "error", err)
			}
			return
		}
		from := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		if !l.cfg.allowed(from) {
			l.refused.Add(1)
			l.logger.Warn("bmp: connection refused: no router prefix holds the address", "router", from)
			conn.Close()
			continue
		}
		l.accepted.Add(1)
		s := &session{l: l, conn: conn, addr: from, peers: map[netip.Addr]*monitored{}, done: make(chan struct{})}
		l.mu.Lock()
		// a router that connects again replaces its session, whose
		// connection may be half-open (BMP has no keepalives): the new one
		// starts once the old one's routes are dropped
		prev := l.sessions[from]
		if prev != nil {
			prev.replaced.Store(true)
			prev.conn.Close()
		}
		l.sessions[from] = s
		l.mu.Unlock()
		l.wg.Go(func() {
			if prev != nil {
				<-prev.done
			}
			s.run(ctx)
			l.mu.Lock()
			if l.sessions[from] == s {
				delete(l.sessions, from)
			}
			l.mu.Unlock()
			close(s.done)
		})
	}
}

// Stats returns the counters.
func (l *Listener) Stats() Stats {
	st := Stats{Refused: l.refused.Load(), Sessions: l.accepted.Load(), Initiations: l.initiations.Load(), Terminations: l.terminations.Load(),
		PeerUps: l.peerUps.Load(), PeerDowns: l.peerDowns.Load(), RouteMonitoring: l.routeMonitoring.Load(),
		Announced: l.announced.Load(), Withdrawn: l.withdrn.Load(), StatsReports: l.statsReports.Load(),
		Resets: map[string]uint64{}, Ignored: map[string]uint64{}}
	for r := range numReasons {
		if n := l.resets[r].Load(); n > 0 {
			st.Resets[r.String()] = n
		}
	}
	for r := range numIgnored {
		if n := l.ignored[r].Load(); n > 0 {
			st.Ignored[r.String()] = n
		}
	}
	return st
}

// Routers returns the sessions, by address, their peers by address.
func (l *Listener) Routers() []RouterState {
	l.mu.Lock()
	out := make([]RouterState, 0, len(l.sessions))
	for _, s := range l.sessions {
		out = append(out, s.state())
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Address.Less(out[j].Address) })
	return out
}
