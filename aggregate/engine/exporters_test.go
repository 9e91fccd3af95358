package engine

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/collector/datagram"
)

// The table names at most maxTrackedExporters sources; later ones share
// "other", known ones keep their own counters, and each visits all of them.
func TestExporterTableBound(t *testing.T) {
	var tab exporterTable
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range maxTrackedExporters + 500 {
		tab.get(addr(i)).datagrams.Add(1)
	}
	first := tab.get(addr(0))
	if first == &tab.other || first.datagrams.Load() != 1 {
		t.Errorf("a tracked exporter lost its counters")
	}
	if !tab.tracked(addr(maxTrackedExporters-1)) || tab.tracked(addr(maxTrackedExporters)) {
		t.Errorf("tracked: the bound is not at %d", maxTrackedExporters)
	}
	// a v4-mapped v6 source is the same exporter
	if tab.get(netip.AddrFrom16(addr(5).As16())) != tab.get(addr(5)) {
		t.Errorf("a v4-mapped address has counters of its own")
	}
	named, other := 0, uint64(0)
	tab.each(func(a netip.Addr, c *exporterCounters) {
		if !a.IsValid() {
			other = c.datagrams.Load()
			return
		}
		named++
	})
	if named != maxTrackedExporters || other != 500 {
		t.Errorf("each: %d named, other %d; want %d and 500", named, other, maxTrackedExporters)
	}
}

// Datagrams the allow-list refuses are counted per input and take no slot
// in the exporter table.
func TestRejectedTakeNoSlot(t *testing.T) {
	fi := &flowInput{allow: []setting.Prefix{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}}, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for i := range 2 * maxTrackedExporters {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 2055)
		fi.handle(&datagram.Datagram{Source: src, Payload: []byte{0, 9}})
	}
	if fi.rejected.Load() != 2*maxTrackedExporters {
		t.Errorf("rejected %d, want %d", fi.rejected.Load(), 2*maxTrackedExporters)
	}
	n := 0
	fi.exporters.each(func(netip.Addr, *exporterCounters) { n++ })
	if n != 0 {
		t.Errorf("%d exporter entries for refused sources, want 0", n)
	}
}
