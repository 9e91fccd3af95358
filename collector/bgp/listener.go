package bgp

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

// Listener accepts BGP sessions into a RIB.
type Listener struct {
	cfg    Configuration
	rib    *routes.RIB
	logger *slog.Logger

	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	sessions map[netip.Addr]*session // one a peer address
	cancel   context.CancelFunc

	refused, collisions, established atomic.Uint64
	resets                           [numReasons]atomic.Uint64
	updates, announced, withdrawn    atomic.Uint64
}

// Stats are the listener's counters.
type Stats struct {
	Refused     uint64 // connections from addresses no peer prefix holds
	Collisions  uint64 // connections from a peer that has a session already
	Established uint64 // sessions that reached Established
	Resets      map[string]uint64
	Updates     uint64 // UPDATE messages
	Announced   uint64 // routes announced (a route again counts again)
	Withdrawn   uint64 // routes withdrawn
}

// PeerState is a peer's session, for metrics and /readyz.
type PeerState struct {
	Address     netip.Addr
	ASN         uint32
	State       string // "open" (OPEN exchanged, no keepalive yet) or "established"
	Routes      int
	Updates     uint64
	Established bool
}

// New returns a listener, not listening yet.
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
	if err := setMD5(ln, l.cfg.Peers); err != nil {
		ln.Close()
		return err
	}
	if !l.cfg.RouterID.IsValid() {
		l.cfg.RouterID = netip.AddrFrom4([4]byte{0, 0, 0, 1})
		if a := ln.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap(); a.Is4() && !a.IsUnspecified() {
			l.cfg.RouterID = a
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.ln, l.cancel = ln, cancel
	l.wg.Go(func() { l.accept(ctx) })
	return nil
}

// Addr returns the address listened on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Stop closes the listener and every session (NOTIFICATION Cease,
// administrative shutdown), dropping their routes.
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
				l.logger.Error("bgp: accept", "error", err)
			}
			return
		}
		from := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		pc, ok := l.cfg.peer(from)
		if !ok {
			l.refused.Add(1)
			l.logger.Warn("bgp: connection refused: no peer prefix holds the address", "peer", from)
			conn.Close()
			continue
		}
		s := &session{l: l, conn: conn, addr: from, cfg: pc}
		l.mu.Lock()
		if _, busy := l.sessions[from]; busy {
			l.mu.Unlock()
			l.collisions.Add(1)
			l.logger.Warn("bgp: connection refused: the peer has a session already", "peer", from)
			s.notify(ceaseCollision)
			conn.Close()
			continue
		}
		l.sessions[from] = s
		l.mu.Unlock()
		l.wg.Go(func() {
			s.run(ctx)
			l.mu.Lock()
			delete(l.sessions, from)
			l.mu.Unlock()
		})
	}
}

// Stats returns the counters.
func (l *Listener) Stats() Stats {
	st := Stats{Refused: l.refused.Load(), Collisions: l.collisions.Load(), Established: l.established.Load(),
		Updates: l.updates.Load(), Announced: l.announced.Load(), Withdrawn: l.withdrawn.Load(), Resets: map[string]uint64{}}
	for r := range numReasons {
		if n := l.resets[r].Load(); n > 0 {
			st.Resets[r.String()] = n
		}
	}
	return st
}

// Peers returns the sessions, by address.
func (l *Listener) Peers() []PeerState {
	l.mu.Lock()
	out := make([]PeerState, 0, len(l.sessions))
	for _, s := range l.sessions {
		out = append(out, s.state())
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Address.Less(out[j].Address) })
	return out
}
