// Package bench measures flowdex's hot paths end to end. Per-package benchmarks
// live beside their code (aggregate/document, aggregate/transform,
// collector/pmacct, sink/elasticsearch); this one chains them as `flowdex ingest`
// does, so a regression anywhere on the path shows here.
package bench

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/flowdex/flowdex/aggregate/transform"
	"github.com/flowdex/flowdex/collector/pmacct"
	"github.com/flowdex/flowdex/sink/file"
)

// endless replays data forever.
type endless struct {
	data []byte
	off  int
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.data[e.off:])
	e.off = (e.off + n) % len(e.data)
	return n, nil
}

// A p2es-style program: a condition on strings, an `in` list, an AddField with a
// macro and a lookup with a "*" default.
const program = `[
  {"Conditions": [{"ip_proto": "tcp"}, {"port_dst": [80, 443], "__op__": "in"}],
   "Actions": [{"Type": "AddField", "Name": "service", "Value": "web on $ip_dst"}]},
  {"Conditions": [{"bytes": 0, "__op__": ">"}],
   "Actions": [{"Type": "AddFieldLookup", "Name": "proto_class", "LookupFieldName": "ip_proto",
                "LookupTable": {"tcp": "stream", "udp": "datagram", "*": "other"}}]}
]`

// BenchmarkIngestJSON: pmacct print-plugin JSON read, transformed and encoded in
// pmacct's format, one record per iteration (ns/op = ns per record).
func BenchmarkIngestJSON(b *testing.B) {
	data, err := os.ReadFile("../collector/pmacct/testdata/out/print-default.json")
	if err != nil {
		b.Fatal(err)
	}
	prog, err := transform.Parse([]byte(program), "bench", ".")
	if err != nil {
		b.Fatal(err)
	}
	sink := file.New(file.Configuration{Path: "-", Stdout: io.Discard})
	ctx := context.Background()
	if err := sink.Start(ctx); err != nil {
		b.Fatal(err)
	}
	r := pmacct.NewReader(&endless{data: data}, pmacct.Options{Format: pmacct.JSON}, "bench", nil)
	b.SetBytes(int64(len(data) / max(1, bytes.Count(data, []byte("\n")))))
	b.ReportAllocs()
	for b.Loop() {
		rec, err := r.Next()
		if err != nil {
			b.Fatal(err)
		}
		prog.Apply(rec.Doc)
		if err := sink.Write(ctx, rec.Doc, ""); err != nil {
			b.Fatal(err)
		}
	}
}
