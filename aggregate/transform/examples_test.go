package transform

import (
	"path/filepath"
	"strings"
	"testing"
)

// The examples of p2es's TRANSFORMATIONS.md, each checked against what its text
// says.

var people = []struct {
	name   string
	record string
}{
	{"Bob15", `{"Name": "Bob", "Age": 15}`},
	{"Bob16", `{"Name": "Bob", "Age": 16}`},
	{"Ken14", `{"Name": "Ken", "Age": 14}`},
	{"Tom14", `{"Name": "Tom", "Age": 14}`},
	{"Tom20", `{"Name": "Tom", "Age": 20}`},
	{"Lisa15", `{"Name": "Lisa", "Age": 15}`},
	{"Lisa22", `{"Name": "Lisa", "Age": 22}`},
}

func TestConditionExamples(t *testing.T) {
	tests := []struct {
		what string
		cond string
		want map[string]bool // the people it is true for
	}{
		{
			"Bob, older than 15",
			`[ { "Name": "Bob" }, { "Age": 16, "__op__": ">=" } ]`,
			map[string]bool{"Bob16": true},
		},
		{
			"Bob or Tom",
			`[ "OR", { "Name": "Bob" }, { "Name": "Tom" } ]`,
			map[string]bool{"Bob15": true, "Bob16": true, "Tom14": true, "Tom20": true},
		},
		{
			// also the __main__ demo of pierky/p2es/transformations.py
			"Bob, only if he's older than 15, otherwise Tom or Lisa, only if she's older than 20",
			`[ "OR", [ { "Name": "Bob" }, { "Age": 16, "__op__": ">=" } ], { "Name": "Tom" }, [ { "Name": "Lisa" }, { "Age": 20, "__op__": ">="  } ] ]`,
			map[string]bool{"Bob16": true, "Tom14": true, "Tom20": true, "Lisa22": true},
		},
	}
	for _, tt := range tests {
		p := condProgram(t, tt.cond)
		for _, person := range people {
			if got := matches(p, doc(t, person.record)); got != tt.want[person.name] {
				t.Errorf("%s: %s = %v, want %v", tt.what, person.name, got, tt.want[person.name])
			}
		}
	}
}

// Example 1: peer's friendly name by ingress router and interface.
const example1 = `[
        {
                "Conditions": [ { "peer_ip_src": "10.0.0.1" }, { "iface_in": 1 } ],
                "Actions": [ { "Type": "AddField", "Name": "peer_name", "Value": "MyUpstream1" } ]
        },
        {
                "Conditions": [ { "peer_ip_src": "192.168.0.1" }, { "iface_in": 10 } ],
                "Actions": [ { "Type": "AddField", "Name": "peer_name", "Value": "MyUpstream2" } ]
        }
]`

func TestExample1(t *testing.T) {
	p := mustParse(t, example1, "")
	tests := []struct{ in, want string }{
		{`{ "peer_ip_src": "10.0.0.1", "iface_in": 1, "packets": 2, "bytes": 100 }`,
			`{"peer_ip_src":"10.0.0.1","iface_in":1,"packets":2,"bytes":100,"peer_name":"MyUpstream1"}`},
		{`{ "peer_ip_src": "192.168.0.1", "iface_in": 10, "packets": 4, "bytes": 400 }`,
			`{"peer_ip_src":"192.168.0.1","iface_in":10,"packets":4,"bytes":400,"peer_name":"MyUpstream2"}`},
		// neither pair: untouched
		{`{ "peer_ip_src": "10.0.0.1", "iface_in": 10, "packets": 4, "bytes": 400 }`,
			`{"peer_ip_src":"10.0.0.1","iface_in":10,"packets":4,"bytes":400}`},
		// a string "1" is not the number 1
		{`{ "peer_ip_src": "10.0.0.1", "iface_in": "1" }`,
			`{"peer_ip_src":"10.0.0.1","iface_in":"1"}`},
	}
	for _, tt := range tests {
		if got := run(t, p, tt.in); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

// Example 2: AS names from a lookup table with a "*" default. The wrapper in
// TRANSFORMATIONS.md is not valid JSON (a transformation's keys written straight
// into the list); this is the repaired form, with the table in a file and inline.
const example2File = `[
        {
                "Conditions": [ { "as_src": "", "__op__": "!=" } ],
                "Actions": [
                        { "Type": "AddFieldLookup", "Name": "as_src_name",
                          "LookupFieldName": "as_src",
                          "LookupTableFile": "AS_map.json" }
                ]
        }
]`

const example2Inline = `[
        {
                "Conditions": [ { "as_src": "", "__op__": "!=" } ],
                "Actions": [
                        { "Type": "AddFieldLookup", "Name": "as_src_name",
                          "LookupFieldName": "as_src",
                          "LookupTable": {
                                "36040":        "$as_src - YouTube",
                                "15169":        "$as_src - Google",
                                "20940":        "$as_src - Akamai",
                                "*":            "$as_src"
                          } }
                ]
        }
]`

func TestExample2(t *testing.T) {
	abs, err := filepath.Abs("testdata/AS_map.json")
	if err != nil {
		t.Fatal(err)
	}
	programs := map[string]*Program{
		"file relative to baseDir": mustParse(t, example2File, "testdata"),
		"absolute file":            mustParse(t, `[{"Conditions": [{"as_src": "", "__op__": "!="}], "Actions": [{"Type": "AddFieldLookup", "Name": "as_src_name", "LookupFieldName": "as_src", "LookupTableFile": "`+filepath.ToSlash(abs)+`"}]}]`, "elsewhere"),
		"inline":                   mustParse(t, example2Inline, ""),
	}
	tests := []struct{ in, want string }{
		{`{ "as_src": 36040, "packets": 1, "flows": 1, "bytes": 100 }`,
			`{"as_src":36040,"packets":1,"flows":1,"bytes":100,"as_src_name":"36040 - YouTube"}`},
		{`{ "as_src": 20940, "packets": 5, "flows": 5, "bytes": 500 }`,
			`{"as_src":20940,"packets":5,"flows":5,"bytes":500,"as_src_name":"20940 - Akamai"}`},
		{`{ "as_src": 32934, "packets": 8, "flows": 4, "bytes": 300 }`,
			`{"as_src":32934,"packets":8,"flows":4,"bytes":300,"as_src_name":"32934"}`},
		// the condition keeps records without as_src (or with an empty one) out
		{`{ "packets": 8 }`, `{"packets":8}`},
		{`{ "as_src": "", "packets": 8 }`, `{"as_src":"","packets":8}`},
	}
	for name, p := range programs {
		for _, tt := range tests {
			if got := run(t, p, tt.in); got != tt.want {
				t.Errorf("%s: %s\n got %s\nwant %s", name, tt.in, got, tt.want)
			}
		}
	}
}

func TestExample2AsWritten(t *testing.T) {
	// the documented text, keys written straight into the list: not JSON
	const asWritten = `[
                  "Conditions": [ { "as_src": "", "__op__": "!=" } ],
                  "Actions": [
                          { "Type": "AddFieldLookup", "Name": "as_src_name",
                          "LookupFieldName": "as_src",
                          "LookupTableFile": "/etc/p2es/AS_map.json"
                  ]
          ]`
	_, err := Parse([]byte(asWritten), "p2es.conf", "")
	want := "p2es.conf:2:31: invalid JSON: invalid character ':' after array element"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

// Example 3: a temporary field built with macros, looked up, then deleted.
const example3 = `[
        {
                "Conditions": [ "AND", { "peer_ip_src": "", "__op__": "!=" }, { "iface_in": "", "__op__": "!=" } ],
                "Action": [ { "Type": "AddField", "Name": "temporary1", "Value": "$peer_ip_src-$iface_in" } ]
        },
        {
                "Conditions": [ { "temporary1": "", "__op__": "!=" } ],
                "Actions": [
                        {
                                "Type": "AddFieldLookup",
                                "Name": "peer_name",
                                "LookupFieldName": "temporary1",
                                "LookupTable": {
                                        "10.0.0.1-1": "MyUpstream1",
                                        "192.168.0.1-10": "MyUpstream2"
                                }
                        },
                        { "Type": "DelField", "Name": "temporary1" }
                ]
        }
]`

func TestExample3AsWritten(t *testing.T) {
	_, err := Parse([]byte(example3), "p2es.conf", "")
	want := `p2es.conf:2:9: transformation #1: "Actions" is missing (found "Action": did you mean "Actions"?)`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestExample3Fixed(t *testing.T) {
	p := mustParse(t, strings.Replace(example3, `"Action":`, `"Actions":`, 1), "")
	tests := []struct{ in, want string }{
		{`{ "peer_ip_src": "10.0.0.1", "iface_in": 1, "packets": 2, "bytes": 100 }`,
			`{"peer_ip_src":"10.0.0.1","iface_in":1,"packets":2,"bytes":100,"peer_name":"MyUpstream1"}`},
		{`{ "peer_ip_src": "192.168.0.1", "iface_in": 10, "packets": 4, "bytes": 400 }`,
			`{"peer_ip_src":"192.168.0.1","iface_in":10,"packets":4,"bytes":400,"peer_name":"MyUpstream2"}`},
		// no entry in the table: the temporary field still goes
		{`{ "peer_ip_src": "10.0.0.2", "iface_in": 1 }`,
			`{"peer_ip_src":"10.0.0.2","iface_in":1}`},
		// iface_in missing: the first condition fails, nothing is added
		{`{ "peer_ip_src": "10.0.0.1" }`, `{"peer_ip_src":"10.0.0.1"}`},
	}
	for _, tt := range tests {
		if got := run(t, p, tt.in); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
