package flow

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
)

// customFields are a definition of every semantics, of several lengths.
var customFields = []CustomField{
	{Name: "app_id", IE: 95, Len: 4, Semantics: SemUint},
	{Name: "fw_ext", PEN: 9, IE: 12235, Len: 2, Semantics: SemHex},
	{Name: "xlate_src", IE: 225, Len: 4, Semantics: SemIP},
	{Name: "xlate_src6", IE: 281, Len: 16, Semantics: SemIP},
	{Name: "station", IE: 365, Len: 6, Semantics: SemMAC},
	{Name: "user", PEN: 9, IE: 40000, Len: 8, Semantics: SemStr},
	{Name: "url", PEN: 35632, IE: 180, Len: VarLen, Semantics: SemStr},
	{Name: "blob", IE: 313, Len: 3, Semantics: SemRaw},
	{Name: "big", IE: 1, Len: 8, Semantics: SemUint},
}

// defineCustom defines fs for one test.
func defineCustom(t testing.TB, fs []CustomField) {
	t.Helper()
	if err := DefineCustom(fs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DefineCustom(nil); err != nil {
			t.Error(err)
		}
	})
}

// customRecord sets every custom primitive of customFields.
func customRecord(t *testing.T) Record {
	t.Helper()
	var r Record
	r.SrcIP = netip.MustParseAddr("192.0.2.1")
	slot := func(name string) Slot {
		p, ok := byName[name]
		if !ok {
			t.Fatalf("%s: not defined", name)
		}
		return p.Slot()
	}
	slot("app_id").SetUint(&r, 0x0d000050)
	slot("fw_ext").SetUint(&r, 0xbeef)
	slot("xlate_src").SetBytes(&r, []byte{198, 51, 100, 7})
	slot("xlate_src6").SetBytes(&r, netip.MustParseAddr("2001:db8::7").AsSlice())
	slot("station").SetMAC(&r, [6]byte{2, 0, 0, 0, 0, 0xee})
	slot("user").SetBytes(&r, []byte("alice\x00\x00\x00"))
	slot("url").SetBytes(&r, []byte(strings.Repeat("x", 60))) // cut to VarLenCap
	slot("blob").SetPrefixed(&r, []byte{0, 0xab, 0xff})
	slot("big").SetUint(&r, 1<<63)
	return r
}

// Custom primitives are written after timestamp_export, in their file's
// order, each as a string, and pack into cache keys and back.
func TestCustomDocument(t *testing.T) {
	defineCustom(t, customFields)
	names := []string{"src_host", "timestamp_export"}
	for _, c := range customFields {
		names = append(names, c.Name)
	}
	agg, err := ParseAggregate(names)
	if err != nil {
		t.Fatal(err)
	}
	r := customRecord(t)
	var doc document.Document
	f := Format{UTC: true}
	f.Document(&doc, agg, &r.Key, Counters{Packets: 1, Bytes: 2}, Stamps{})
	want := `{"event_type": "purge", "ip_src": "192.0.2.1", "timestamp_export": "0000-00-00 00:00:00.000000", "app_id": "218103888", "fw_ext": "beef", "xlate_src": "198.51.100.7", "xlate_src6": "2001:db8::7", "station": "02:00:00:00:00:ee", "user": "alice", "url": "` + strings.Repeat("x", VarLenCap) + `", "blob": "00-AB-FF", "big": "9223372036854775808", "packets": 1, "bytes": 2}`
	if got := string(doc.AppendJSON(nil, document.Pmacct)); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}

	c := NewKeyCodec(agg.Set)
	b := c.Append(nil, &r.Key)
	var k Key
	if rest := c.Decode(append(b, 0xff), &k); k != r.Key || !bytes.Equal(rest, []byte{0xff}) {
		t.Errorf("key %x back as %+v, %x left", b, k.Custom, rest)
	}
	if len(b) > c.MaxLen() {
		t.Errorf("%d bytes, at most %d", len(b), c.MaxLen())
	}
	// a key of two of them only is theirs
	two, _ := ParseAggregate([]string{"user", "blob"})
	c = NewKeyCodec(two.Set)
	if b := c.Append(nil, &r.Key); string(b) != "alice\x00\x00\x00\x03\x00\xab\xff" {
		t.Errorf("user, blob: %q", b)
	}
}

func TestDefineCustomErrors(t *testing.T) {
	defineCustom(t, nil)
	long := make([]CustomField, MaxCustom+1)
	for i := range long {
		long[i] = CustomField{Name: "c" + strings.Repeat("x", i), IE: 1, Len: 1, Semantics: SemUint}
	}
	big := []CustomField{{Name: "a", IE: 1, Len: VarLen, Semantics: SemStr}, {Name: "b", IE: 2, Len: VarLen, Semantics: SemStr}, {Name: "c", IE: 3, Len: 40, Semantics: SemRaw}}
	for _, tt := range []struct {
		fs   []CustomField
		want string
	}{
		{[]CustomField{{IE: 8, Len: 4, Semantics: SemIP}}, "a custom primitive without a name"},
		{[]CustomField{{Name: "src_host", IE: 8, Len: 4, Semantics: SemIP}}, "src_host: the name of one of pmacct's primitives"},
		{[]CustomField{{Name: "sum_host", IE: 8, Len: 4, Semantics: SemIP}}, "sum_host: the name of one of pmacct's primitives"},
		{[]CustomField{{Name: "x", Len: 4, Semantics: SemIP}}, "x: neither an element (field_type) nor a place in packets (packet_ptr)"},
		{[]CustomField{{Name: "x", IE: 8, Len: 3, Semantics: SemUint}}, "x: an integer of 1, 2, 4 or 8 bytes, not 3"},
		{[]CustomField{{Name: "x", IE: 8, Len: VarLen, Semantics: SemHex}}, "x: an integer of 1, 2, 4 or 8 bytes, not vlen"},
		{[]CustomField{{Name: "x", IE: 8, Len: 6, Semantics: SemIP}}, "x: an address of 4 (IPv4) or 16 bytes (IPv6), not 6"},
		{[]CustomField{{Name: "x", IE: 8, Len: 8, Semantics: SemMAC}}, "x: a MAC address of 6 bytes, not 8"},
		{[]CustomField{{Name: "x", IE: 8, Len: 200, Semantics: SemStr}}, "x: a length from 1 to 127 bytes, or vlen, not 200"},
		{[]CustomField{{Name: "x", IE: 8, Len: 1, Semantics: SemUint}, {Name: "x", IE: 9, Len: 1, Semantics: SemUint}}, "x: defined twice"},
		{long, "17 custom primitives: flowdex keeps at most 16"},
		{big, "c: the custom primitives take more than the 128 bytes flowdex keeps per record (a vlen one 48)"},
	} {
		if err := DefineCustom(tt.fs); err == nil || err.Error() != tt.want {
			t.Errorf("%+v: %v, want %s", tt.fs, err, tt.want)
		}
	}
	// a name defined before is no primitive once the definitions are replaced
	defineCustom(t, customFields[:1])
	if err := DefineCustom([]CustomField{{Name: "other", IE: 1, Len: 1, Semantics: SemUint}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseAggregate([]string{"app_id"}); err == nil {
		t.Error("app_id: still a primitive after its definition was replaced")
	}
	if _, err := ParseAggregate([]string{"other"}); err != nil {
		t.Error(err)
	}
	// a name moving to an earlier row stays a primitive
	defineCustom(t, []CustomField{{Name: "a", IE: 1, Len: 1, Semantics: SemUint}, {Name: "b", IE: 2, Len: 1, Semantics: SemUint}})
	defineCustom(t, []CustomField{{Name: "b", IE: 2, Len: 1, Semantics: SemUint}})
	if _, err := ParseAggregate([]string{"b"}); err != nil {
		t.Errorf("b moved from the second row to the first: %v", err)
	}
}
