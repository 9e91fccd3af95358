package netflow

import (
	"bytes"
	"errors"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// Benchmarks of one data datagram of 25 records (templates already known),
// per record:
//
//	compiled        Decode: our set walk, compiled templates
//	goflow2-decode  goflow2's DecodeMessageVersion alone, no conversion:
//	                the floor of any path using its generic data decoding
//	goflow2-convert the same plus the test's element-by-element conversion
//	goflow2-rawsets goflow2 walks the datagram, our store answers
//	                ErrorTemplateNotFound for data templates, and the raw
//	                sets go through the compiled templates (the idea of
//	                letting goflow2 keep the structure)
//
//	go test -run '^$' -bench . -benchtime 2s ./collector/netflow

const benchRecords = 25

var (
	benchV9Fields = []fld{{8, 4, 0}, {12, 4, 0}, {15, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0}, {5, 1, 0},
		{6, 1, 0}, {10, 2, 0}, {14, 2, 0}, {1, 4, 0}, {2, 4, 0}, {22, 4, 0}, {21, 4, 0}, {16, 2, 0},
		{17, 2, 0}, {9, 1, 0}, {13, 1, 0}, {61, 1, 0}}
	benchIPFIXFields = []fld{{8, 4, 0}, {12, 4, 0}, {18, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0}, {5, 1, 0},
		{6, 1, 0}, {10, 4, 0}, {14, 4, 0}, {1, 8, 0}, {2, 8, 0}, {152, 8, 0}, {153, 8, 0}, {16, 4, 0},
		{17, 4, 0}, {9, 1, 0}, {13, 1, 0}, {61, 1, 0}, {48, 1, 0}}
)

func benchRecord(fields []fld, i int) []byte {
	var b []byte
	for _, f := range fields {
		v := make([]byte, f.length)
		for j := range v {
			v[j] = byte(i*7 + j + int(f.typ))
		}
		b = append(b, v...)
	}
	return b
}

// benchDatagrams returns the templates datagram and a data datagram.
func benchDatagrams(version uint16) (templates, data []byte) {
	var records [][]byte
	if version == versionV9 {
		for i := range benchRecords {
			records = append(records, benchRecord(benchV9Fields, i))
		}
		return v9(1, set(v9TemplateSet, tmpl(9, 300, benchV9Fields...))),
			v9(benchRecords, set(300, records...))
	}
	for i := range benchRecords {
		records = append(records, benchRecord(benchIPFIXFields, i))
	}
	return ipfix(set(ipfixTemplateSet, tmpl(10, 300, benchIPFIXFields...)),
			set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{48, 1, 0}, {34, 4, 0}}), u16(0))),
		ipfix(set(300, records...))
}

// perRecord runs fn b.N times and reports time and allocations per record.
func perRecord(b *testing.B, records int, fn func()) {
	fn() // warm up pools
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		fn()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	n := float64(b.N * records)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/record")
	b.ReportMetric(n/b.Elapsed().Seconds()/1e6, "Mrecords/s")
}

func BenchmarkDecode(b *testing.B) {
	for _, version := range []uint16{versionV9, versionIPFIX} {
		name := map[uint16]string{versionV9: "v9", versionIPFIX: "ipfix"}[version]
		templates, data := benchDatagrams(version)

		b.Run(name+"/compiled", func(b *testing.B) {
			d := mustNew(b, DefaultConfiguration())
			n := 0
			emit := func(*flow.Record) { n++ }
			if err := d.Decode(templates, exporterA, arrival, emit); err != nil {
				b.Fatal(err)
			}
			perRecord(b, benchRecords, func() {
				if err := d.Decode(data, exporterA, arrival, emit); err != nil {
					b.Fatal(err)
				}
			})
			if n != (b.N+1)*benchRecords {
				b.Fatalf("%d records", n)
			}
		})

		b.Run(name+"/goflow2-decode", func(b *testing.B) {
			ts := goflow.CreateTemplateSystem()
			var p9 goflow.NFv9Packet
			var p10 goflow.IPFIXPacket
			if err := goflow.DecodeMessageVersion(bytes.NewBuffer(templates), ts, &p9, &p10); err != nil {
				b.Fatal(err)
			}
			perRecord(b, benchRecords, func() {
				var p9 goflow.NFv9Packet
				var p10 goflow.IPFIXPacket
				if err := goflow.DecodeMessageVersion(bytes.NewBuffer(data), ts, &p9, &p10); err != nil {
					b.Fatal(err)
				}
			})
		})

		b.Run(name+"/goflow2-convert", func(b *testing.B) {
			ref := newReference(b, DefaultConfiguration())
			dg := datagram{payload: templates, exporter: exporterA, received: arrival}
			if _, err := ref.decode(dg); err != nil {
				b.Fatal(err)
			}
			dg.payload = data
			perRecord(b, benchRecords, func() {
				if recs, err := ref.decode(dg); err != nil || len(recs) != benchRecords {
					b.Fatal(len(recs), err)
				}
			})
		})

		b.Run(name+"/goflow2-rawsets", func(b *testing.B) {
			d := mustNew(b, DefaultConfiguration())
			if err := d.Decode(templates, exporterA, arrival, func(*flow.Record) {}); err != nil {
				b.Fatal(err)
			}
			n := 0
			emit := func(*flow.Record) { n++ }
			perRecord(b, benchRecords, func() {
				if err := decodeRawSets(d, data, emit); err != nil {
					b.Fatal(err)
				}
			})
			if n != (b.N+1)*benchRecords {
				b.Fatalf("%d records", n)
			}
		})
	}

	rec := v5rec{src: "192.0.2.1", dst: "198.51.100.1", nh: "203.0.113.1", proto: 6, pkts: 3, octets: 300}.bytes()
	var recs [][]byte
	for range 30 {
		recs = append(recs, rec)
	}
	v5data := v5(30, 0, recs...)
	b.Run("v5/compiled", func(b *testing.B) {
		d := mustNew(b, DefaultConfiguration())
		perRecord(b, 30, func() {
			if err := d.Decode(v5data, exporterA, arrival, func(*flow.Record) {}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("v5/goflow2-decode", func(b *testing.B) {
		perRecord(b, 30, func() {
			var p netflowlegacy.PacketNetFlowV5
			if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(v5data), &p); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// rawSetsSystem hides data templates from goflow2, so that it leaves their
// sets raw.
type rawSetsSystem struct{ templateSystem }

func (s rawSetsSystem) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	e := s.state()
	defer s.d.release(e)
	if t := e.template(templateKey{version, domain, id}); t != nil && t.options {
		return goflowOf(t), nil
	}
	return nil, goflow.ErrorTemplateNotFound
}

// decodeRawSets is the "let goflow2 walk the datagram" alternative: goflow2
// decodes the structure, template and option sets, and data sets come back
// raw, with ErrorTemplateNotFound joined into the error, for the compiled
// templates to read.
func decodeRawSets(d *Decoder, payload []byte, emit func(*flow.Record)) error {
	var p9 goflow.NFv9Packet
	var p10 goflow.IPFIXPacket
	err := goflow.DecodeMessageVersion(bytes.NewBuffer(payload), rawSetsSystem{d.templateSystem(exporterA)}, &p9, &p10)
	if err != nil && !errors.Is(err, goflow.ErrorTemplateNotFound) {
		return err
	}
	e := d.lookup(exporterA, d.exporters.Get(exporterA))
	defer d.release(e)
	st := d.states.Get().(*state)
	defer d.states.Put(st)
	h := header{version: versionIPFIX, secs: p10.ExportTime, seq: p10.SequenceNumber, domain: p10.ObservationDomainId}
	sets := p10.FlowSets
	if p9.Version == versionV9 {
		h = header{version: versionV9, uptime: p9.SystemUptime, secs: p9.UnixSeconds, seq: p9.SequenceNumber, domain: p9.SourceId}
		sets = p9.FlowSets
	}
	st.base = flow.Record{Flows: 1}
	st.base.PeerSrcIP = e.addr
	st.base.ExportProtoVersion = h.version
	for _, s := range sets {
		switch s := s.(type) {
		case goflow.RawFlowSet:
			if t := e.template(templateKey{h.version, h.domain, s.Id}); t != nil && !t.options {
				if err := d.dataSet(st, e, t, &h, s.Records, emit); err != nil {
					return err
				}
			}
		case goflow.OptionsDataFlowSet:
			for i := range s.Records {
				d.samplingOption(e, &h, &s.Records[i])
			}
		}
	}
	return nil
}

// fullStore fills a decoder saving to path with the largest templates, 224
// per exporter (16 MiB, the default bound of one exporter), from exporters
// exporters.
func fullStore(tb testing.TB, path string, exporters int) *Decoder {
	d := mustNew(tb, Configuration{TemplatesFile: path})
	for i := range exporters {
		src := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)})
		for id := range uint16(224) {
			if err := d.Decode(largestTemplate(300+id), src, arrival, func(*flow.Record) {}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return d
}

// BenchmarkSaveStore saves a store at the default bound in all (128 MiB:
// 8 exporters of 224 of the largest templates, 1,792 templates of 2,298
// fields): B/op is what a save allocates.
//
//	go test -run '^$' -bench SaveStore -benchtime 3x ./collector/netflow
func BenchmarkSaveStore(b *testing.B) {
	d := fullStore(b, filepath.Join(b.TempDir(), "templates.json"), 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Save(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadStore loads the file of BenchmarkSaveStore: ns/op is how
// long a start takes to read a file at the bound.
func BenchmarkLoadStore(b *testing.B) {
	path := filepath.Join(b.TempDir(), "templates.json")
	if err := fullStore(b, path, 8).Save(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		mustNew(b, Configuration{TemplatesFile: path})
	}
}

// BenchmarkDecodeCustom is the cost of 5 custom primitives (one u_int, ip,
// mac, enterprise hex and str) per IPFIX record: "none" decodes the same
// records without definitions, whose fields are then skipped.
func BenchmarkDecodeCustom(b *testing.B) {
	fields := append(append([]fld{}, benchIPFIXFields...), fld{234, 4, 0}, fld{225, 4, 0}, fld{365, 6, 0}, fld{12235, 2, 9}, fld{96, 8, 0})
	defs := []flow.CustomField{
		{Name: "vrf", IE: 234, Len: 4, Semantics: flow.SemUint},
		{Name: "nat", IE: 225, Len: 4, Semantics: flow.SemIP},
		{Name: "sta", IE: 365, Len: 6, Semantics: flow.SemMAC},
		{Name: "ext", PEN: 9, IE: 12235, Len: 2, Semantics: flow.SemHex},
		{Name: "app", IE: 96, Len: 8, Semantics: flow.SemStr},
	}
	var records [][]byte
	for i := range benchRecords {
		records = append(records, benchRecord(fields, i))
	}
	templates, data := ipfix(set(ipfixTemplateSet, tmpl(10, 300, fields...))), ipfix(set(300, records...))
	for _, tt := range []struct {
		name string
		defs []flow.CustomField
	}{{"none", nil}, {"five", defs}} {
		b.Run(tt.name, func(b *testing.B) {
			if err := flow.DefineCustom(tt.defs); err != nil {
				b.Fatal(err)
			}
			defer flow.DefineCustom(nil) //nolint:errcheck // nil always defines
			d := mustNew(b, DefaultConfiguration())
			emit := func(*flow.Record) {}
			if err := d.Decode(templates, exporterA, arrival, emit); err != nil {
				b.Fatal(err)
			}
			perRecord(b, benchRecords, func() {
				if err := d.Decode(data, exporterA, arrival, emit); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
