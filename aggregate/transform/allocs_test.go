package transform

import (
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
)

// Apply allocates nothing on the paths records take every time.
func TestApplyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	tests := []struct {
		name, program string
		set           func(d *document.Document)
	}{
		{"benchmark program", benchProgram, nil},
		{"macros", benchMacroProgram, nil},
		{"float text", `[{"Conditions": [{"rate": 1.5, "__op__": ">"}, {"rate": 2.25}], "Actions": [{"Type": "AddField", "Name": "x", "Value": "y"}]}]`,
			func(d *document.Document) { d.SetNumber("rate", []byte("2.25")) }},
		{"long integer text", `[{"Conditions": {"big": 1, "__op__": ">"}, "Actions": [{"Type": "AddField", "Name": "x", "Value": "y"}]}]`,
			func(d *document.Document) { d.SetNumber("big", []byte("12345678901234567890123")) }},
		{"string order", `[{"Conditions": {"ip_src": "192.0.2.0", "__op__": ">="}, "Actions": [{"Type": "AddField", "Name": "x", "Value": "y"}]}]`, nil},
		{"long in lists", `[{"Conditions": [{"as_src": [1, 2, 3, 4, 5, 6, 7, 8, 9, 36040], "__op__": "in"}, {"ip_proto": ["a", "b", "c", "d", "e", "f", "g", "h", "tcp"], "__op__": "in"}], "Actions": [{"Type": "AddField", "Name": "x", "Value": "y"}]}]`, nil},
		{"lookup keys of every kind", `[{"Conditions": {"ip_proto": "tcp"}, "Actions": [
			{"Type": "AddFieldLookup", "Name": "a", "LookupFieldName": "i", "LookupTable": {"5": "five"}},
			{"Type": "AddFieldLookup", "Name": "b", "LookupFieldName": "f", "LookupTable": {"0.5": "half"}},
			{"Type": "AddFieldLookup", "Name": "c", "LookupFieldName": "t", "LookupTable": {"True": "yes"}},
			{"Type": "AddFieldLookup", "Name": "d", "LookupFieldName": "missing", "LookupTable": {"*": "star"}}]}]`,
			func(d *document.Document) { d.SetInt("i", 5); d.SetFloat("f", 0.5); d.SetBool("t", true) }},
	}
	for _, tt := range tests {
		p := mustParse(t, tt.program, "")
		orig := doc(t, benchRecord)
		if tt.set != nil {
			tt.set(orig)
		}
		d := &document.Document{}
		d.CopyFrom(orig)
		p.Apply(d)
		if tt.name != "benchmark program" && tt.name != "macros" && !d.Has("x") && !d.Has("a") {
			t.Errorf("%s: did not match: %s", tt.name, d.AppendJSON(nil, document.Compact))
		}
		if n := testing.AllocsPerRun(100, func() { d.CopyFrom(orig); p.Apply(d) }); n != 0 {
			t.Errorf("%s: %v allocations per Apply", tt.name, n)
		}
	}
}
