package bgp

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/flowdex/flowdex/aggregate/routes"
)

// update applies an UPDATE to the peer's Adj-RIB-In: withdrawals first,
// then the announced routes with the message's attributes.
func (s *session) update(u *bgp.BGPUpdate) error {
	var a routes.Attrs
	var reach []bgp.AddrPrefixInterface
	var unreach []bgp.AddrPrefixInterface
	for _, pa := range u.PathAttributes {
		switch v := pa.(type) {
		case *bgp.PathAttributeAsPath:
			a.ASPath, a.PeerAS, a.OriginAS = asPath(v)
		case *bgp.PathAttributeNextHop:
			a.NextHop = addr(v.Value)
		case *bgp.PathAttributeMultiExitDisc:
			a.MED = v.Value
		case *bgp.PathAttributeLocalPref:
			a.LocalPref = v.Value
		case *bgp.PathAttributeCommunities:
			for _, c := range v.Value {
				a.StdComm = routes.AppendCommunity(a.StdComm, c)
			}
		case *bgp.PathAttributeExtendedCommunities:
			a.ExtComm = extCommunities(v.Value)
		case *bgp.PathAttributeLargeCommunities:
			a.LrgComm = largeCommunities(v.Values)
		case *bgp.PathAttributeMpReachNLRI:
			reach = v.Value
			if nh := addr(v.Nexthop); nh.IsValid() {
				a.NextHop = nh
			}
		case *bgp.PathAttributeMpUnreachNLRI:
			unreach = v.Value
		}
	}
	withdrawn := 0
	for _, p := range u.WithdrawnRoutes {
		if s.peer.Withdraw(prefix(p)) {
			withdrawn++
		}
	}
	for _, p := range unreach {
		if s.peer.Withdraw(prefix(p)) {
			withdrawn++
		}
	}
	s.l.withdrawn.Add(uint64(withdrawn))
	announced := 0
	for _, p := range u.NLRI {
		if pfx := prefix(p); pfx.IsValid() {
			s.peer.Announce(pfx, &a)
			announced++
		}
	}
	for _, p := range reach {
		if pfx := prefix(p); pfx.IsValid() {
			s.peer.Announce(pfx, &a)
			announced++
		}
	}
	s.l.announced.Add(uint64(announced))
	if s.cfg.MaxPrefixes > 0 && announced > 0 && s.peer.Len() > s.cfg.MaxPrefixes {
		return fail(reasonMaxPrefixes, ceaseMaxPrefixes, "%d routes, past max_prefixes %d", s.peer.Len(), s.cfg.MaxPrefixes)
	}
	return nil
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
func asPath(p *bgp.PathAttributeAsPath) (text string, first, last uint32) {
	var b []byte
	for _, seg := range p.Value {
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
// ("RT:64500:1_SoO:192.0.2.1:7"); other types are left out.
func extCommunities(cs []bgp.ExtendedCommunityInterface) string {
	var b []byte
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
		if len(b) > 0 {
			b = append(b, '_')
		}
		b = append(append(b, kind...), v...)
	}
	return string(b)
}

// largeCommunities writes large communities as pmacct does ("64500:1:2").
func largeCommunities(cs []*bgp.LargeCommunity) string {
	var b []byte
	for _, c := range cs {
		if len(b) > 0 {
			b = append(b, '_')
		}
		b = strconv.AppendUint(b, uint64(c.ASN), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(c.LocalData1), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(c.LocalData2), 10)
	}
	return string(b)
}
