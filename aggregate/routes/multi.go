package routes

import (
	"net/netip"
	"slices"
)

// A merged view (a BMP router's: flows exported by the router are looked
// up in the routes of all the peers it monitors) keeps, for each prefix,
// one candidate route per source that announced it, and puts the best in
// the table lookups read. The choice is flowdex's, made when a candidate
// changes, never at lookup:
//
//  1. the highest LOCAL_PREF;
//  2. the shortest AS path (a set counts one AS, confederation segments
//     none, as RFC 4271 counts);
//  3. the lowest MED, compared whatever AS the routes come from;
//  4. the lowest source address (the monitored peer's).
//
// A router's full decision process (RFC 4271 9.1.2) also weighs what BMP
// does not carry or flowdex does not know: the next hop's reachability and
// IGP cost, eBGP over iBGP, ORIGIN, the route's age, the router ID and
// cluster list, vendor weights, and multipath. So the route a flow takes
// here may differ from the one the router forwarded it on where two of its
// peers offer the same prefix with equal LOCAL_PREF, path length and MED;
// a router's Loc-RIB (BMP peer type 3, RFC 9069) would say which one it
// chose, and is not taken yet.

// candidate is a source's route to a prefix.
type candidate struct {
	src netip.Addr
	s   *shared
}

// better tells whether a is preferred to b.
func better(a, b candidate) bool {
	switch {
	case a.s.LocalPref != b.s.LocalPref:
		return a.s.LocalPref > b.s.LocalPref
	case a.s.pathLen != b.s.pathLen:
		return a.s.pathLen < b.s.pathLen
	case a.s.MED != b.s.MED:
		return a.s.MED < b.s.MED
	}
	return a.src.Less(b.src)
}

// best returns the preferred candidate's attributes, nil for none.
func best(cs []candidate) *shared {
	if len(cs) == 0 {
		return nil
	}
	b := cs[0]
	for _, c := range cs[1:] {
		if better(c, b) {
			b = c
		}
	}
	return b.s
}

// setBestLocked puts the best candidate to pfx in the table, or removes
// the prefix when none is left.
func (p *Peer) setBestLocked(pfx netip.Prefix, cs []candidate) {
	b := best(cs)
	p.table.Modify(pfx, func(*shared, bool) (*shared, bool) { return b, b == nil })
}

// AnnounceFrom sets src's route to pfx in a merged view, replacing src's
// previous one; true if src had none.
func (p *Peer) AnnounceFrom(src netip.Addr, pfx netip.Prefix, a *Attrs) bool {
	pfx = pfx.Masked()
	s := p.rib.intern(p, a)
	var old *shared
	p.mu.Lock()
	if p.multi == nil {
		p.multi = map[netip.Prefix][]candidate{}
	}
	cs := p.multi[pfx]
	i := slices.IndexFunc(cs, func(c candidate) bool { return c.src == src })
	if i >= 0 {
		old, cs[i].s = cs[i].s, s
	} else {
		cs = append(cs, candidate{src, s})
		p.multi[pfx] = cs
	}
	p.setBestLocked(pfx, cs)
	p.mu.Unlock()
	if old != nil {
		p.rib.release(old)
	}
	return old == nil
}

// WithdrawFrom removes src's route to pfx from a merged view, another
// source's taking its place; false if src had none.
func (p *Peer) WithdrawFrom(src netip.Addr, pfx netip.Prefix) bool {
	pfx = pfx.Masked()
	p.mu.Lock()
	cs := p.multi[pfx]
	i := slices.IndexFunc(cs, func(c candidate) bool { return c.src == src })
	if i < 0 {
		p.mu.Unlock()
		return false
	}
	old := cs[i].s
	cs = slices.Delete(cs, i, i+1)
	if len(cs) == 0 {
		delete(p.multi, pfx)
	} else {
		p.multi[pfx] = cs
	}
	p.setBestLocked(pfx, cs)
	p.mu.Unlock()
	p.rib.release(old)
	return true
}

// DropSource removes every route of src from a merged view (a monitored
// peer that went down) and returns how many there were.
func (p *Peer) DropSource(src netip.Addr) int {
	var dropped []*shared
	p.mu.Lock()
	for pfx, cs := range p.multi {
		i := slices.IndexFunc(cs, func(c candidate) bool { return c.src == src })
		if i < 0 {
			continue
		}
		dropped = append(dropped, cs[i].s)
		cs = slices.Delete(cs, i, i+1)
		if len(cs) == 0 {
			delete(p.multi, pfx)
		} else {
			p.multi[pfx] = cs
		}
		p.setBestLocked(pfx, cs)
	}
	p.mu.Unlock()
	p.rib.mu.Lock()
	for _, s := range dropped {
		p.rib.releaseLocked(s)
	}
	p.rib.mu.Unlock()
	return len(dropped)
}

// pathLength counts an AS path written by pmacct's rules as RFC 4271's
// route selection does: an AS a sequence's, one a set ({...}), none a
// confederation segment's ((...) and [...]).
func pathLength(path string) uint32 {
	var n uint32
	depth := byte(0) // the open segment's closing character
	start := true    // at the start of an AS
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case depth != 0:
			if c == depth {
				depth = 0
			}
		case c == '{':
			n++
			depth = '}'
		case c == '(':
			depth = ')'
		case c == '[':
			depth = ']'
		case c == '_':
			start = true
		case start:
			n++
			start = false
		}
	}
	return n
}

// SelectByNextHop makes p the view of one session's ADD-PATH paths (RFC
// 7911): LookupVia then finds the path whose next hop is the flow's BGP
// next hop, and none when no path has it, as pmacct does; the best path
// stands for the peer's table elsewhere (Lookup, the Adj-RIB-In's size).
func (p *Peer) SelectByNextHop() { p.byNextHop.Store(true) }

// ByNextHop reports whether p picks its routes by next hop
// (SelectByNextHop).
func (p *Peer) ByNextHop() bool { return p.byNextHop.Load() }

// LookupVia is LookupNet for a flow whose BGP next hop is nh (NetFlow's,
// sFlow's; invalid for none): in a merged view, the candidate to the
// longest prefix whose next hop is nh, else (a BMP router's view) the
// best one, or (ADD-PATH paths, SelectByNextHop) none; elsewhere
// LookupNet.
func (p *Peer) LookupVia(ip, nh netip.Addr) (*Route, int, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pfx, s, ok := p.table.LookupPrefixLPM(netip.PrefixFrom(ip, ip.BitLen()))
	if !ok || p.multi == nil || s.NextHop == nh && nh.IsValid() {
		if !ok {
			return nil, 0, false
		}
		return &s.Route, pfx.Bits(), true
	}
	if nh.IsValid() {
		for _, c := range p.multi[pfx] {
			if c.s.NextHop == nh {
				return &c.s.Route, pfx.Bits(), true
			}
		}
	}
	if p.byNextHop.Load() {
		return nil, 0, false
	}
	return &s.Route, pfx.Bits(), true
}
