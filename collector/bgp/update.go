package bgp

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/flowdex/flowdex/aggregate/routes"
)

// sessionRoutes is a session's Adj-RIB-In as Routes: with ADD-PATH, a
// merged view whose sources are the path identifiers (the best path the
// one lookups find where a flow's BGP next hop names none), else one route
// a prefix.
type sessionRoutes struct {
	peer    *routes.Peer
	addPath bool
}

// pathSource is the merged view's source of an ADD-PATH path identifier.
func pathSource(path uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(path >> 24), byte(path >> 16), byte(path >> 8), byte(path)})
}

func (r sessionRoutes) Announce(pfx netip.Prefix, path uint32, a *routes.Attrs) {
	if r.addPath {
		r.peer.AnnounceFrom(pathSource(path), pfx, a)
	} else {
		r.peer.Announce(pfx, a)
	}
}

func (r sessionRoutes) Withdraw(pfx netip.Prefix, path uint32) bool {
	if r.addPath {
		return r.peer.WithdrawFrom(pathSource(path), pfx)
	}
	return r.peer.Withdraw(pfx)
}

// update applies an UPDATE to the peer's Adj-RIB-In.
func (s *session) update(u *bgp.BGPUpdate) error {
	announced, withdrawn := ApplyUpdate(u, !s.as4, &s.l.cfg.Texts, sessionRoutes{s.peer, s.addPath != nil})
	s.l.withdrawn.Add(uint64(withdrawn))
	s.l.announced.Add(uint64(announced))
	if s.cfg.MaxPrefixes > 0 && announced > 0 && s.peer.Len() > s.cfg.MaxPrefixes {
		return fail(reasonMaxPrefixes, ceaseMaxPrefixes, "%d routes, past max_prefixes %d", s.peer.Len(), s.cfg.MaxPrefixes)
	}
	return nil
}

// Routes is where an UPDATE's routes go: a BGP session's Adj-RIB-In, or
// a BMP-monitored peer's part of its router's view. path is the route's
// ADD-PATH path identifier (RFC 7911), 0 without ADD-PATH.
type Routes interface {
	Announce(pfx netip.Prefix, path uint32, a *routes.Attrs)
	Withdraw(pfx netip.Prefix, path uint32) bool
}

// ApplyUpdate applies an UPDATE: its withdrawals first, then the routes it
// announces with its attributes (UpdateAttrs, shaped by texts: nil keeps
// them whole); it returns how many routes were announced, and how many of
// those withdrawn were there. Prefixes other than IPv4 and IPv6 unicast
// are left out. This is the one way from an UPDATE to routes, for BGP
// sessions and BMP route monitoring alike.
func ApplyUpdate(u *bgp.BGPUpdate, as2 bool, texts *routes.Texts, to Routes) (announced, withdrawn int) {
	a := UpdateAttrs(u, as2)
	texts.Shape(&a)
	var reach, unreach []bgp.AddrPrefixInterface
	for _, pa := range u.PathAttributes {
		switch v := pa.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			reach = v.Value
		case *bgp.PathAttributeMpUnreachNLRI:
			unreach = v.Value
		}
	}
	withdraw := func(p bgp.AddrPrefixInterface) {
		if pfx := prefix(p); pfx.IsValid() && to.Withdraw(pfx, p.PathIdentifier()) {
			withdrawn++
		}
	}
	announce := func(p bgp.AddrPrefixInterface) {
		if pfx := prefix(p); pfx.IsValid() {
			to.Announce(pfx, p.PathIdentifier(), &a)
			announced++
		}
	}
	for _, p := range u.WithdrawnRoutes {
		withdraw(p)
	}
	for _, p := range unreach {
		withdraw(p)
	}
	for _, p := range u.NLRI {
		announce(p)
	}
	for _, p := range reach {
		announce(p)
	}
	return announced, withdrawn
}

// UpdateAttrs converts an UPDATE's path attributes to a route's, texts in
// pmacct's formats. as2 says the sender writes AS numbers in two octets
// (a BGP speaker without the four-octet AS capability; a BMP per-peer
// header's A flag): AS_PATH is read so, whatever GoBGP's parser guessed,
// and AS4_PATH merged into it (RFC 6793, 4.2.3).
func UpdateAttrs(u *bgp.BGPUpdate, as2 bool) routes.Attrs {
	var a routes.Attrs
	var path []bgp.AsPathParamInterface
	var path4 []*bgp.As4PathParam
	for _, pa := range u.PathAttributes {
		switch v := pa.(type) {
		case *bgp.PathAttributeAsPath:
			path = v.Value
		case *bgp.PathAttributeAs4Path:
			path4 = v.Value
		case *bgp.PathAttributeNextHop:
			a.NextHop = addr(v.Value)
		case *bgp.PathAttributeMultiExitDisc:
			a.MED = v.Value
		case *bgp.PathAttributeLocalPref:
			a.LocalPref = v.Value
		case *bgp.PathAttributeCommunities:
			a.StdComm = routes.CommunitiesText(v.Value)
		case *bgp.PathAttributeExtendedCommunities:
			a.ExtComm = extCommunities(v.Value)
		case *bgp.PathAttributeLargeCommunities:
			a.LrgComm = largeCommunities(v.Values)
		case *bgp.PathAttributeMpReachNLRI:
			if nh := addr(v.Nexthop); nh.IsValid() {
				a.NextHop = nh
			}
		}
	}
	if as2 {
		path = merge4(twoOctets(path), path4)
	}
	a.ASPath, a.PeerAS, a.OriginAS = asPath(path)
	return a
}

// twoOctets reads again as two-octet ASes the segments GoBGP's parser
// took for four-octet ones (it tries four octets first, and some
// two-octet paths parse so).
func twoOctets(path []bgp.AsPathParamInterface) []bgp.AsPathParamInterface {
	var raw []byte
	for _, seg := range path {
		if _, ok := seg.(*bgp.As4PathParam); !ok {
			return path // read as two-octet already
		}
		b, err := seg.Serialize()
		if err != nil {
			return path
		}
		raw = append(raw, b...)
	}
	var out []bgp.AsPathParamInterface
	for len(raw) > 0 {
		seg := &bgp.AsPathParam{}
		if err := seg.DecodeFromBytes(raw); err != nil || seg.Len() > len(raw) {
			return path
		}
		out = append(out, seg)
		raw = raw[seg.Len():]
	}
	return out
}

// merge4 builds the path of a two-octet speaker's AS_PATH and AS4_PATH
// (RFC 6793, 4.2.3): as many leading ASes of AS_PATH as it has more than
// AS4_PATH, then AS4_PATH; AS_PATH alone when AS4_PATH is longer.
func merge4(path []bgp.AsPathParamInterface, path4 []*bgp.As4PathParam) []bgp.AsPathParamInterface {
	if len(path4) == 0 {
		return path
	}
	count := func(segs []bgp.AsPathParamInterface) int {
		n := 0
		for _, s := range segs {
			switch s.GetType() {
			case bgp.BGP_ASPATH_ATTR_TYPE_SET:
				n++
			case bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
				n += len(s.GetAS())
			}
		}
		return n
	}
	tail := make([]bgp.AsPathParamInterface, len(path4))
	for i, s := range path4 {
		tail[i] = s
	}
	lead := count(path) - count(tail)
	if lead < 0 {
		return path
	}
	var out []bgp.AsPathParamInterface
	for _, s := range path {
		if lead == 0 {
			break
		}
		switch s.GetType() {
		case bgp.BGP_ASPATH_ATTR_TYPE_SEQ:
			as := s.GetAS()
			take := min(lead, len(as))
			out = append(out, bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, as[:take]))
			lead -= take
		case bgp.BGP_ASPATH_ATTR_TYPE_SET:
			out = append(out, s)
			lead--
		default: // confederation segments count no AS
			out = append(out, s)
		}
	}
	return append(out, tail...)
}

func addr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a.Unmap()
}

// prefix converts an IPv4 or IPv6 unicast prefix; others are invalid.
func prefix(p bgp.AddrPrefixInterface) netip.Prefix {
	var ip net.IP
	var bits uint8
	switch v := p.(type) {
	case *bgp.IPAddrPrefix:
		ip, bits = v.Prefix.To4(), v.Length
	case *bgp.IPv6AddrPrefix:
		ip, bits = v.Prefix.To16(), v.Length
	default:
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}
	}
	pfx, err := a.Prefix(int(bits))
	if err != nil {
		return netip.Prefix{}
	}
	return pfx
}

// asPath writes an AS path as pmacct does (ASes joined by _, sets in
// braces with commas, confederation segments in parentheses and
// brackets), and returns its first and last AS.
func asPath(path []bgp.AsPathParamInterface) (text string, first, last uint32) {
	var b []byte
	for _, seg := range path {
		var open, sep, end byte
		switch seg.GetType() {
		case bgp.BGP_ASPATH_ATTR_TYPE_SET:
			open, sep, end = '{', ',', '}'
		case bgp.BGP_ASPATH_ATTR_TYPE_CONFED_SEQ:
			open, sep, end = '(', '_', ')'
		case bgp.BGP_ASPATH_ATTR_TYPE_CONFED_SET:
			open, sep, end = '[', ',', ']'
		default:
			sep = '_'
		}
		if len(b) > 0 {
			b = append(b, '_')
		}
		if open != 0 {
			b = append(b, open)
		}
		for i, as := range seg.GetAS() {
			if i > 0 {
				b = append(b, sep)
			}
			b = strconv.AppendUint(b, uint64(as), 10)
			if first == 0 {
				first = as
			}
			last = as
		}
		if end != 0 {
			b = append(b, end)
		}
	}
	return string(b), first, last
}

// extCommunities writes route targets and sites of origin as pmacct does
// ("RT:64500:1_SoO:192.0.2.1:7"): in the order of their eight octets, each
// once (pmacct sorts and dedupes the attribute as it parses it); other
// types are left out.
func extCommunities(cs []bgp.ExtendedCommunityInterface) string {
	type ext struct {
		wire [8]byte
		text string
	}
	var es []ext
	for _, c := range cs {
		_, sub := c.GetTypes()
		var kind string
		switch sub {
		case bgp.EC_SUBTYPE_ROUTE_TARGET:
			kind = "RT:"
		case bgp.EC_SUBTYPE_ROUTE_ORIGIN:
			kind = "SoO:"
		default:
			continue
		}
		var v string
		switch e := c.(type) {
		case *bgp.TwoOctetAsSpecificExtended:
			v = strconv.FormatUint(uint64(e.AS), 10) + ":" + strconv.FormatUint(uint64(e.LocalAdmin), 10)
		case *bgp.FourOctetAsSpecificExtended:
			v = strconv.FormatUint(uint64(e.AS), 10) + ":" + strconv.FormatUint(uint64(e.LocalAdmin), 10)
		case *bgp.IPv4AddressSpecificExtended:
			v = e.IPv4.String() + ":" + strconv.FormatUint(uint64(e.LocalAdmin), 10)
		default:
			continue
		}
		w, err := c.Serialize()
		if err != nil || len(w) != 8 {
			continue
		}
		es = append(es, ext{[8]byte(w), kind + v})
	}
	slices.SortFunc(es, func(x, y ext) int { return bytes.Compare(x.wire[:], y.wire[:]) })
	es = slices.CompactFunc(es, func(x, y ext) bool { return x.wire == y.wire })
	var b []byte
	for _, e := range es {
		if len(b) > 0 {
			b = append(b, '_')
		}
		b = append(b, e.text...)
	}
	return string(b)
}

// largeCommunities writes large communities as pmacct does ("64500:1:2"):
// in numeric order, each once.
func largeCommunities(cs []*bgp.LargeCommunity) string {
	ls := make([][3]uint32, len(cs))
	for i, c := range cs {
		ls[i] = [3]uint32{c.ASN, c.LocalData1, c.LocalData2}
	}
	slices.SortFunc(ls, func(x, y [3]uint32) int { return slices.Compare(x[:], y[:]) })
	ls = slices.Compact(ls)
	var b []byte
	for _, l := range ls {
		if len(b) > 0 {
			b = append(b, '_')
		}
		b = strconv.AppendUint(b, uint64(l[0]), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(l[1]), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(l[2]), 10)
	}
	return string(b)
}
