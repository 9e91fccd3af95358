// Package bmp is pmacct's bmp_daemon: a passive BMP v3 (RFC 7854)
// collector routers connect to, to tell flowdex the routes their BGP peers
// send them. Each router gets one view in a routes.RIB, keyed by the
// address its BMP session comes from, merging the Adj-RIBs-In of all its
// monitored peers (routes.Peer's AnnounceFrom): flows exported by the
// router are looked up in it.
//
// Route Monitoring messages carry UPDATEs, applied by collector/bgp's
// ApplyUpdate as a BGP session's are; Peer Up and Peer Down bring and take
// a monitored peer (a peer down drops its routes); a Termination, a closed
// connection or a message flowdex cannot read ends the session and drops
// all of the router's routes, the other routers going on. Post-policy
// Adj-RIB-In routes (the L flag) are taken by default, pre-policy ones
// counted and left (or the other way round with policy "pre"); Adj-RIB-Out
// (RFC 8671), Loc-RIB (RFC 9069) and VPN-instance peers are counted and
// left. Message parsing is GoBGP's bmp package.
package bmp

import (
	"fmt"
	"net/netip"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/setting"
)

// Configuration is the collector's.
type Configuration struct {
	// Listen is the TCP address routers connect to ("0.0.0.0:1790",
	// pmacct's bmp_daemon_port).
	Listen string
	// Routers are the addresses that may connect; a connection from
	// elsewhere is closed and counted.
	Routers []netip.Prefix
	// Policy is which Adj-RIB-In is taken: "post" (post-policy, the L
	// flag set: what the router kept after its import policy) or "pre".
	Policy string
	// Texts says what the routes' texts keep (communities, AS path hops).
	Texts routes.Texts
}

// DefaultConfiguration returns the defaults.
func DefaultConfiguration() Configuration {
	return Configuration{Listen: "0.0.0.0:1790", Policy: "post"}
}

// Validate checks the configuration; its errors name the key
// (setting.KeyError).
func (c *Configuration) Validate() error {
	if len(c.Routers) == 0 {
		return setting.Errorf("routers", "none may connect (expected the routers' addresses, e.g. [\"192.0.2.0/24\"])")
	}
	for i, p := range c.Routers {
		if !p.IsValid() {
			return setting.Errorf(fmt.Sprintf("routers#%d", i), "not a prefix (expected e.g. \"192.0.2.0/24\")")
		}
	}
	if c.Policy != "post" && c.Policy != "pre" {
		return setting.Errorf("policy", "%q (expected \"post\", post-policy Adj-RIB-In, or \"pre\")", c.Policy)
	}
	return c.Texts.Validate()
}

// allowed tells whether addr may connect.
func (c *Configuration) allowed(addr netip.Addr) bool {
	for _, p := range c.Routers {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
