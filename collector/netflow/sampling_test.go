package netflow

import (
	"path/filepath"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/exporter"
)

// TestSamplingCaptures checks the rates of real exports: pmacct's test 104
// (Cisco IPFIX over IPv6, options with selectorId 302, samplingPacketInterval
// 305, samplingSize 309 and samplingPopulation 310: 1 in 256), nfprobe's
// sampler options (48/49/50, 1 in 4; system scope in v9, exportingProcessId
// scope in IPFIX), softflowd's packet interval and space (305/306).
func TestSamplingCaptures(t *testing.T) {
	cases := []struct {
		path    string
		rate    uint32
		options uint64
	}{
		{filepath.Join(sharedTests, "104-IPFIXv10-IPv6-CISCO-sampling_option", "traffic-00.pcap"), 256, 1},
		{"testdata/nfprobe-v9.pcap", 4, 1},
		{"testdata/nfprobe-ipfix.pcap", 4, 1},
		{"testdata/softflowd-ipfix-sampled.pcap", 2, 1},
		{"testdata/softflowd-ipfix.pcap", 1, 1},
		{"testdata/softflowd-v9.pcap", 1, 1}, // samplingInterval 1 in a v9 option
		{"testdata/softflowd-v5.pcap", 0, 0},
	}
	for _, c := range cases {
		t.Run(filepath.Base(filepath.Dir(c.path))+"/"+filepath.Base(c.path), func(t *testing.T) {
			dgs := readPcap(t, c.path)
			d := mustNew(t, DefaultConfiguration())
			recs, errs := decodeAll(d, dgs)
			if len(errs) > 0 || len(recs) == 0 {
				t.Fatalf("%d records, errors %v", len(recs), errs)
			}
			for i, r := range recs {
				if r.SamplingRate != c.rate {
					t.Errorf("record %d: sampling rate %d, want %d", i, r.SamplingRate, c.rate)
				}
			}
			if got := d.Stats().OptionRecords; got != c.options {
				t.Errorf("%d option records, want %d", got, c.options)
			}
			// A configured rate overrides the exporter's.
			o := mustNew(t, Configuration{Sampling: exporter.SamplingOverrides{
				{Exporters: prefix("198.51.100.0/24"), Rate: 3},
				{Exporters: prefix(dgs[0].exporter.String()), Rate: 1000},
				{Exporters: prefix("::/0"), Rate: 5},
			}})
			recs, _ = decodeAll(o, dgs)
			for i, r := range recs {
				if r.SamplingRate != 1000 {
					t.Fatalf("record %d: sampling rate %d, want the override 1000", i, r.SamplingRate)
				}
			}
		})
	}
}

// TestSamplingOptions checks option records and the records that use them.
func TestSamplingOptions(t *testing.T) {
	dataTmpl := func(version uint16, extra ...fld) []byte {
		return tmpl(version, 300, append([]fld{{8, 4, 0}}, extra...)...)
	}
	rec := func(extra ...[]byte) []byte { return cat(append([][]byte{ip("192.0.2.1")}, extra...)...) }
	cases := []struct {
		name    string
		payload [][]byte // datagrams, in order
		want    []uint32 // rates of the records, in order
	}{
		{
			name: "v9 system scope, sampler id in records",
			payload: [][]byte{v9(4,
				set(v9OptionsTemplateSet, optTmplV9(400, []fld{{1, 4, 0}}, []fld{{48, 1, 0}, {49, 1, 0}, {50, 4, 0}}), u16(0)),
				set(400, cat(u32(0), u8(1), u8(2), u32(10)), cat(u32(0), u8(2), u8(2), u32(20))),
				set(v9TemplateSet, dataTmpl(9, fld{48, 1, 0})),
				set(300, rec(u8(2)), rec(u8(1)), rec(u8(3))))},
			want: []uint32{20, 10, 0},
		},
		{
			name: "v9 system scope applies to other source ids",
			payload: [][]byte{
				v9(2, set(v9OptionsTemplateSet, optTmplV9(400, []fld{{1, 4, 0}}, []fld{{34, 4, 0}}), u16(0)),
					set(400, cat(u32(0), u32(100)))),
				cat(u16(9), u16(2), u32(tUptime), u32(tSecs), u32(1), u32(tDomain+1),
					set(v9TemplateSet, dataTmpl(9)), set(300, rec())),
			},
			want: []uint32{100},
		},
		{
			name: "v9 interface scope stays in its source id",
			payload: [][]byte{
				v9(2, set(v9OptionsTemplateSet, optTmplV9(400, []fld{{2, 4, 0}}, []fld{{34, 4, 0}}), u16(0)),
					set(400, cat(u32(0), u32(100)))),
				v9(2, set(v9TemplateSet, dataTmpl(9)), set(300, rec())),
				cat(u16(9), u16(2), u32(tUptime), u32(tSecs), u32(1), u32(tDomain+1),
					set(v9TemplateSet, dataTmpl(9)), set(300, rec())),
			},
			want: []uint32{100, 0},
		},
		{
			name: "IPFIX packet interval and space",
			payload: [][]byte{ipfix(
				set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{305, 4, 0}, {306, 4, 0}}), u16(0)),
				set(400, cat(u32(tDomain), u32(2), u32(98))),
				set(ipfixTemplateSet, dataTmpl(10)), set(300, rec()))},
			want: []uint32{50},
		},
		{
			name: "IPFIX packet interval without space: unknown, size and population next",
			payload: [][]byte{ipfix(
				set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{302, 4, 0}},
					[]fld{{305, 4, 0}, {309, 4, 0}, {310, 4, 0}}), u16(0)),
				set(400, cat(u32(9), u32(1), u32(1), u32(1000))),
				set(ipfixTemplateSet, dataTmpl(10, fld{302, 4, 0})), set(300, rec(u32(9))))},
			want: []uint32{1000},
		},
		{
			name: "IPFIX random interval wins over the sampling interval",
			payload: [][]byte{ipfix(
				set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{34, 4, 0}, {50, 4, 0}}), u16(0)),
				set(400, cat(u32(tDomain), u32(10), u32(30))),
				set(ipfixTemplateSet, dataTmpl(10)), set(300, rec()))},
			want: []uint32{30},
		},
		{
			name: "record interval wins over options without sampler id",
			payload: [][]byte{ipfix(
				set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{34, 4, 0}}), u16(0)),
				set(400, cat(u32(tDomain), u32(10))),
				set(ipfixTemplateSet, dataTmpl(10, fld{34, 2, 0})), set(300, rec(u16(7))))},
			want: []uint32{7},
		},
		{
			name: "options after the data: later datagrams only",
			payload: [][]byte{
				ipfix(set(ipfixTemplateSet, dataTmpl(10)), set(300, rec()),
					set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{34, 4, 0}}), u16(0)),
					set(400, cat(u32(tDomain), u32(10)))),
				ipfix(set(300, rec())),
			},
			want: []uint32{0, 10},
		},
		{
			name: "option record not about sampling is ignored",
			payload: [][]byte{ipfix(
				set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{41, 8, 0}}), u16(0)),
				set(400, cat(u32(tDomain), u64(12345))),
				set(ipfixTemplateSet, dataTmpl(10)), set(300, rec()))},
			want: []uint32{0},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mustNew(t, DefaultConfiguration())
			var got []uint32
			for i, p := range c.payload {
				err := d.Decode(p, exporterA, arrival, func(r *flow.Record) { got = append(got, r.SamplingRate) })
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("rates %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("rates %v, want %v", got, c.want)
					break
				}
			}
		})
	}
}
