package engine

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/collector/datagram"
	"github.com/flowdex/flowdex/collector/exporter"
)

// Datagrams the allow-list refuses are counted per input and take no slot
// in the exporter table.
func TestRejectedTakeNoSlot(t *testing.T) {
	fi := &flowInput{allow: []setting.Prefix{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}}, exporters: exporter.NewTable(0),
		logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const n = 2 * exporter.DefaultMax
	for i := range n {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 2055)
		fi.handle(&datagram.Datagram{Source: src, Payload: []byte{0, 9}})
	}
	if fi.rejected.Load() != n {
		t.Errorf("rejected %d, want %d", fi.rejected.Load(), n)
	}
	if l := fi.exporters.Len(); l != 0 {
		t.Errorf("%d exporter entries for refused sources, want 0", l)
	}
}

// exporters = [] in a configuration is no allow-list: every source is
// decoded, as without the key.
func TestEmptyAllowListAllowsAll(t *testing.T) {
	c, err := config.Parse("flowdex.toml", []byte("[[input]]\ntype = \"sflow\"\nexporters = []\nlisten = [\"127.0.0.1:0\"]\n[[pipeline]]\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(c, Options{Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	fi := e.flowInputs[0]
	fi.handle(&datagram.Datagram{Source: netip.MustParseAddrPort("198.51.100.1:6343"), Payload: []byte{0, 0, 0, 5}})
	if fi.rejected.Load() != 0 || fi.datagrams.Load() != 1 {
		t.Errorf("rejected %d, decoded %d: an empty allow-list refused a source", fi.rejected.Load(), fi.datagrams.Load())
	}
}
