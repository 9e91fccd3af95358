package pcap

import (
	"net/netip"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/packet"
)

// The fragment table as pmacctd's: later fragments take the first one's ports;
// those seen before it are held and added to its record; one whose first never
// comes within 60 s is counted as orphaned, never silently lost.
func TestFragments(t *testing.T) {
	type frag struct {
		first bool
		at    int64 // seconds
		id    uint32
	}
	type out struct {
		emitted bool
		port    uint16
		packets uint64
		bytes   uint64
	}
	for _, tt := range []struct {
		name          string
		hold          bool
		frags         []frag
		want          []out
		orphanPackets uint64
	}{
		{"in order", true, []frag{{true, 0, 1}, {false, 0, 1}, {false, 0, 1}},
			[]out{{true, 53, 1, 100}, {true, 53, 1, 100}, {true, 53, 1, 100}}, 0},
		{"last first", true, []frag{{false, 0, 1}, {true, 0, 1}, {false, 0, 1}},
			[]out{{false, 0, 0, 0}, {true, 53, 2, 200}, {true, 53, 1, 100}}, 0},
		{"two datagrams", true, []frag{{false, 0, 1}, {false, 0, 2}, {true, 0, 2}},
			[]out{{false, 0, 0, 0}, {false, 0, 0, 0}, {true, 53, 2, 200}}, 1},
		{"first too late", true, []frag{{false, 0, 1}, {true, 61, 1}, {false, 62, 1}},
			[]out{{false, 0, 0, 0}, {true, 53, 1, 100}, {true, 53, 1, 100}}, 1},
		{"ports expire", true, []frag{{true, 0, 1}, {false, 61, 1}},
			[]out{{true, 53, 1, 100}, {false, 0, 0, 0}}, 1},
		{"external sampling: no holding", false, []frag{{false, 0, 1}, {true, 0, 1}},
			[]out{{true, 0, 1, 100}, {true, 53, 1, 100}}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFragments(tt.hold)
			for i, fr := range tt.frags {
				r := flow.Record{Key: flow.Key{Fixed: flow.Fixed{SrcIP: netip.MustParseAddr("192.0.2.1"), DstIP: netip.MustParseAddr("192.0.2.2"), Proto: 17}}, Packets: 1, Bytes: 100}
				if fr.first {
					r.SrcPort, r.DstPort = 5000, 53
				}
				ok := f.account(&r, packet.Info{Fragment: true, FragFirst: fr.first, FragID: fr.id}, fr.at*1e6)
				got := out{ok, 0, 0, 0}
				if ok {
					got = out{ok, r.DstPort, r.Packets, r.Bytes}
				}
				if got != tt.want[i] {
					t.Errorf("fragment %d: %+v, want %+v", i, got, tt.want[i])
				}
			}
			f.close()
			if f.orphanPackets.Load() != tt.orphanPackets || f.orphanBytes.Load() != tt.orphanPackets*100 {
				t.Errorf("orphaned %d packets %d bytes, want %d", f.orphanPackets.Load(), f.orphanBytes.Load(), tt.orphanPackets)
			}
		})
	}
}
