package netflow

import (
	"bytes"
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/flow"
)

// Custom primitives are read from IANA and enterprise elements, of fixed
// and variable length; a field of another length than the primitive's is
// left out and counted, a variable-length value longer than a record keeps
// is cut and counted.
func TestCustomPrimitives(t *testing.T) {
	fs := []flow.CustomField{
		{Name: "app_id", IE: 95, Len: 4, Semantics: flow.SemUint},
		{Name: "fw_ext", PEN: 9, IE: 12235, Len: 2, Semantics: flow.SemHex},
		{Name: "xlate", IE: 225, Len: 4, Semantics: flow.SemIP},
		{Name: "app_name", IE: 96, Len: flow.VarLen, Semantics: flow.SemStr},
		{Name: "user", PEN: 9, IE: 4000, Len: 8, Semantics: flow.SemStr},
		{Name: "blob", IE: 313, Len: 3, Semantics: flow.SemRaw},
		{Name: "other_pen", PEN: 10, IE: 12235, Len: 2, Semantics: flow.SemHex}, // no such field
		{Name: "raw2", IE: 500, Len: 2, Semantics: flow.SemRaw},
		{Name: "rawv", PEN: 9, IE: 7, Len: flow.VarLen, Semantics: flow.SemRaw},
	}
	if err := flow.DefineCustom(fs); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := flow.DefineCustom(nil); err != nil {
			t.Error(err)
		}
	}()
	var names []string
	for _, c := range fs {
		names = append(names, c.Name)
	}
	agg, err := flow.ParseAggregate(append([]string{"src_host"}, names...))
	if err != nil {
		t.Fatal(err)
	}

	long := bytes.Repeat([]byte{'y'}, 300)
	for _, version := range []uint16{versionIPFIX} {
		fields := []fld{{8, 4, 0}, {95, 4, 0}, {12235, 2, 9}, {225, 4, 0}, {96, varLength, 0}, {4000, 8, 9}, {313, 2, 0}, {12235, 2, 10000}, {500, 2, 0}, {7, varLength, 9}, {1, 4, 0}}
		d := mustNew(t, DefaultConfiguration())
		payload := ipfix(set(ipfixTemplateSet, tmpl(version, 300, fields...)),
			set(300,
				cat(ip("192.0.2.1"), u32(0x0d000050), u16(0xbeef), ip("198.51.100.7"), u8(3), []byte("dns"), []byte("bob\x00\x00\x00\x00\x00"), u16(0xabcd), u16(1), u16(0x00ff), u8(0), u32(10)),
				cat(ip("192.0.2.2"), u32(7), u16(0x1), ip("198.51.100.8"), u8(255), u16(300), long, []byte("carolina"), u16(0), u16(1), u16(0x1000), u8(3), []byte{1, 2, 0xfe}, u32(20)),
			))
		recs, err := decodeOne(t, d, payload)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			`{"event_type": "purge", "ip_src": "192.0.2.1", "app_id": "218103888", "fw_ext": "beef", "xlate": "198.51.100.7", "app_name": "dns", "user": "bob", "blob": "", "other_pen": "0", "raw2": "00-FF", "rawv": "", "packets": 0, "bytes": 10}`,
			`{"event_type": "purge", "ip_src": "192.0.2.2", "app_id": "7", "fw_ext": "1", "xlate": "198.51.100.8", "app_name": "` + string(long[:flow.VarLenCap]) + `", "user": "carolina", "blob": "", "other_pen": "0", "raw2": "10-00", "rawv": "01-02-FE", "packets": 0, "bytes": 20}`,
		}
		if len(recs) != len(want) {
			t.Fatalf("%d records", len(recs))
		}
		var f flow.Format
		var doc document.Document
		for i, r := range recs {
			f.Document(&doc, agg, &r.Key, flow.Counters{Bytes: r.Bytes}, flow.Stamps{})
			if got := string(doc.AppendJSON(nil, document.Pmacct)); got != want[i] {
				t.Errorf("record %d:\n got %s\nwant %s", i, got, want[i])
			}
		}
		// blob: 2 octets for 3, twice; app_name: 300 octets, once
		if st := d.Stats(); st.CustomShort != 2 || st.CustomCut != 1 {
			t.Errorf("short %d, cut %d", st.CustomShort, st.CustomCut)
		}
	}
}
