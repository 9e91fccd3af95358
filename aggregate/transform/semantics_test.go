package transform

import (
	"math"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
)

// TestP2ESMatrix is the verified behaviour matrix of p2es (Python 2.7), with
// our result; "differs" marks the deliberate differences.
func TestP2ESMatrix(t *testing.T) {
	tests := []struct {
		cond, record string
		p2es, want   bool
		why          string
	}{
		{`["AND", {"bytes": 100}]`, `{"bytes": 100}`, false, true, "differs: a one-condition AND group evaluates its condition"},
		{`["OR", {"bytes": 999}]`, `{"bytes": 5}`, true, false, "differs: a one-condition OR group evaluates its condition"},
		{`{"missing": 1, "__op__": "!="}`, `{"other": 1}`, false, false, "a missing field is false for every operator"},
		{`{"a": "1"}`, `{"a": 1}`, false, false, "a string is never equal to a number"},
		{`{"a": 1}`, `{"a": 1.0}`, true, true, "numbers compare by value"},
		{`{"a": 5, "__op__": ">"}`, `{"a": "7"}`, true, false, "differs: no ordering between a string and a number (Python 2 ordered by type, Python 3 raised)"},
		{`[{"a": 1}, ["OR", {"b": 1}, {"c": 1}]]`, `{"a": 1, "c": 1}`, true, true, "nesting"},
	}
	for _, tt := range tests {
		got := matches(condProgram(t, tt.cond), doc(t, tt.record))
		if got != tt.want {
			t.Errorf("%s over %s = %v, want %v (p2es: %v; %s)", tt.cond, tt.record, got, tt.want, tt.p2es, tt.why)
		}
	}
	// the matrix's last row: all rejected, by p2es at run time, by us at load time
	for _, cond := range []string{`[]`, `["NOT", {"a": 1}]`, `{"a": 1, "b": 2}`, `{"__op__": "="}`, `{"a": "x", "__op__": "in"}`, `{"a": 1, "__op__": "~"}`} {
		cfg := `[{"Conditions": ` + cond + `, "Actions": []}]`
		if _, err := Parse([]byte(cfg), "m", ""); err == nil {
			t.Errorf("%s: accepted", cond)
		}
	}
}

func TestConditionTypes(t *testing.T) {
	tests := []struct {
		cond   string
		record string
		want   bool
	}{
		// = across kinds: Python's ==
		{`{"a": 1}`, `{"a": 1}`, true},
		{`{"a": 1}`, `{"a": 1.0}`, true},
		{`{"a": 1}`, `{"a": 10e-1}`, true},
		{`{"a": 1.0}`, `{"a": 1}`, true},
		{`{"a": 1}`, `{"a": 1.5}`, false},
		{`{"a": 1}`, `{"a": "1"}`, false},
		{`{"a": "1"}`, `{"a": "1"}`, true},
		{`{"a": 1}`, `{"a": true}`, true}, // True == 1
		{`{"a": 0}`, `{"a": false}`, true},
		{`{"a": true}`, `{"a": 1}`, true},
		{`{"a": true}`, `{"a": true}`, true},
		{`{"a": true}`, `{"a": 2}`, false},
		{`{"a": true}`, `{"a": "True"}`, false},
		{`{"a": null}`, `{"a": null}`, true},
		{`{"a": null}`, `{"a": 0}`, false},
		{`{"a": null}`, `{"a": ""}`, false},
		{`{"a": -0}`, `{"a": 0.0}`, true},
		// integers are exact, as in Python, also against floats
		{`{"a": 9007199254740993}`, `{"a": 9007199254740993}`, true},
		{`{"a": 9007199254740993}`, `{"a": 9007199254740992}`, false},
		{`{"a": 9007199254740993}`, `{"a": 9007199254740992.0}`, false},
		{`{"a": 9007199254740992}`, `{"a": 9007199254740992.0}`, true},
		{`{"a": 1e400}`, `{"a": 2e400}`, true}, // both +inf, as in Python
		// != is "present and not equal"
		{`{"a": "", "__op__": "!="}`, `{"a": "x"}`, true},
		{`{"a": "", "__op__": "!="}`, `{"a": ""}`, false},
		{`{"a": "", "__op__": "!="}`, `{"a": 0}`, true},
		{`{"a": "", "__op__": "!="}`, `{"b": "x"}`, false},
		{`{"a": null, "__op__": "!="}`, `{"a": 0}`, true},
		// ordering: numbers numerically, strings bytewise, nothing across
		{`{"a": 16, "__op__": ">="}`, `{"a": 16}`, true},
		{`{"a": 16, "__op__": ">="}`, `{"a": 16.0}`, true},
		{`{"a": 16, "__op__": ">="}`, `{"a": 15.9}`, false},
		{`{"a": 16, "__op__": ">"}`, `{"a": 1e2}`, true},
		{`{"a": 16, "__op__": "<"}`, `{"a": -1}`, true},
		{`{"a": 16, "__op__": "<="}`, `{"a": 16}`, true},
		{`{"a": 16, "__op__": "<"}`, `{"a": 16}`, false},
		{`{"a": 0.5, "__op__": "<"}`, `{"a": 0}`, true},
		{`{"a": 0, "__op__": ">"}`, `{"a": true}`, true},
		{`{"a": "b", "__op__": ">"}`, `{"a": "c"}`, true},
		{`{"a": "b", "__op__": ">"}`, `{"a": "b"}`, false},
		{`{"a": "b", "__op__": ">="}`, `{"a": "b"}`, true},
		{`{"a": "b", "__op__": "<"}`, `{"a": "B"}`, true},
		{`{"a": "z", "__op__": ">"}`, `{"a": "é"}`, true},
		{`{"a": "10", "__op__": ">"}`, `{"a": "9"}`, true},
		{`{"a": 5, "__op__": ">"}`, `{"a": "7"}`, false},
		{`{"a": "5", "__op__": "<"}`, `{"a": 7}`, false},
		{`{"a": 5, "__op__": "<"}`, `{"a": null}`, false},
		{`{"a": 5, "__op__": "<"}`, `{"a": [1]}`, false},
		// in and notin: == against each element
		{`{"a": [1, "x", null], "__op__": "in"}`, `{"a": 1.0}`, true},
		{`{"a": [1, "x", null], "__op__": "in"}`, `{"a": "x"}`, true},
		{`{"a": [1, "x", null], "__op__": "in"}`, `{"a": null}`, true},
		{`{"a": [1, "x", null], "__op__": "in"}`, `{"a": "1"}`, false},
		{`{"a": [1, "x", null], "__op__": "in"}`, `{"b": 1}`, false},
		{`{"a": [], "__op__": "in"}`, `{"a": 1}`, false},
		{`{"a": [1, "x"], "__op__": "notin"}`, `{"a": 2}`, true},
		{`{"a": [1, "x"], "__op__": "notin"}`, `{"a": "x"}`, false},
		{`{"a": [1, "x"], "__op__": "notin"}`, `{"b": 2}`, false},
		{`{"a": [], "__op__": "notin"}`, `{"a": 1}`, true},
		// long lists are indexed: same answers
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": 8.5}`, true},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": 3.0}`, true},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": 3}`, true},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": "x"}`, true},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": [1.0, 2]}`, true},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": null}`, true},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": true}`, true},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": "3"}`, false},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "in"}`, `{"a": 9}`, false},
		{`{"a": [1, 2, 3, 4, 5, 6, 7, "x", 8.5, [1, 2], null], "__op__": "notin"}`, `{"a": 9}`, true},
		// lists and objects: structural ==, as in Python
		{`{"a": [1, "x"]}`, `{"a": [1.0, "x"]}`, true},
		{`{"a": [1, "x"]}`, `{"a": ["x", 1]}`, false},
		{`{"a": [1, "x"]}`, `{"a": "[1, \"x\"]"}`, false},
		{`{"a": {"k": 1, "j": [2]}}`, `{"a": {"j": [2.0], "k": true}}`, true},
		{`{"a": {"k": 1}}`, `{"a": {"k": 1, "j": 2}}`, false},
		{`{"a": {"k": 1}, "__op__": "!="}`, `{"a": {"k": 2}}`, true},
		// groups
		{`["AND", {"a": 1}, {"b": 2}]`, `{"a": 1, "b": 2}`, true},
		{`["AND", {"a": 1}, {"b": 2}]`, `{"a": 1, "b": 3}`, false},
		{`["OR", {"a": 9}, {"b": 2}]`, `{"a": 1, "b": 2}`, true},
		{`["OR", {"a": 9}, {"b": 9}]`, `{"a": 1, "b": 2}`, false},
		{`[{"a": 1}]`, `{"a": 1}`, true},
		{`{"a": 1}`, `{"a": 1}`, true}, // a single criterion without a list
		{`["OR", ["AND", {"a": 1}, ["OR", {"b": 9}, {"c": 3}]], {"d": 4}]`, `{"a": 1, "c": 3}`, true},
		{`["OR", ["AND", {"a": 1}, ["OR", {"b": 9}, {"c": 9}]], {"d": 4}]`, `{"a": 1, "c": 3}`, false},
		// macros are not expanded in conditions
		{`{"a": "$b"}`, `{"a": "x", "b": "x"}`, false},
		{`{"a": "$b"}`, `{"a": "$b", "b": "x"}`, true},
		// a field called __op__ cannot be tested, but other odd names can
		{`{"": 1}`, `{"": 1}`, true},
	}
	for _, tt := range tests {
		if got := matches(condProgram(t, tt.cond), doc(t, tt.record)); got != tt.want {
			t.Errorf("%s over %s = %v, want %v", tt.cond, tt.record, got, tt.want)
		}
	}
}

// Values set by code rather than decoded: Int, Float (with NaN and infinities).
func TestConditionCodeKinds(t *testing.T) {
	tests := []struct {
		cond string
		set  func(d *document.Document)
		want bool
	}{
		{`{"a": 1.0}`, func(d *document.Document) { d.SetInt("a", 1) }, true},
		{`{"a": 1}`, func(d *document.Document) { d.SetFloat("a", 1) }, true},
		{`{"a": 2, "__op__": ">"}`, func(d *document.Document) { d.SetFloat("a", 2.5) }, true},
		{`{"a": 9223372036854775807}`, func(d *document.Document) { d.SetInt("a", math.MaxInt64) }, true},
		{`{"a": 9223372036854775807, "__op__": "<"}`, func(d *document.Document) { d.SetFloat("a", 1<<63) }, false},
		{`{"a": 1, "__op__": "!="}`, func(d *document.Document) { d.SetFloat("a", math.NaN()) }, true},
		{`{"a": 1}`, func(d *document.Document) { d.SetFloat("a", math.NaN()) }, false},
		{`{"a": 1, "__op__": ">"}`, func(d *document.Document) { d.SetFloat("a", math.NaN()) }, false},
		{`{"a": 1, "__op__": "<="}`, func(d *document.Document) { d.SetFloat("a", math.NaN()) }, false},
		{`{"a": 1e300, "__op__": ">"}`, func(d *document.Document) { d.SetFloat("a", math.Inf(1)) }, true},
		{`{"a": -9223372036854775808, "__op__": ">"}`, func(d *document.Document) { d.SetFloat("a", math.Inf(-1)) }, false},
		{`{"a": true}`, func(d *document.Document) { d.SetBool("a", true) }, true},
		{`{"a": [1], "__op__": "in"}`, func(d *document.Document) { d.SetBool("a", true) }, true},
		{`{"a": [1]}`, func(d *document.Document) { d.SetRaw("a", []byte(`[1`)) }, false}, // broken Raw: equal to nothing
		{`{"a": 1}`, func(d *document.Document) { d.SetNumber("a", []byte(`x`)) }, false},
		{`{"a": 123456789012345678901234567890}`, func(d *document.Document) { d.SetNumber("a", []byte(`123456789012345678901234567890`)) }, true},
	}
	for _, tt := range tests {
		d := &document.Document{}
		tt.set(d)
		if got := matches(condProgram(t, tt.cond), d); got != tt.want {
			_, v := d.At(0)
			t.Errorf("%s over %v = %v, want %v", tt.cond, v, got, tt.want)
		}
	}
}

func TestMacros(t *testing.T) {
	tests := []struct {
		value, record, want string
	}{
		// the longest field name wins, whatever the field order (p2es: "1_src - YouTube")
		{"$as_src - YouTube", `{"as": 1, "as_src": 36040}`, "36040 - YouTube"},
		{"$as_src - YouTube", `{"as_src": 36040, "as": 1}`, "36040 - YouTube"},
		{"$as/$as_src/$as_", `{"as": 1, "as_src": 2}`, "1/2/1_"},
		// without as_src, "$as" is what follows the '$', as in p2es
		{"$as_src", `{"as": 1}`, "1_src"},
		// unknown names and lone '$' stay
		{"$foo and $", `{"as": 1}`, "$foo and $"},
		{"$$as", `{"as": 1}`, "$1"},
		{"US$ 5", `{"as": 1}`, "US$ 5"},
		// replacement text is not scanned again
		{"$x", `{"x": "$y", "y": "Y"}`, "$y"},
		// how values render: str() of Python, Number and Raw as written
		{"$s|$n|$f|$e|$t|$F|$z|$l|$o|$big", `{"s": "text", "n": 36040, "f": 1.50, "e": 1e2, "t": true, "F": false, "z": null, "l": [1, "a"], "o": {"k": 1}, "big": 123456789012345678901}`,
			`text|36040|1.50|1e2|True|False|None|[1, "a"]|{"k": 1}|123456789012345678901`},
		// a macro may name the field being set: its old value
		{"<$a>", `{"a": "x"}`, "<x>"},
		{"", `{"a": "x"}`, ""},
	}
	for _, tt := range tests {
		cfg := `[{"Conditions": {"_": "", "__op__": "!="}, "Actions": [{"Type": "AddField", "Name": "a", "Value": ` + jsonString(tt.value) + `}]}]`
		p := mustParse(t, cfg, "")
		d := doc(t, tt.record)
		d.SetString("_", "go")
		p.Apply(d)
		v, _ := d.Get("a")
		if v.Kind != document.String || string(v.Bytes) != tt.want {
			t.Errorf("%q over %s = %s %q, want %q", tt.value, tt.record, v.Kind, v.Bytes, tt.want)
		}
	}
}

func jsonString(s string) string { return string(document.AppendString(nil, s)) }

func TestRenderCodeKinds(t *testing.T) {
	tests := []struct {
		set  func(d *document.Document)
		want string
	}{
		{func(d *document.Document) { d.SetInt("v", -36040) }, "-36040"},
		{func(d *document.Document) { d.SetFloat("v", 1) }, "1.0"},
		{func(d *document.Document) { d.SetFloat("v", 1.5) }, "1.5"},
		{func(d *document.Document) { d.SetFloat("v", 0) }, "0.0"},
		{func(d *document.Document) { d.SetFloat("v", math.Copysign(0, -1)) }, "-0.0"},
		{func(d *document.Document) { d.SetFloat("v", 0.0001) }, "0.0001"},
		{func(d *document.Document) { d.SetFloat("v", 0.00001) }, "1e-05"},
		{func(d *document.Document) { d.SetFloat("v", 1.5e-7) }, "1.5e-07"},
		{func(d *document.Document) { d.SetFloat("v", 1e15) }, "1000000000000000.0"},
		{func(d *document.Document) { d.SetFloat("v", 1e16) }, "1e+16"},
		{func(d *document.Document) { d.SetFloat("v", 1.2345e300) }, "1.2345e+300"},
		{func(d *document.Document) { x, y := 0.1, 0.2; d.SetFloat("v", x+y) }, "0.30000000000000004"},
		{func(d *document.Document) { d.SetFloat("v", math.Inf(1)) }, "inf"},
		{func(d *document.Document) { d.SetFloat("v", math.Inf(-1)) }, "-inf"},
		{func(d *document.Document) { d.SetFloat("v", math.NaN()) }, "nan"},
		{func(d *document.Document) { d.SetBool("v", true) }, "True"},
		{func(d *document.Document) { d.SetNull("v") }, "None"},
	}
	p := mustParse(t, `[{"Conditions": {"v": "x", "__op__": "!="}, "Actions": [{"Type": "AddField", "Name": "out", "Value": "$v"}]}]`, "")
	for _, tt := range tests {
		d := &document.Document{}
		tt.set(d)
		p.Apply(d)
		v, _ := d.Get("out")
		if string(v.Bytes) != tt.want {
			t.Errorf("got %q, want %q", v.Bytes, tt.want)
		}
	}
}

func TestAddFieldAndDelField(t *testing.T) {
	tests := []struct {
		actions, record, want string
	}{
		// overwrite keeps the position
		{`[{"Type": "AddField", "Name": "a", "Value": "new"}]`, `{"a": 1, "b": 2}`, `{"a":"new","b":2}`},
		{`[{"Type": "AddField", "Name": "c", "Value": "new"}]`, `{"a": 1, "b": 2}`, `{"a":1,"b":2,"c":"new"}`},
		// a list or an object Value is stored as JSON, key order and number text kept, no macros
		{`[{"Type": "AddField", "Name": "c", "Value": ["$a", 1.50, {"z": null, "y": true}]}]`, `{"a": 1}`, `{"a":1,"c":["$a",1.50,{"z":null,"y":true}]}`},
		{`[{"Type": "AddField", "Name": "c", "Value": {"k": "v"}}]`, `{"a": 1}`, `{"a":1,"c":{"k":"v"}}`},
		{`[{"Type": "AddField", "Name": "c", "Value": []}]`, `{"a": 1}`, `{"a":1,"c":[]}`},
		// macros in Name are not expanded
		{`[{"Type": "AddField", "Name": "$a", "Value": "$a"}]`, `{"a": 1}`, `{"a":1,"$a":"1"}`},
		{`[{"Type": "DelField", "Name": "a"}]`, `{"a": 1, "b": 2}`, `{"b":2}`},
		{`[{"Type": "DelField", "Name": "x"}]`, `{"a": 1, "b": 2}`, `{"a":1,"b":2}`},
		// actions run in order and see each other's work
		{`[{"Type": "AddField", "Name": "t", "Value": "$a-$b"}, {"Type": "AddField", "Name": "u", "Value": "[$t]"}, {"Type": "DelField", "Name": "t"}]`,
			`{"a": 1, "b": 2}`, `{"a":1,"b":2,"u":"[1-2]"}`},
	}
	for _, tt := range tests {
		p := mustParse(t, `[{"Conditions": {"a": 1}, "Actions": `+tt.actions+`}]`, "")
		if got := run(t, p, tt.record); got != tt.want {
			t.Errorf("%s over %s\n got %s\nwant %s", tt.actions, tt.record, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	const table = `{"36040": "YouTube", "True": "yes", "None": "none", "1.0": "one point zero", "1e2": "hundred as written", "[1, 2]": "list", "quiet": "", "$": "dollar:$k"}`
	tests := []struct {
		table  string
		record string
		set    func(d *document.Document)
		want   string // "-" when the field must not be set
	}{
		{table, `{"k": 36040}`, nil, "YouTube"},
		{table, `{"k": "36040"}`, nil, "YouTube"},
		{table, `{}`, func(d *document.Document) { d.SetInt("k", 36040) }, "YouTube"},
		{table, `{"k": true}`, nil, "yes"},
		{table, `{"k": null}`, nil, "none"},
		{table, `{"k": 1.0}`, nil, "one point zero"},
		{table, `{}`, func(d *document.Document) { d.SetFloat("k", 1) }, "one point zero"},
		{table, `{"k": 1e2}`, nil, "hundred as written"},
		{table, `{"k": [1, 2]}`, nil, "list"},
		{table, `{"k": "$"}`, nil, "dollar:$"},
		// no match, no "*": nothing
		{table, `{"k": 1}`, nil, "-"},
		{table, `{"x": 1}`, nil, "-"},
		// an empty result is not assigned (p2es skips falsy values), and "*" is not consulted
		{`{"quiet": "", "*": "star"}`, `{"k": "quiet"}`, nil, "-"},
		{`{"*": ""}`, `{"k": "any"}`, nil, "-"},
		{`{"*": ""}`, `{"x": 1}`, nil, "-"},
		// "*" for the unmatched, and (unlike p2es) for the missing field
		{`{"a": "A", "*": "other $k"}`, `{"k": "b"}`, nil, "other b"},
		{`{"a": "A", "*": "other $k"}`, `{"x": 1}`, nil, "other $k"},
		// a list or an object is stored as JSON; an empty one, like "", is not assigned
		{`{"a": ["x", 1.50], "b": {"k": "$k"}, "c": [], "d": {}, "*": "star"}`, `{"k": "a"}`, nil, `["x",1.50]`},
		{`{"a": ["x", 1.50], "b": {"k": "$k"}, "c": [], "d": {}, "*": "star"}`, `{"k": "b"}`, nil, `{"k":"$k"}`},
		{`{"a": ["x", 1.50], "b": {"k": "$k"}, "c": [], "d": {}, "*": "star"}`, `{"k": "c"}`, nil, "-"},
		{`{"a": ["x", 1.50], "b": {"k": "$k"}, "c": [], "d": {}, "*": "star"}`, `{"k": "d"}`, nil, "-"},
		{`{"*": []}`, `{"x": 1}`, nil, "-"},
		{`{"*": [0]}`, `{"x": 1}`, nil, "[0]"},
		// the result overwrites an existing field
		{`{"a": "A"}`, `{"k": "a", "out": 1}`, nil, "A"},
	}
	for _, tt := range tests {
		cfg := `[{"Conditions": {"always": 1}, "Actions": [{"Type": "AddFieldLookup", "Name": "out", "LookupFieldName": "k", "LookupTable": ` + tt.table + `}]}]`
		p := mustParse(t, cfg, "")
		d := doc(t, tt.record)
		if tt.set != nil {
			tt.set(d)
		}
		d.SetInt("always", 1)
		p.Apply(d)
		v, ok := d.Get("out")
		got := "-"
		if ok {
			got = string(document.AppendValue(nil, v))
			if v.Kind == document.String {
				got = string(v.Bytes)
			}
		}
		if got != tt.want {
			t.Errorf("table %s over %s: got %s, want %s", tt.table, tt.record, got, tt.want)
		}
	}
}

// Transformations run in order; each sees what the previous ones did.
func TestChaining(t *testing.T) {
	p := mustParse(t, `[
		{"Conditions": {"a": 1}, "Actions": [{"Type": "AddField", "Name": "stage", "Value": "one"}]},
		{"Conditions": {"stage": "one"}, "Actions": [{"Type": "AddField", "Name": "stage", "Value": "two"}, {"Type": "DelField", "Name": "a"}]},
		{"Conditions": {"a": 1}, "Actions": [{"Type": "AddField", "Name": "never", "Value": "x"}]},
		{"Conditions": {"a": [1], "__op__": "notin"}, "Actions": [{"Type": "AddField", "Name": "never2", "Value": "x"}]}
	]`, "")
	if got, want := run(t, p, `{"a": 1}`), `{"stage":"two"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if p.Len() != 4 {
		t.Errorf("Len = %d", p.Len())
	}
	var nilProgram *Program
	nilProgram.Apply(doc(t, `{"a": 1}`))
	if nilProgram.Len() != 0 {
		t.Error("nil Len")
	}
}

// A Program is shared by goroutines; run with -race.
func TestConcurrentApply(t *testing.T) {
	p := mustParse(t, example2Inline, "")
	done := make(chan string)
	for i := 0; i < 8; i++ {
		go func() {
			var out string
			for j := 0; j < 200; j++ {
				out = run(t, p, `{"as": 1, "as_src": 36040}`)
			}
			done <- out
		}()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; !strings.Contains(got, `"as_src_name":"36040 - YouTube"`) {
			t.Errorf("got %s", got)
		}
	}
}
