package bgp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/flowdex/flowdex/aggregate/routes"
)

// rawUpdate is an UPDATE for 203.0.113.0/24 with next hop 192.0.2.1 and
// the given AS_PATH and AS4_PATH values (nil: none), parsed by GoBGP.
func rawUpdate(t *testing.T, path, path4 []byte) *bgp.BGPUpdate {
	t.Helper()
	attrs := []byte{0x40, 1, 1, 0} // ORIGIN IGP
	attrs = append(append(attrs, 0x40, 2, byte(len(path))), path...)
	attrs = append(attrs, 0x40, 3, 4, 192, 0, 2, 1)
	if path4 != nil {
		attrs = append(append(attrs, 0xc0, 17, byte(len(path4))), path4...)
	}
	body := binary.BigEndian.AppendUint16(nil, 0) // no withdrawals
	body = binary.BigEndian.AppendUint16(body, uint16(len(attrs)))
	body = append(append(body, attrs...), 24, 203, 0, 113)
	msg := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, 0, bgp.BGP_MSG_UPDATE)
	binary.BigEndian.PutUint16(msg[16:], uint16(len(msg)+len(body)))
	m, err := bgp.ParseBGPMessage(append(msg, body...))
	if err != nil {
		t.Fatal(err)
	}
	return m.Body.(*bgp.BGPUpdate)
}

// seg is an AS path segment of two- or four-octet ASes.
func seg(typ byte, octets int, as ...uint32) []byte {
	b := []byte{typ, byte(len(as))}
	for _, a := range as {
		if octets == 2 {
			b = binary.BigEndian.AppendUint16(b, uint16(a))
		} else {
			b = binary.BigEndian.AppendUint32(b, a)
		}
	}
	return b
}

type recorded map[netip.Prefix]routes.Attrs

func (r recorded) Announce(p netip.Prefix, _ uint32, a *routes.Attrs) { r[p] = *a }
func (r recorded) Withdraw(p netip.Prefix, _ uint32) bool {
	_, ok := r[p]
	delete(r, p)
	return ok
}

// A two-octet sender's path (BMP's A flag, a BGP peer without the
// four-octet AS capability) is read as two-octet even where GoBGP's parser
// takes it for a four-octet one, and its AS4_PATH replaces the AS_TRANS
// it carries (RFC 6793); a four-octet path is read as such.
func TestUpdateAttrsASWidth(t *testing.T) {
	const seq, set = bgp.BGP_ASPATH_ATTR_TYPE_SEQ, bgp.BGP_ASPATH_ATTR_TYPE_SET
	for _, tt := range []struct {
		name        string
		path, path4 []byte
		as2         bool
		want        string
		peer, orig  uint32
	}{
		{"four octets", seg(seq, 4, 64500, 4200000001), nil, false, "64500_4200000001", 64500, 4200000001},
		// parses as four octets too: 64500<<16|64501 and 0x0201<<16|64502
		{"two octets GoBGP takes for four", append(seg(seq, 2, 64500, 64501), seg(seq, 2, 64502)...), nil, true, "64500_64501_64502", 64500, 64502},
		{"the same as GoBGP guesses", append(seg(seq, 2, 64500, 64501), seg(seq, 2, 64502)...), nil, false, "4227136501_33684470", 4227136501, 33684470},
		{"AS4_PATH merged", seg(seq, 2, 64510, 23456, 23456), seg(seq, 4, 4200000001, 4200000002), true, "64510_4200000001_4200000002", 64510, 4200000002},
		{"AS4_PATH merged after a set", append(seg(seq, 2, 64510), seg(set, 2, 23456, 64512)...), seg(set, 4, 4200000001, 64512), true, "64510_{4200000001,64512}", 64510, 64512},
		{"AS4_PATH longer: ignored", seg(seq, 2, 64510), seg(seq, 4, 4200000001, 4200000002), true, "64510", 64510, 64510},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := recorded{}
			if n, w := ApplyUpdate(rawUpdate(t, tt.path, tt.path4), tt.as2, nil, got); n != 1 || w != 0 {
				t.Fatalf("%d announced, %d withdrawn", n, w)
			}
			want := routes.Attrs{ASPath: tt.want, PeerAS: tt.peer, OriginAS: tt.orig, NextHop: netip.MustParseAddr("192.0.2.1")}
			if a := got[netip.MustParsePrefix("203.0.113.0/24")]; a != want {
				t.Errorf("%+v\nwant %+v", a, want)
			}
		})
	}
}

// Communities of every kind are written in order and once each, as pmacct
// sorts and dedupes them when it parses the attribute, whatever the order
// on the wire (BIRD sends them sorted; other speakers need not).
func TestUpdateAttrsCommunitiesSorted(t *testing.T) {
	u := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{64500})}),
		bgp.NewPathAttributeNextHop("192.0.2.1"),
		bgp.NewPathAttributeCommunities([]uint32{58153<<16 | 439, 28374<<16 | 735, 58153<<16 | 439, 38605<<16 | 480}),
		bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{
			bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 64500, 9, true),
			bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_ORIGIN, 64500, 1, true),
			bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 64500, 2, true),
			bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 64500, 9, true),
		}),
		bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{
			bgp.NewLargeCommunity(64500, 2, 1), bgp.NewLargeCommunity(64500, 1, 7), bgp.NewLargeCommunity(64499, 9, 9), bgp.NewLargeCommunity(64500, 1, 7),
		}),
	}, []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "203.0.113.0")}).Body.(*bgp.BGPUpdate)
	a := UpdateAttrs(u, false)
	want := [3]string{"28374:735_38605:480_58153:439", "RT:64500:2_RT:64500:9_SoO:64500:1", "64499:9:9_64500:1:7_64500:2:1"}
	if got := [3]string{a.StdComm, a.ExtComm, a.LrgComm}; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
