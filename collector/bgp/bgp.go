// Package bgp is pmacct's bgp_daemon: a passive BGP speaker that routers
// peer with, each peer's routes kept in its Adj-RIB-In (aggregate/routes)
// for flows to be looked up in. It announces nothing.
//
// Sessions follow RFC 4271: OPEN with the multiprotocol (IPv4 and IPv6
// unicast), four-octet AS and route-refresh capabilities, the hold time the
// smaller of both sides' (keepalives at a third of it), NOTIFICATION before
// every close flowdex decides. Message parsing is GoBGP's packet package. A
// malformed UPDATE resets the session (NOTIFICATION with GoBGP's error
// code) and drops the peer's routes, as a session that went down does; the
// other peers go on.
package bgp

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/setting"
)

// Configuration is the listener's.
type Configuration struct {
	// Listen is the TCP address sessions come to ("0.0.0.0:179").
	Listen string
	// ASN is flowdex's AS; RouterID its BGP identifier (default: the
	// listening address when it is an IPv4 one, else 0.0.0.1).
	ASN      uint32
	RouterID netip.Addr
	// HoldTime is proposed in OPEN (default 90s; 0: no keepalives).
	HoldTime time.Duration
	// Peers are who may open a session; a connection from elsewhere is
	// closed and counted.
	Peers []PeerConfiguration
	// Texts says what the routes' texts keep (communities, AS path hops).
	Texts routes.Texts
}

// PeerConfiguration says who may peer.
type PeerConfiguration struct {
	Prefix netip.Prefix // the peers' addresses
	ASN    uint32       // their AS; 0: any
	// MaxPrefixes closes a session whose table grows past it (RFC 4486's
	// Cease, maximum number of prefixes reached); 0: no bound.
	MaxPrefixes int
	// Password is the TCP MD5 signature key (RFC 2385) of the sessions; "":
	// none. Up to 80 bytes.
	Password string
}

// DefaultConfiguration returns the defaults.
func DefaultConfiguration() Configuration {
	return Configuration{Listen: "0.0.0.0:179", HoldTime: 90 * time.Second}
}

// Validate checks the configuration; its errors name the key
// (setting.KeyError), "peer#N.key" for the N-th peer's.
func (c *Configuration) Validate() error {
	switch {
	case c.ASN == 0:
		return setting.Errorf("asn", "missing (expected flowdex's AS number, from 1 to 4294967295)")
	case c.HoldTime != 0 && (c.HoldTime < 3*time.Second || c.HoldTime > 65535*time.Second):
		return setting.Errorf("hold_time", "%s: expected 0, or from 3s to 65535s", c.HoldTime)
	case len(c.Peers) == 0:
		return setting.Errorf("peer", "none may peer (expected at least one [[bgp.peer]] with a prefix)")
	case c.RouterID.IsValid() && !c.RouterID.Is4():
		return setting.Errorf("router_id", "%s is not an IPv4 address", c.RouterID)
	}
	if err := c.Texts.Validate(); err != nil {
		return err
	}
	for i, p := range c.Peers {
		if !p.Prefix.IsValid() {
			return setting.Errorf(fmt.Sprintf("peer#%d.prefix", i), "missing (expected the peers' addresses, e.g. \"192.0.2.0/24\")")
		}
		if len(p.Password) > 80 {
			return setting.Errorf(fmt.Sprintf("peer#%d.password", i), "%d bytes, more than TCP MD5's 80", len(p.Password))
		}
		if p.MaxPrefixes < 0 {
			return setting.Errorf(fmt.Sprintf("peer#%d.max_prefixes", i), "%d is negative (expected 0 for no bound, or more)", p.MaxPrefixes)
		}
	}
	return nil
}

// peer returns the configuration of the peer at addr, false if it may not
// peer.
func (c *Configuration) peer(addr netip.Addr) (PeerConfiguration, bool) {
	for _, p := range c.Peers {
		if p.Prefix.Contains(addr.Unmap()) {
			return p, true
		}
	}
	return PeerConfiguration{}, false
}
