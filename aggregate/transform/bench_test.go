package transform

import (
	"strconv"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
)

// A pmacct record as the JSON reader decodes it (numbers kept as Number text).
const benchRecord = `{"event_type": "purge", "as_src": 36040, "as_dst": 64496, "peer_ip_src": "192.168.0.1", "iface_in": 10, "iface_out": 3, "ip_src": "192.0.2.10", "ip_dst": "198.51.100.7", "port_src": 443, "port_dst": 51234, "ip_proto": "tcp", "tos": 0, "stamp_inserted": "2024-01-01 00:00:00", "stamp_updated": "2024-01-01 00:05:01", "packets": 7, "flows": 1, "bytes": 4300}`

// A realistic program: peer names by router and interface, a tag on big or
// interesting flows, an AS name from a macro-free table, a field removed.
const benchProgram = `[
	{"Conditions": [{"peer_ip_src": "10.0.0.1"}, {"iface_in": 1}],
	 "Actions": [{"Type": "AddField", "Name": "peer_name", "Value": "MyUpstream1"}]},
	{"Conditions": [{"peer_ip_src": "192.168.0.1"}, {"iface_in": 10}],
	 "Actions": [{"Type": "AddField", "Name": "peer_name", "Value": "MyUpstream2"}]},
	{"Conditions": ["OR", {"bytes": 100000, "__op__": ">="}, {"as_src": [15169, 36040, 20940], "__op__": "in"}],
	 "Actions": [{"Type": "AddField", "Name": "tag", "Value": "watch"}]},
	{"Conditions": [{"as_src": "", "__op__": "!="}],
	 "Actions": [{"Type": "AddFieldLookup", "Name": "as_src_name", "LookupFieldName": "as_src",
	              "LookupTable": {"36040": "YouTube", "15169": "Google", "20940": "Akamai", "*": "other"}}]},
	{"Conditions": {"ip_proto": ["tcp", "udp"], "__op__": "in"},
	 "Actions": [{"Type": "DelField", "Name": "event_type"}]}
]`

// The same work, with macros (which use a pooled buffer).
const benchMacroProgram = `[
	{"Conditions": ["AND", {"peer_ip_src": "", "__op__": "!="}, {"iface_in": "", "__op__": "!="}],
	 "Actions": [{"Type": "AddField", "Name": "temporary1", "Value": "$peer_ip_src-$iface_in"}]},
	{"Conditions": [{"temporary1": "", "__op__": "!="}],
	 "Actions": [{"Type": "AddFieldLookup", "Name": "peer_name", "LookupFieldName": "temporary1",
	              "LookupTable": {"10.0.0.1-1": "MyUpstream1", "192.168.0.1-10": "MyUpstream2"}},
	             {"Type": "DelField", "Name": "temporary1"}]},
	{"Conditions": [{"as_src": "", "__op__": "!="}],
	 "Actions": [{"Type": "AddFieldLookup", "Name": "as_src_name", "LookupFieldName": "as_src",
	              "LookupTable": {"36040": "$as_src - YouTube", "*": "$as_src"}}]}
]`

func benchApply(b *testing.B, program string, check func(*document.Document) bool) {
	p := mustParse(b, program, "")
	orig := doc(b, benchRecord)
	d := &document.Document{}
	d.CopyFrom(orig)
	p.Apply(d)
	if !check(d) {
		b.Fatalf("unexpected result: %s", d.AppendJSON(nil, document.Compact))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d.CopyFrom(orig)
		p.Apply(d)
	}
}

func BenchmarkApply(b *testing.B) {
	benchApply(b, benchProgram, func(d *document.Document) bool {
		name, _ := d.Get("peer_name")
		as, _ := d.Get("as_src_name")
		tag, _ := d.Get("tag")
		return string(name.Bytes) == "MyUpstream2" && string(as.Bytes) == "YouTube" && string(tag.Bytes) == "watch" && !d.Has("event_type")
	})
}

func BenchmarkApplyMacros(b *testing.B) {
	benchApply(b, benchMacroProgram, func(d *document.Document) bool {
		name, _ := d.Get("peer_name")
		as, _ := d.Get("as_src_name")
		return string(name.Bytes) == "MyUpstream2" && string(as.Bytes) == "36040 - YouTube" && !d.Has("temporary1")
	})
}

// Integers set by code (the collector's own records) rather than decoded text.
func BenchmarkApplyInts(b *testing.B) {
	p := mustParse(b, benchProgram, "")
	orig := doc(b, benchRecord)
	for _, k := range []string{"as_src", "as_dst", "iface_in", "iface_out", "port_src", "port_dst", "packets", "flows", "bytes"} {
		v, _ := orig.Get(k)
		n, _ := v.AsInt()
		orig.SetInt(k, n)
	}
	d := &document.Document{}
	b.ReportAllocs()
	for b.Loop() {
		d.CopyFrom(orig)
		p.Apply(d)
	}
	if as, _ := d.Get("as_src_name"); string(as.Bytes) != "YouTube" {
		b.Fatalf("unexpected result: %s", d.AppendJSON(nil, document.Compact))
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse([]byte(benchProgram), "bench", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseLargeTable loads inline lookup tables of growing size: ns/op
// should grow linearly with the entries (a quadratic duplicate check once did not).
func BenchmarkParseLargeTable(b *testing.B) {
	for _, n := range []int{50000, 200000} {
		var sb strings.Builder
		sb.WriteString(`[{"Conditions": {"a": 1}, "Actions": [{"Type": "AddFieldLookup", "Name": "x", "LookupFieldName": "k", "LookupTable": {`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(`"` + strconv.Itoa(i) + `": "AS` + strconv.Itoa(i) + `"`)
		}
		sb.WriteString(`}}]}]`)
		data := []byte(sb.String())
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Parse(data, "bench", ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
