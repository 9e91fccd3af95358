package gen

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/datagram"
	"github.com/flowdex/flowdex/collector/netflow"
	"github.com/flowdex/flowdex/collector/pcap"
	"github.com/flowdex/flowdex/collector/sflow"
)

// What the generators write decodes to the totals they return; several
// exporters each send their template before their data; routed addresses
// are unicast ones outside the default keys' ranges.
func TestNetFlowDecodes(t *testing.T) {
	for _, tt := range []struct {
		v, exporters int
		routed       bool
	}{{9, 0, false}, {10, 0, false}, {9, 3, true}, {10, 3, true}} {
		v := tt.v
		path := filepath.Join(t.TempDir(), "export.pcap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := WriteNetFlow(f, NetFlow{Version: v, Records: 3003, Keys: 100, PerDatagram: 25, TemplateEvery: 20, Seed: 1,
			Exporters: tt.exporters, Routed: tt.routed})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		dec, err := netflow.New(netflow.DefaultConfiguration(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got Totals
		keys := map[flow.Key]bool{}
		exporters := map[netip.Addr]bool{}
		slash8s := map[byte]bool{}
		_, err = datagram.Replay(context.Background(), path, 0, func(d *datagram.Datagram) {
			exporters[d.Source.Addr()] = true
			if err := dec.Decode(d.Payload, d.Source.Addr(), d.Received, func(r *flow.Record) {
				if tt.routed {
					for _, a := range []netip.Addr{r.SrcIP, r.DstIP} {
						b := a.As4()
						if b[0] < 1 || b[0] > 223 {
							t.Errorf("%+v: address %s", tt, a)
						}
						slash8s[b[0]] = true
					}
				}
				got.Records++
				got.Packets += int64(r.Packets)
				got.Bytes += int64(r.Bytes)
				k := r.Key
				k.TimestampStart, k.TimestampEnd, k.TimestampArrival, k.TimestampExport, k.ExportProtoSeqno = 0, 0, 0, 0, 0
				keys[k] = true
			}); err != nil {
				t.Errorf("v%d: %v", v, err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if tt.routed && len(slash8s) < 50 {
			t.Errorf("%+v: addresses in %d /8s only", tt, len(slash8s))
		}
		if got != want || want.Records != 3003 || len(keys) < 90 || len(exporters) != max(tt.exporters, 1) {
			t.Errorf("%+v: decoded %+v (%d keys, %d exporters), generated %+v", tt, got, len(keys), len(exporters), want)
		}
	}
}

func TestSFlowDecodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sflow.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := WriteSFlow(f, SFlow{Samples: 1001, Keys: 100, PerDatagram: 8, Rate: 1000, Seed: 1})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := sflow.New(sflow.DefaultConfiguration(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Totals
	ports := 0
	_, err = datagram.Replay(context.Background(), path, 0, func(d *datagram.Datagram) {
		if err := dec.Decode(d.Payload, d.Source.Addr(), d.Received, func(r *flow.Record) {
			got.Records++
			got.Packets += int64(r.Packets)
			got.Bytes += int64(r.Bytes)
			if r.DstPort != 0 && r.SrcIP.IsValid() {
				ports++
			}
		}); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != want || ports != 1001 {
		t.Errorf("decoded %+v (%d with ports), generated %+v", got, ports, want)
	}
}

func TestTrafficParses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traffic.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := WriteTraffic(f, Traffic{Packets: 1000, Keys: 50, Seed: 1})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg := pcap.DefaultConfiguration()
	cfg.File = path
	c, err := pcap.Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Totals
	if err := c.Run(context.Background(), func(r *flow.Record) {
		got.Records++
		got.Packets += int64(r.Packets)
		got.Bytes += int64(r.Bytes)
	}); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("parsed %+v, generated %+v", got, want)
	}
}
