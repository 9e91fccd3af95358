package routes

import "testing"

// Patterns keep the communities whose texts begin with them, '.' any one
// character; no pattern keeps all; the radius cuts AS paths to their
// first hops (a set one hop); a nil Texts changes nothing.
func TestTexts(t *testing.T) {
	in := Attrs{ASPath: "64500_64500_{64510,64511}_64520", StdComm: "64500:1_64500:64_64500:640_64500:6400_64501:7",
		ExtComm: "RT:64500:7_SoO:64500:1", LrgComm: "64500:1:2_64501:0:1", OriginAS: 64520}
	for _, tt := range []struct {
		name  string
		texts *Texts
		want  Attrs
	}{
		{"nil", nil, in},
		{"zero", &Texts{}, in},
		{"patterns", &Texts{StdComm: []string{"64500:64", "64501"}, ExtComm: []string{"SoO:"}, LrgComm: []string{"6450.:0:."}},
			Attrs{ASPath: in.ASPath, StdComm: "64500:64_64500:640_64500:6400_64501:7", ExtComm: "SoO:64500:1", LrgComm: "64501:0:1", OriginAS: 64520}},
		{"wildcards", &Texts{StdComm: []string{"64500:64.."}},
			Attrs{ASPath: in.ASPath, StdComm: "64500:6400", ExtComm: in.ExtComm, LrgComm: in.LrgComm, OriginAS: 64520}},
		// pmacct 1.7.7 writes "4501:7_64500:64_64500:640_64500:6400_00:64_..."
		// (tails, by pattern, twice), and keeps nothing for "64500:6.0."
		// (its first occurrence, 64500:640, is too short)
		{"substrings, whole communities, each once", &Texts{StdComm: []string{"4501:7", "64500:64", "00:64"}, LrgComm: []string{"0:1"}},
			Attrs{ASPath: in.ASPath, StdComm: "64500:64_64500:640_64500:6400_64501:7", ExtComm: in.ExtComm, LrgComm: "64500:1:2_64501:0:1", OriginAS: 64520}},
		{"dots past the first occurrence", &Texts{StdComm: []string{"64500:6.0."}},
			Attrs{ASPath: in.ASPath, StdComm: "64500:6400", ExtComm: in.ExtComm, LrgComm: in.LrgComm, OriginAS: 64520}},
		{"none kept", &Texts{StdComm: []string{"65000"}},
			Attrs{ASPath: in.ASPath, ExtComm: in.ExtComm, LrgComm: in.LrgComm, OriginAS: 64520}},
		{"radius", &Texts{ASPathRadius: 3},
			Attrs{ASPath: "64500_64500_{64510,64511}", StdComm: in.StdComm, ExtComm: in.ExtComm, LrgComm: in.LrgComm, OriginAS: 64520}},
		{"radius past the path", &Texts{ASPathRadius: 9}, in},
	} {
		got := in
		tt.texts.Shape(&got)
		if got != tt.want {
			t.Errorf("%s:\n got  %+v\n want %+v", tt.name, got, tt.want)
		}
	}
	for _, bad := range []Texts{{StdComm: []string{""}}, {LrgComm: []string{"1:2_3"}}, {ASPathRadius: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
