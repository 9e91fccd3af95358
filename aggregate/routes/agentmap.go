package routes

import (
	"net/netip"
	"os"

	"github.com/flowdex/flowdex/aggregate/mapfile"
)

// AgentMap is pmacct's bgp_agent_map: which BGP peer's routes the flows of
// an exporter are looked up in, when the exporter does not peer from the
// address it exports from (a router exporting from one interface and
// peering from its loopback). A line is "bgp_ip=PEER ip=EXPORTER", the
// exporter an address or a prefix; the first line whose ip holds the
// exporter wins; an exporter no line holds is its own peer.
type AgentMap struct {
	entries []agentEntry
}

type agentEntry struct {
	exporter netip.Prefix
	peer     netip.Addr
}

// LoadAgentMap reads the map at path.
func LoadAgentMap(path string) (*AgentMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseAgentMap(path, data)
}

// ParseAgentMap parses a map's data; name prefixes the errors
// (file:line:column: ...).
func ParseAgentMap(name string, data []byte) (*AgentMap, error) {
	m := &AgentMap{}
	err := mapfile.Read(name, data, func(n int, pairs []mapfile.Pair) error {
		var e agentEntry
		for _, p := range pairs {
			bad := func(expected string) error {
				return mapfile.Errorf(n, p.ValueCol(), "%s=%q: expected %s", p.Key, p.Value, expected)
			}
			switch p.Key {
			case "bgp_ip":
				a, err := netip.ParseAddr(p.Value)
				if err != nil {
					return bad("the BGP peer's address, e.g. 192.0.2.1")
				}
				e.peer = a.Unmap()
			case "ip":
				pfx, err := mapfile.ParsePrefix(p.Value)
				if err != nil {
					return bad("the exporter's address or a prefix of exporters, e.g. 192.0.2.10 or 192.0.2.0/24")
				}
				e.exporter = pfx
			case "bgp_port", "filter":
				return mapfile.Errorf(n, p.Col, "%s: pmacct's key, which flowdex does not take yet (expected bgp_ip and ip)", p.Key)
			default:
				return mapfile.Errorf(n, p.Col, "unknown key %q (expected bgp_ip and ip)", p.Key)
			}
		}
		switch {
		case !e.peer.IsValid():
			return mapfile.Errorf(n, 1, "no bgp_ip (a line has bgp_ip and ip)")
		case !e.exporter.IsValid():
			return mapfile.Errorf(n, 1, "no ip (a line has bgp_ip and ip)")
		}
		m.entries = append(m.entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Peer returns the address of the BGP peer whose routes exporter's flows
// are looked up in.
func (m *AgentMap) Peer(exporter netip.Addr) netip.Addr {
	for i := range m.entries {
		if m.entries[i].exporter.Contains(exporter) {
			return m.entries[i].peer
		}
	}
	return exporter
}
