package routes

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/gaissmai/bart"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// RIB holds the peers' Adj-RIBs-In and their shared attribute sets. Its
// methods are safe for concurrent use: sessions update their peers while
// decoders look flows up.
type RIB struct {
	mu    sync.Mutex                           // peers' changes, attrs
	peers atomic.Pointer[map[netip.Addr]*Peer] // replaced, never changed: lookups take no lock
	ids   atomic.Pointer[map[netip.Addr]*Peer] // the same by BGP identifier (Identify)
	attrs map[Attrs]*shared                    // every attribute set some route has, once
}

// Route is what a lookup finds: the route's attributes, and the numbers
// flow.LabelID gives their texts, which flow records carry.
type Route struct {
	Attrs
	ASPathID, StdCommID, ExtCommID, LrgCommID uint32
}

// shared is an attribute set, how many routes have it, and its AS path's
// length as the best-route choice counts it.
type shared struct {
	Route
	refs    int32
	pathLen uint32
}

// Peer is one peer's Adj-RIB-In: the routes of one BGP session
// (Announce, Withdraw), or a view merging those of several sources, a BMP
// router's monitored peers (AnnounceFrom, WithdrawFrom, DropSource). A
// peer is one or the other. Lookups are the same for both: the table holds
// one route a prefix, the best of a merged view's candidates chosen when
// they change.
type Peer struct {
	rib       *RIB
	mu        sync.RWMutex
	table     bart.Table[*shared]
	multi     map[netip.Prefix][]candidate // a merged view's candidates; nil for a session's
	byNextHop atomic.Bool                  // ADD-PATH paths: LookupVia picks by next hop only
	last      *shared                      // the set of the peer's last route (RIB.intern's, under RIB.mu)
}

// New returns an empty RIB.
func New() *RIB {
	r := &RIB{attrs: map[Attrs]*shared{}}
	r.peers.Store(&map[netip.Addr]*Peer{})
	return r
}

// Peer returns the Adj-RIB-In of the peer at addr, made empty if it has
// none.
func (r *RIB) Peer(addr netip.Addr) *Peer {
	if p := r.Find(addr); p != nil {
		return p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.peers.Load()
	if p, ok := old[addr]; ok {
		return p
	}
	peers := make(map[netip.Addr]*Peer, len(old)+1)
	for a, p := range old {
		peers[a] = p
	}
	p := &Peer{rib: r}
	peers[addr] = p
	r.peers.Store(&peers)
	return p
}

// Find returns the Adj-RIB-In of the peer at addr, else of the peer whose
// BGP identifier addr is (a router exporting flows from its router ID
// and peering from another address, as pmacct finds it); nil for none.
func (r *RIB) Find(addr netip.Addr) *Peer {
	if p := (*r.peers.Load())[addr]; p != nil {
		return p
	}
	if ids := r.ids.Load(); ids != nil {
		return (*ids)[addr]
	}
	return nil
}

// Identify records id as the BGP identifier of the peer at addr, which
// Find then takes for it; the last peer to claim an identifier has it.
func (r *RIB) Identify(id, addr netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := (*r.peers.Load())[addr]
	if p == nil || id == addr || !id.IsValid() {
		return
	}
	ids := map[netip.Addr]*Peer{id: p}
	if old := r.ids.Load(); old != nil {
		for a, q := range *old {
			if a != id {
				ids[a] = q
			}
		}
	}
	r.ids.Store(&ids)
}

// Drop removes the peer at addr and every route it announced (a session
// that went down).
func (r *RIB) Drop(addr netip.Addr) {
	r.mu.Lock()
	old := *r.peers.Load()
	p, ok := old[addr]
	if !ok {
		r.mu.Unlock()
		return
	}
	peers := make(map[netip.Addr]*Peer, len(old))
	for a, q := range old {
		if a != addr {
			peers[a] = q
		}
	}
	r.peers.Store(&peers)
	if oldIDs := r.ids.Load(); oldIDs != nil {
		ids := make(map[netip.Addr]*Peer, len(*oldIDs))
		for a, q := range *oldIDs {
			if q != p {
				ids[a] = q
			}
		}
		r.ids.Store(&ids)
	}
	r.mu.Unlock()

	p.mu.Lock()
	defer p.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.multi != nil {
		for _, cs := range p.multi {
			for _, c := range cs {
				r.releaseLocked(c.s)
			}
		}
		p.multi = map[netip.Prefix][]candidate{}
	} else {
		for _, s := range p.table.All() {
			r.releaseLocked(s)
		}
	}
	p.table = bart.Table[*shared]{}
}

// AttrSets returns how many distinct attribute sets the routes have.
func (r *RIB) AttrSets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.attrs)
}

// intern returns the shared set of a, counting a reference. p's last set
// is tried first: an UPDATE's prefixes come one after the other with the
// same attributes, and comparing them costs less than hashing them.
func (r *RIB) intern(p *Peer, a *Attrs) *shared {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := p.last; l != nil && l.refs > 0 && l.Attrs == *a {
		l.refs++
		return l
	}
	s, ok := r.attrs[*a]
	if !ok {
		// counted: the texts go with the last set that has them
		s = &shared{Route: Route{Attrs: *a, ASPathID: flow.AcquireLabel(a.ASPath), StdCommID: flow.AcquireLabel(a.StdComm),
			ExtCommID: flow.AcquireLabel(a.ExtComm), LrgCommID: flow.AcquireLabel(a.LrgComm)}, pathLen: pathLength(a.ASPath)}
		r.attrs[*a] = s
	}
	s.refs++
	p.last = s
	return s
}

func (r *RIB) release(s *shared) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked(s)
}

func (r *RIB) releaseLocked(s *shared) {
	if s.refs--; s.refs == 0 {
		delete(r.attrs, s.Attrs)
		for _, id := range [...]uint32{s.ASPathID, s.StdCommID, s.ExtCommID, s.LrgCommID} {
			flow.ReleaseLabel(id)
		}
	}
}

// Announce sets the route to pfx, replacing the peer's previous one.
func (p *Peer) Announce(pfx netip.Prefix, a *Attrs) {
	s := p.rib.intern(p, a)
	var old *shared
	p.mu.Lock()
	p.table.Modify(pfx.Masked(), func(v *shared, ok bool) (*shared, bool) {
		old = v
		return s, false
	})
	p.mu.Unlock()
	if old != nil {
		p.rib.release(old)
	}
}

// Withdraw removes the route to pfx; false if the peer had none.
func (p *Peer) Withdraw(pfx netip.Prefix) bool {
	var old *shared
	p.mu.Lock()
	p.table.Modify(pfx.Masked(), func(v *shared, ok bool) (*shared, bool) {
		old = v
		return nil, true
	})
	p.mu.Unlock()
	if old == nil {
		return false
	}
	p.rib.release(old)
	return true
}

// Lookup returns the peer's longest route that contains ip. It is shared
// and must not be changed.
func (p *Peer) Lookup(ip netip.Addr) (*Route, bool) {
	p.mu.RLock()
	s, ok := p.table.Lookup(ip)
	p.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return &s.Route, true
}

// LookupNet is Lookup with the length of the route's prefix: nets and
// masks from BGP (net_source = "bgp").
func (p *Peer) LookupNet(ip netip.Addr) (*Route, int, bool) {
	p.mu.RLock()
	pfx, s, ok := p.table.LookupPrefixLPM(netip.PrefixFrom(ip, ip.BitLen()))
	p.mu.RUnlock()
	if !ok {
		return nil, 0, false
	}
	return &s.Route, pfx.Bits(), true
}

// Len returns how many routes the peer has.
func (p *Peer) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.table.Size()
}
