package custom

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
)

func TestParse(t *testing.T) {
	const file = `! pmacct's examples, and one of each semantics
name=mtla	field_type=47	len=4	semantics=ip
  name=mtla6 field_type=140 len=16 semantics=ip
# another comment
name=app_id field_type=95 len=4 semantics=u_int
name=fw_ext semantics=hex len=2 field_type=9:12235
name=station field_type=365 len=6 semantics=mac
name=user field_type=9:4000 len=vlen semantics=str
name=blob field_type=313 len=3 semantics=raw
name=nsel_event field_type=40005 len=1 semantics=u_int
name='quoted' field_type=1 len=8 semantics=u_int
name=Upper field_type=0:5 len=1 semantics=u_int
name=ttl packet_ptr=l3:0x800+8 packet_ptr=l3:0x86dd+7 len=1 semantics=u_int
name=win field_type=192 packet_ptr=l4:6+14 len=2 semantics=u_int
name=pay packet_ptr=payload len=vlen semantics=str
name=vlan_tci packet_ptr=vlan packet_ptr=l3+2:2048 len=4 semantics=hex
`
	fs, err := Parse("primitives.lst", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []flow.CustomField{
		{Name: "mtla", IE: 47, Len: 4, Semantics: flow.SemIP},
		{Name: "mtla6", IE: 140, Len: 16, Semantics: flow.SemIP},
		{Name: "app_id", IE: 95, Len: 4, Semantics: flow.SemUint},
		{Name: "fw_ext", PEN: 9, IE: 12235, Len: 2, Semantics: flow.SemHex},
		{Name: "station", IE: 365, Len: 6, Semantics: flow.SemMAC},
		{Name: "user", PEN: 9, IE: 4000, Len: flow.VarLen, Semantics: flow.SemStr},
		{Name: "blob", IE: 313, Len: 3, Semantics: flow.SemRaw},
		{Name: "nsel_event", IE: 40005, Len: 1, Semantics: flow.SemUint},
		{Name: "quoted", IE: 1, Len: 8, Semantics: flow.SemUint},
		{Name: "upper", IE: 5, Len: 1, Semantics: flow.SemUint}, // pmacct lower-cases names; PEN 0 is IANA
		{Name: "ttl", Len: 1, Semantics: flow.SemUint, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerL3, Proto: 0x800, Offset: 8}, {Layer: flow.LayerL3, Proto: 0x86dd, Offset: 7}}},
		{Name: "win", IE: 192, Len: 2, Semantics: flow.SemUint, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerL4, Proto: 6, Offset: 14}}},
		{Name: "pay", Len: flow.VarLen, Semantics: flow.SemStr, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerPayload}}},
		{Name: "vlan_tci", Len: 4, Semantics: flow.SemHex, Pointers: [8]flow.PacketPointer{{Layer: flow.LayerVLAN}, {Layer: flow.LayerL3, Proto: 2048, Offset: 2}}},
	}
	if len(fs) != len(want) {
		t.Fatalf("%d definitions: %+v", len(fs), fs)
	}
	for i := range want {
		if fs[i] != want[i] {
			t.Errorf("%d: %+v, want %+v", i, fs[i], want[i])
		}
	}
}

// Every mistake of a file is reported at once, each at its line and column
// with what was expected.
func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"name=a field_type=1 len=4 semantics=u_int extra\n",
			`p:1:43: "extra": expected key=value, without blanks around '=' (a comment is a line of its own, starting with '!' or '#')`},
		{"name=a field_type=1 len=4 semantics=int\n", `p:1:37: semantics="int": expected u_int, hex, ip, mac, str or raw`},
		{"name=a.b field_type=1 len=4 semantics=u_int\n", `p:1:6: name="a.b": expected a name of letters, digits and '_'`},
		{"name=a field_type=0 len=4 semantics=u_int\n", `p:1:19: field_type="0": expected an element's number from 1 to 65535, or PEN:number for an enterprise's, number to 32767 (e.g. 95, or 9:12235)`},
		{"name=a field_type=9:40000 len=4 semantics=u_int\n", `p:1:19: field_type="9:40000": expected an element's number from 1 to 65535, or PEN:number for an enterprise's, number to 32767 (e.g. 95, or 9:12235)`},
		{"name=a field_type=x:4 len=4 semantics=u_int\n", `p:1:19: field_type="x:4": expected PEN:number, the enterprise's number up to 4294967295, 0 for IANA's (e.g. 9:12235)`},
		{"name=a field_type=1 len=four semantics=u_int\n", `p:1:25: len="four": expected a length in bytes, or vlen`},
		{"name=a field_type=1 len=4 semantics=u_int len=8\n", `p:1:43: len: twice in one definition`},
		{"name=a field_type=1 semantics=u_int\n", `p:1:1: no len (a definition has each of name, field_type, len, semantics)`},
		{"name=a packet_ptr=l5 len=4 semantics=ip\n", `p:1:19: packet_ptr="l5": expected LAYER[:PROTO][+OFFSET], LAYER one of packet, mac, vlan, mpls, l3, l4, payload, PROTO (l3: an ethertype such as 0x800; l4: an IP protocol such as 6) and OFFSET numbers`},
		{"name=a packet_ptr=mac:1 len=4 semantics=ip\n", `p:1:19: packet_ptr="mac:1": expected LAYER[:PROTO][+OFFSET], LAYER one of packet, mac, vlan, mpls, l3, l4, payload, PROTO (l3: an ethertype such as 0x800; l4: an IP protocol such as 6) and OFFSET numbers`},
		{"name=a packet_ptr=l4:256 len=1 semantics=u_int\n", `p:1:19: packet_ptr="l4:256": expected LAYER[:PROTO][+OFFSET], LAYER one of packet, mac, vlan, mpls, l3, l4, payload, PROTO (l3: an ethertype such as 0x800; l4: an IP protocol such as 6) and OFFSET numbers`},
		{"name=a packet_ptr=l3+1+2 len=1 semantics=u_int\n", `p:1:19: packet_ptr="l3+1+2": expected LAYER[:PROTO][+OFFSET], LAYER one of packet, mac, vlan, mpls, l3, l4, payload, PROTO (l3: an ethertype such as 0x800; l4: an IP protocol such as 6) and OFFSET numbers`},
		{"name=a len=1 semantics=u_int" + strings.Repeat(" packet_ptr=l3", 9) + "\n", `p:1:142: packet_ptr: more than the 8 a definition has`},
		{"name=a len=1 semantics=u_int\n", `p:1:1: no field_type or packet_ptr (a definition has name, len, semantics, and field_type, packet_ptr or both)`},
		{"name=a field_type=1 len=4 semantics=u_int id=3\n", `p:1:43: unknown key "id" (expected one of name, field_type, len, semantics)`},
		{"name=a field_type=1 len=3 semantics=u_int\n", `p:1:6: a: an integer of 1, 2, 4 or 8 bytes, not 3`},
		{"! ok\nname=src_host field_type=8 len=4 semantics=ip\n", `p:2:6: src_host: the name of one of pmacct's primitives`},
		{"name=a field_type=1 len=4 semantics=u_int\nname=A field_type=2 len=4 semantics=u_int\n", `p:2:6: a: defined on line 1 already`},
		{"name=a field_type=1 len='4 semantics=u_int\n", `p:1:25: a quote that is not closed (expected a value in single quotes)`},
		// two lines wrong: both said
		{"name=a field_type=1 len=4 semantics=x\nname=b\n", "p:1:37: semantics=\"x\": expected u_int, hex, ip, mac, str or raw\np:2:1: no field_type or packet_ptr (a definition has name, len, semantics, and field_type, packet_ptr or both)"},
	} {
		if _, err := Parse("p", []byte(tt.file)); err == nil || err.Error() != tt.want {
			t.Errorf("%q:\n got %v\nwant %s", tt.file, err, tt.want)
		}
	}
	var b strings.Builder
	for i := range MaxDefinitions + 1 {
		fmt.Fprintf(&b, "name=c%d field_type=1 len=1 semantics=u_int\n", i)
	}
	if _, err := Parse("p", []byte(b.String())); err == nil || err.Error() != "p:64:6: c63: a definition past the 63 pmacct takes" {
		t.Errorf("64 definitions: %v", err)
	}
	if _, err := Load("/nonexistent/primitives.lst"); err == nil || !strings.Contains(err.Error(), "/nonexistent/primitives.lst") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name=mtla field_type=47 len=4 semantics=ip\nname=u field_type=9:1 len=vlen semantics=str\n! c\n"))
	f.Add([]byte("name='a' field_type=40005 len=8 semantics=hex\nname=m field_type=56 len=6 semantics=mac\n"))
	f.Add([]byte("name=r field_type=313 len=128 semantics=raw\nname=x len=1\n"))
	f.Add([]byte("name=t packet_ptr=l3:0x800+8 packet_ptr=l4:17+4 packet_ptr=payload len=vlen semantics=str\nname=v packet_ptr=vlan+2 len=2 semantics=hex\n"))
	place := regexp.MustCompile(`^m:\d+:\d+: `)
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := Parse("m", data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !place.MatchString(line) {
					t.Fatalf("error without its place: %q", line)
				}
			}
			return
		}
		// what parses defines, as many as records keep
		if len(fs) > flow.MaxCustom {
			fs = fs[:flow.MaxCustom]
		}
		for len(fs) > 0 {
			err := flow.DefineCustom(fs)
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), "bytes flowdex keeps per record") {
				t.Fatalf("%+v: parsed, not defined: %v", fs, err)
			}
			fs = fs[:len(fs)-1]
		}
		if err := flow.DefineCustom(nil); err != nil {
			t.Fatal(err)
		}
	})
}
