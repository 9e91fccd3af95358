package routes

import (
	"net/netip"
	"testing"
)

func TestAgentMap(t *testing.T) {
	m, err := ParseAgentMap("m", []byte("! routers peering from their loopbacks\nbgp_ip=192.0.2.1 ip=198.51.100.1\nbgp_ip=192.0.2.2 ip=198.51.100.0/24\nbgp_ip=2001:db8::1 ip=2001:db8:1::/48\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ exporter, peer string }{
		{"198.51.100.1", "192.0.2.1"}, // the first line that holds it
		{"198.51.100.7", "192.0.2.2"},
		{"2001:db8:1::9", "2001:db8::1"},
		{"203.0.113.1", "203.0.113.1"}, // none: its own peer
	} {
		if got := m.Peer(netip.MustParseAddr(tt.exporter)); got != netip.MustParseAddr(tt.peer) {
			t.Errorf("%s: peer %s, want %s", tt.exporter, got, tt.peer)
		}
	}
	for _, tt := range []struct{ src, want string }{
		{"bgp_ip=192.0.2.1\n", "m:1:1: no ip (a line has bgp_ip and ip)"},
		{"bgp_ip=192.0.2.300 ip=1.2.3.4\n", `m:1:8: bgp_ip="192.0.2.300": expected the BGP peer's address, e.g. 192.0.2.1`},
		{"bgp_ip=192.0.2.1 ip=1.2.3.4/33\n", `m:1:21: ip="1.2.3.4/33": expected the exporter's address or a prefix of exporters, e.g. 192.0.2.10 or 192.0.2.0/24`},
		{"bgp_ip=192.0.2.1 ip=1.2.3.4 bgp_port=179\n", "m:1:29: bgp_port: pmacct's key, which flowdex does not take yet (expected bgp_ip and ip)"},
		{"bgp_ip=192.0.2.1 ipp=1.2.3.4\n", `m:1:18: unknown key "ipp" (expected bgp_ip and ip)`},
	} {
		if _, err := ParseAgentMap("m", []byte(tt.src)); err == nil || err.Error() != tt.want {
			t.Errorf("%q: %v, want %s", tt.src, err, tt.want)
		}
	}
}
