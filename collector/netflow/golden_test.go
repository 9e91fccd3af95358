package netflow

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/exporter"
)

// TestCompiledMatchesGoflow decodes every capture with the compiled path and
// with goflow2's generic decoders, and wants the same records, field by
// field, in the same order.
func TestCompiledMatchesGoflow(t *testing.T) {
	configs := map[string]Configuration{
		"default":      DefaultConfiguration(),
		"ip-next-hop":  {UseIPNextHop: true, TimeSecs: true},
		"sampling-set": {Sampling: exporter.SamplingOverrides{{Exporters: prefix("0.0.0.0/0"), Rate: 7}}},
	}
	for _, path := range captures(t) {
		dgs := readPcap(t, path)
		for name, cfg := range configs {
			t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path)+"/"+name, func(t *testing.T) {
				d := mustNew(t, cfg)
				ref := newReference(t, cfg)
				total := 0
				for i, dg := range dgs {
					var got []flow.Record
					err := d.Decode(dg.payload, dg.exporter, dg.received, func(r *flow.Record) { got = append(got, *r) })
					if err != nil {
						t.Errorf("datagram %d: %v", i, err)
					}
					want, err := ref.decode(dg)
					if err != nil {
						t.Fatalf("datagram %d: goflow2: %v", i, err)
					}
					if len(got) != len(want) {
						t.Fatalf("datagram %d: %d records, goflow2 %d", i, len(got), len(want))
					}
					for j := range got {
						if got[j] != want[j] {
							t.Errorf("datagram %d record %d differs:\n%s", i, j, diff(got[j], want[j]))
						}
					}
					total += len(got)
				}
				if total == 0 {
					t.Fatal("no record decoded")
				}
				if s := d.Stats(); s.Records != uint64(total) || s.Malformed != 0 {
					t.Errorf("stats: %d records, %d malformed; want %d, 0", s.Records, s.Malformed, total)
				}
			})
		}
	}
}

// diff lists the fields that differ between two records.
func diff(got, want flow.Record) string {
	var b strings.Builder
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	var walk func(g, w reflect.Value, prefix string)
	walk = func(g, w reflect.Value, prefix string) {
		for i := range g.NumField() {
			f := g.Type().Field(i)
			if f.Anonymous {
				walk(g.Field(i), w.Field(i), prefix)
				continue
			}
			if !g.Field(i).Equal(w.Field(i)) {
				fmt.Fprintf(&b, "\t%s%s: got %v, goflow2 %v\n", prefix, f.Name, g.Field(i), w.Field(i))
			}
		}
	}
	walk(g, w, "")
	return b.String()
}
