package gen

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/datagram"
	"github.com/flowdex/flowdex/collector/netflow"
	"github.com/flowdex/flowdex/collector/pcap"
	"github.com/flowdex/flowdex/collector/sflow"
)

// What the generators write decodes to the totals they return.
func TestNetFlowDecodes(t *testing.T) {
	for _, v := range []int{9, 10} {
		path := filepath.Join(t.TempDir(), "export.pcap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := WriteNetFlow(f, NetFlow{Version: v, Records: 1003, Keys: 100, PerDatagram: 25, TemplateEvery: 20, Seed: 1})
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
		_, err = datagram.Replay(context.Background(), path, 0, func(d *datagram.Datagram) {
			if err := dec.Decode(d.Payload, d.Source.Addr(), d.Received, func(r *flow.Record) {
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
		if got != want || want.Records != 1003 || len(keys) < 90 {
			t.Errorf("v%d: decoded %+v (%d keys), generated %+v", v, got, len(keys), want)
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
