package transform

import (
	"errors"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// tr wraps a condition in a transformation with no actions.
func tr(cond string) string { return `[{"Conditions": ` + cond + `, "Actions": []}]` }

// act wraps actions in a transformation with a plain condition.
func act(actions string) string { return `[{"Conditions": {"a": 1}, "Actions": [` + actions + `]}]` }

const lookupAction = `{"Type": "AddFieldLookup", "Name": "x", "LookupFieldName": "k", `

// TestParseErrors covers every problem Parse reports, with the whole message.
func TestParseErrors(t *testing.T) {
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cfg string
		want      []string // one line per problem, after "t.json: "
	}{
		// the JSON and the list
		{"empty", ``, []string{`invalid JSON: empty input`}},
		{"blank", " \n ", []string{`invalid JSON: empty input`}},
		{"truncated", "[\n  {", []string{`invalid JSON: unexpected end of input`}},
		{"syntax", `[{"Conditions": {"a": 1,}}]`, []string{`invalid JSON: invalid character '}' looking for beginning of object key string`}},
		{"trailing comma, as in CONFIGURATION.md", `[{"Conditions": {"a": 1}, "Actions": []},]`, []string{`invalid JSON: invalid character ']' looking for beginning of value`}},
		{"two values", `[] []`, []string{`invalid JSON: unexpected data after the JSON value`}},
		{"duplicate key", `[{"Conditions": {"a": 1}, "Conditions": {"a": 2}, "Actions": []}]`, []string{`invalid JSON: duplicate key "Conditions"`}},
		{"too deep", strings.Repeat("[", 300), []string{`invalid JSON: nested more than 200 levels deep`}},
		{"object", `{"Conditions": {"a": 1}, "Actions": []}`, []string{`want a list of transformations, got an object`}},
		{"null", `null`, []string{`want a list of transformations, got null`}},
		{"string", `"x"`, []string{`want a list of transformations, got string "x"`}},

		// a transformation's keys
		{"not an object", `[1]`, []string{`transformation #1: want an object with "Conditions" and "Actions", got number 1`}},
		{"both missing", `[{}]`, []string{`transformation #1: "Conditions" is missing`, `transformation #1: "Actions" is missing`}},
		{"no Actions", `[{"Conditions": {"a": 1}}]`, []string{`transformation #1: "Actions" is missing`}},
		{"no Conditions", `[{"Actions": []}]`, []string{`transformation #1: "Conditions" is missing`}},
		{"Action typo", `[{"Conditions": {"a": 1}, "Action": []}]`, []string{`transformation #1: "Actions" is missing (found "Action": did you mean "Actions"?)`}},
		{"case", `[{"conditions": {"a": 1}, "Actions": []}]`, []string{`transformation #1: "Conditions" is missing (found "conditions": did you mean "Conditions"?)`}},
		{"unknown key", `[{"Conditions": {"a": 1}, "Actions": [], "Comment": "x"}]`, []string{`transformation #1: unknown key "Comment" (want "Conditions", "Actions")`}},
		{"extra near key", `[{"Conditions": {"a": 1}, "Actions": [], "Action": []}]`, []string{`transformation #1: unknown key "Action" (want "Conditions", "Actions")`}},

		// conditions
		{"empty list", tr(`[]`), []string{`transformation #1: Conditions: empty condition list`}},
		{"nested empty list", tr(`[{"a": 1}, [[]]]`), []string{`transformation #1: Conditions[1][0]: empty condition list`}},
		{"string", tr(`"AND"`), []string{`transformation #1: Conditions: a condition must be a list or an object, got string "AND" (a group names its operator in its first element only)`}},
		{"number", tr(`5`), []string{`transformation #1: Conditions: a condition must be a list or an object, got number 5`}},
		{"null", tr(`null`), []string{`transformation #1: Conditions: a condition must be a list or an object, got null`}},
		{"NOT", tr(`["NOT", {"a": 1}]`), []string{`transformation #1: Conditions[0]: unknown logical operator "NOT" (want "AND" or "OR", in capitals)`}},
		{"lower case and", tr(`["and", {"a": 1}]`), []string{`transformation #1: Conditions[0]: unknown logical operator "and" (want "AND" or "OR", in capitals)`}},
		{"bad group and bad child", tr(`["XOR", {"a": 1, "__op__": "~"}]`), []string{
			`transformation #1: Conditions[0]: unknown logical operator "XOR" (want "AND" or "OR", in capitals)`,
			`transformation #1: Conditions[1]: unknown operator "~" (want one of = != < <= > >= in notin)`}},
		{"empty AND", tr(`["AND"]`), []string{`transformation #1: Conditions: "AND" group has no conditions`}},
		{"empty OR", tr(`[{"a": 1}, ["OR"]]`), []string{`transformation #1: Conditions[1]: "OR" group has no conditions`}},
		{"operator not first", tr(`[{"a": 1}, "OR", {"b": 1}]`), []string{`transformation #1: Conditions[1]: a condition must be a list or an object, got string "OR" (a group names its operator in its first element only)`}},
		{"non-string first", tr(`[1, {"a": 1}]`), []string{`transformation #1: Conditions[0]: a condition must be a list or an object, got number 1`}},
		{"two pairs", tr(`{"a": 1, "b": 2}`), []string{`transformation #1: Conditions: only one field/value pair allowed, found "a", "b"`}},
		{"three pairs", tr(`[{"a": 1, "b": 2, "__op__": "=", "c": 3}]`), []string{`transformation #1: Conditions[0]: only one field/value pair allowed, found "a", "b", "c"`}},
		{"bad operator and two pairs", tr(`{"a": 1, "b": 2, "__op__": "~"}`), []string{
			`transformation #1: Conditions: unknown operator "~" (want one of = != < <= > >= in notin)`,
			`transformation #1: Conditions: only one field/value pair allowed, found "a", "b"`}},
		{"many pairs", tr(`{"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1}`), []string{`transformation #1: Conditions: only one field/value pair allowed, found "a", "b", "c", "d", "e", ...`}},
		{"only __op__", tr(`{"__op__": "="}`), []string{`transformation #1: Conditions: field/value pair missing (want {"<field>": <value>}, with "__op__" optional)`}},
		{"empty object", tr(`["OR", {"a": 1}, {}]`), []string{`transformation #1: Conditions[2]: field/value pair missing (want {"<field>": <value>}, with "__op__" optional)`}},
		{"unknown operator", tr(`[{"b": 1}, {"a": 1, "__op__": "~"}]`), []string{`transformation #1: Conditions[1]: unknown operator "~" (want one of = != < <= > >= in notin)`}},
		{"== operator", tr(`{"a": 1, "__op__": "=="}`), []string{`transformation #1: Conditions: unknown operator "==" (want one of = != < <= > >= in notin)`}},
		{"deep operator", tr(`["OR", {"a": 1}, ["AND", {"b": 1}, {"c": 1, "__op__": "=~"}]]`), []string{`transformation #1: Conditions[2][2]: unknown operator "=~" (want one of = != < <= > >= in notin)`}},
		{"operator not a string", tr(`{"a": 1, "__op__": 1}`), []string{`transformation #1: Conditions: "__op__" must be a string, got number 1`}},
		{"in without list", tr(`{"a": "x", "__op__": "in"}`), []string{`transformation #1: Conditions: operator "in" needs a list value, got string "x"`}},
		{"notin without list", tr(`{"a": {"x": 1}, "__op__": "notin"}`), []string{`transformation #1: Conditions: operator "notin" needs a list value, got an object`}},
		{"> null", tr(`{"a": null, "__op__": ">"}`), []string{`transformation #1: Conditions: operator ">" needs a number or a string value, got null`}},
		{"<= true", tr(`{"a": true, "__op__": "<="}`), []string{`transformation #1: Conditions: operator "<=" needs a number or a string value, got true`}},
		{"< list", tr(`{"a": [1], "__op__": "<"}`), []string{`transformation #1: Conditions: operator "<" needs a number or a string value, got a list`}},
		{">= object", tr(`{"a": {}, "__op__": ">="}`), []string{`transformation #1: Conditions: operator ">=" needs a number or a string value, got an object`}},

		// actions
		{"Actions object", `[{"Conditions": {"a": 1}, "Actions": {}}]`, []string{`transformation #1: Actions: want a list of actions, got an object`}},
		{"action string", act(`"x"`), []string{`transformation #1: Actions[0]: want an object with "Type" and "Name", got string "x"`}},
		{"no Type", act(`{}`), []string{`transformation #1: Actions[0]: "Type" is missing`}},
		{"type", act(`{"type": "AddField", "Name": "x", "Value": "y"}`), []string{`transformation #1: Actions[0]: "Type" is missing (found "type": did you mean "Type"?)`}},
		{"Type number", act(`{"Type": 5}`), []string{`transformation #1: Actions[0].Type: must be a string, got number 5`}},
		{"Type typo", act(`{"Type": "AddFeild", "Name": "x", "Value": "y"}`), []string{`transformation #1: Actions[0].Type: unknown action type "AddFeild" (want AddField, AddFieldLookup or DelField; did you mean "AddField"?)`}},
		{"Type unknown", act(`{"Type": "Remove", "Name": "x"}`), []string{`transformation #1: Actions[0].Type: unknown action type "Remove" (want AddField, AddFieldLookup or DelField)`}},
		{"AddField empty", act(`{"Type": "AddField"}`), []string{`transformation #1: Actions[0]: "Name" is missing`, `transformation #1: Actions[0]: "Value" is missing`}},
		{"no Value", act(`{"Type": "AddField", "Name": "x"}`), []string{`transformation #1: Actions[0]: "Value" is missing`}},
		{"value", act(`{"Type": "AddField", "Name": "x", "value": "y"}`), []string{`transformation #1: Actions[0]: "Value" is missing (found "value": did you mean "Value"?)`}},
		{"Name number", act(`{"Type": "AddField", "Name": 1, "Value": "y"}`), []string{`transformation #1: Actions[0].Name: must be a string, got number 1`}},
		{"Name empty", act(`{"Type": "AddField", "Name": "", "Value": "y"}`), []string{`transformation #1: Actions[0].Name: must not be empty`}},
		{"Value number", act(`{"Type": "AddField", "Name": "x", "Value": 5}`), []string{`transformation #1: Actions[0].Value: must be a string, a list or an object, got number 5 (p2es accepts it, then fails on every record; write "5" for a string)`}},
		{"Value bool", act(`{"Type": "AddField", "Name": "x", "Value": true}`), []string{`transformation #1: Actions[0].Value: must be a string, a list or an object, got true (p2es accepts it, then fails on every record; write "true" for a string)`}},
		{"Value null", act(`{"Type": "AddField", "Name": "x", "Value": null}`), []string{`transformation #1: Actions[0].Value: must be a string, a list or an object, got null (p2es accepts it, then fails on every record)`}},
		{"AddField extra key", act(`{"Type": "AddField", "Name": "x", "Value": "y", "LookupTable": {}}`), []string{`transformation #1: Actions[0]: unknown key "LookupTable" (want "Type", "Name", "Value")`}},
		{"DelField no Name", act(`{"Type": "DelField"}`), []string{`transformation #1: Actions[0]: "Name" is missing`}},
		{"DelField extra key", act(`{"Type": "DelField", "Name": "x", "Value": "y"}`), []string{`transformation #1: Actions[0]: unknown key "Value" (want "Type", "Name")`}},
		{"DelField name typo", act(`{"Type": "DelField", "name": "x"}`), []string{`transformation #1: Actions[0]: "Name" is missing (found "name": did you mean "Name"?)`}},
		{"lookup bare", act(`{"Type": "AddFieldLookup", "Name": "x"}`), []string{`transformation #1: Actions[0]: "LookupFieldName" is missing`, `transformation #1: Actions[0]: "LookupTable" or "LookupTableFile" is missing`}},
		{"lookup no table", act(lookupAction[:len(lookupAction)-2] + `}`), []string{`transformation #1: Actions[0]: "LookupTable" or "LookupTableFile" is missing`}},
		{"lookup both tables", act(lookupAction + `"LookupTable": {}, "LookupTableFile": "AS_map.json"}`), []string{`transformation #1: Actions[0]: only one of "LookupTable" and "LookupTableFile" allowed`}},
		{"lookupTable", act(lookupAction + `"lookupTable": {}}`), []string{`transformation #1: Actions[0]: "LookupTable" or "LookupTableFile" is missing (found "lookupTable": did you mean "LookupTable"?)`}},
		{"LookupTabel", act(lookupAction + `"LookupTabel": {}}`), []string{`transformation #1: Actions[0]: "LookupTable" or "LookupTableFile" is missing (found "LookupTabel": did you mean "LookupTable"?)`}},
		{"LookupFieldName number", act(`{"Type": "AddFieldLookup", "Name": "x", "LookupFieldName": 5, "LookupTable": {}}`), []string{`transformation #1: Actions[0].LookupFieldName: must be a string, got number 5`}},
		{"LookupFieldName empty", act(`{"Type": "AddFieldLookup", "Name": "x", "LookupFieldName": "", "LookupTable": {}}`), []string{`transformation #1: Actions[0].LookupFieldName: must not be empty`}},
		{"table list", act(lookupAction + `"LookupTable": []}`), []string{`transformation #1: Actions[0].LookupTable: must be an object of "<key>": "<value>" pairs, got a list`}},
		{"table values", act(lookupAction + `"LookupTable": {"a": 1, "b": null, "c": "ok", "d": {}, "e": true}}`), []string{
			`transformation #1: Actions[0].LookupTable["a"]: value must be a string (or a list or an object), got number 1 (use "" to leave the field unset)`,
			`transformation #1: Actions[0].LookupTable["b"]: value must be a string (or a list or an object), got null (use "" to leave the field unset)`,
			`transformation #1: Actions[0].LookupTable["e"]: value must be a string (or a list or an object), got true (use "" to leave the field unset)`}},
		{"file empty name", act(lookupAction + `"LookupTableFile": ""}`), []string{`transformation #1: Actions[0].LookupTableFile: must not be empty`}},
		{"file number", act(lookupAction + `"LookupTableFile": 5}`), []string{`transformation #1: Actions[0].LookupTableFile: must be a file name, got number 5`}},
		{"file missing", act(lookupAction + `"LookupTableFile": "nope.json"}`), []string{`transformation #1: Actions[0].LookupTableFile: ` + strconv.Quote(filepath.Join(td, "nope.json")) + `: no such file or directory`}},
		{"file is a directory", act(lookupAction + `"LookupTableFile": "fuzz"}`), []string{`transformation #1: Actions[0].LookupTableFile: ` + strconv.Quote(filepath.Join(td, "fuzz")) + `: not a regular file`}},
		{"file bad JSON", act(lookupAction + `"LookupTableFile": "bad_json.json"}`), []string{`transformation #1: Actions[0].LookupTableFile: ` + strconv.Quote(filepath.Join(td, "bad_json.json")) + `: invalid JSON at line 2, column 8: invalid character '}' looking for beginning of value`}},
		{"file not an object", act(lookupAction + `"LookupTableFile": "not_object.json"}`), []string{`transformation #1: Actions[0].LookupTableFile: ` + strconv.Quote(filepath.Join(td, "not_object.json")) + `: want a JSON object of "<key>": "<value>" pairs, got a list`}},
		{"file values", act(lookupAction + `"LookupTableFile": "non_string.json"}`), []string{
			`transformation #1: Actions[0].LookupTableFile: ` + strconv.Quote(filepath.Join(td, "non_string.json")) + `: key "15169": value must be a string (or a list or an object), got number 15169 (use "" to leave the field unset)`,
			`transformation #1: Actions[0].LookupTableFile: ` + strconv.Quote(filepath.Join(td, "non_string.json")) + `: key "20940": value must be a string (or a list or an object), got false (use "" to leave the field unset)`}},

		// everything is checked, and every transformation is numbered from 1
		{"many", `[
			{"Conditions": [], "Actions": [{"Type": "AddField"}]},
			5,
			{"Conditions": {"a": 1}, "Actions": [{"Type": "DelField", "Name": "a"}]},
			{"Conditions": [{"a": 1}, {"b": 1, "__op__": "in"}], "Actions": [{"Type": "DelField", "Name": "a"}, {"Type": "Del"}]}
		]`, []string{
			`transformation #1: Conditions: empty condition list`,
			`transformation #1: Actions[0]: "Name" is missing`,
			`transformation #1: Actions[0]: "Value" is missing`,
			`transformation #2: want an object with "Conditions" and "Actions", got number 5`,
			`transformation #4: Conditions[1]: operator "in" needs a list value, got number 1`,
			`transformation #4: Actions[1].Type: unknown action type "Del" (want AddField, AddFieldLookup or DelField)`}},
	}
	for _, tt := range tests {
		p, err := Parse([]byte(tt.cfg), "t.json", td)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if p != nil {
			t.Errorf("%s: a Program with an error", tt.name)
		}
		want := "t.json: " + strings.Join(tt.want, "\nt.json: ")
		if got := atLineCol.ReplaceAllString(err.Error(), "t.json: "); got != want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, want)
		}
	}
}

// atLineCol is the position of an error, which TestPositions checks.
var atLineCol = regexp.MustCompile(`t\.json:\d+:\d+: `)

// Errors say where in the file: the value at fault, or the transformation
// missing a key, or where the JSON stops making sense.
func TestPositions(t *testing.T) {
	src := `[
  {"Conditions": {"a": 1}, "Actions": []},
  {
    "Conditions": ["OR", {"a": 1}, {"b": 1, "__op__": "~"}],
    "Actions": [{"Type": "AddField", "Name": "x", "Value": "y"},
                {"Type": "Del", "Name": "z"}]
  },
  {"Actions": []}
]`
	_, err := Parse([]byte(src), "t.json", "")
	want := strings.Join([]string{
		`t.json:4:36: transformation #2: Conditions[2]: unknown operator "~" (want one of ` + opList + `)`,
		`t.json:6:26: transformation #2: Actions[1].Type: unknown action type "Del" (want AddField, AddFieldLookup or DelField)`,
		`t.json:8:3: transformation #3: "Conditions" is missing`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	_, err = Parse([]byte("[\n  {\"Conditions\": {\"a\": 1,}}]"), "t.json", "")
	if want := `t.json:2:26: invalid JSON: invalid character '}' looking for beginning of object key string`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestErrorValue(t *testing.T) {
	_, err := Parse([]byte(`[{"Conditions": {"a": 1}, "Actions": []}, {"Conditions": ["OR", {"a": 1}, {"b": 1, "__op__": "~"}], "Actions": []}]`), "transformations.json", "")
	want := `transformations.json:1:75: transformation #2: Conditions[2]: unknown operator "~" (want one of = != < <= > >= in notin)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T is not an *Error", err)
	}
	if e.Source != "transformations.json" || e.Line != 1 || e.Col != 75 || e.Transformation != 2 || e.Path != "Conditions[2]" || !strings.HasPrefix(e.Reason, `unknown operator "~"`) {
		t.Errorf("fields: %+v", e)
	}
	// without a source the message starts with the position
	_, err = Parse([]byte(`[{}]`), "", "")
	if err == nil || !strings.HasPrefix(err.Error(), `line 1, column 2: transformation #1: "Conditions" is missing`) {
		t.Errorf("no source: %v", err)
	}
	// a file error keeps its cause
	_, err = Parse([]byte(act(lookupAction+`"LookupTableFile": "nope.json"}`)), "", t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v is not fs.ErrNotExist", err)
	}
}

func TestTooManyErrors(t *testing.T) {
	cfg := "[" + strings.TrimSuffix(strings.Repeat(`{"Conditions": [], "Actions": 1},`, 20), ",") + "]"
	_, err := Parse([]byte(cfg), "t.json", "")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 {
		t.Fatalf("%d lines", len(lines))
	}
	if got, want := lines[maxErrors], "t.json: 15 more problems not shown"; got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
	if got, want := lines[maxErrors-1], `t.json:1:413: transformation #13: Conditions: empty condition list`; got != want {
		t.Errorf("line %d %q, want %q", maxErrors, got, want)
	}
}

func TestParseAccepts(t *testing.T) {
	for _, cfg := range []string{
		`[]`,
		` [ ] `,
		`[{"Conditions": {"a": 1}, "Actions": []}]`,
		`[{"Conditions": [{"a": 1}], "Actions": [{"Type": "AddField", "Name": "b", "Value": [1, {"c": null}]}]}]`,
		`[{"Conditions": ["OR", {"a": [1], "__op__": "in"}, {"a": "x", "__op__": "<"}], "Actions": [{"Type": "AddFieldLookup", "Name": "b", "LookupFieldName": "a", "LookupTable": {}}]}]`,
		`[{"Conditions": {"__op__": "notin", "a": []}, "Actions": [{"Type": "DelField", "Name": "__op__"}]}]`,
	} {
		if _, err := Parse([]byte(cfg), "t.json", ""); err != nil {
			t.Errorf("%s: %v", cfg, err)
		}
	}
}

// A full-size table (every public ASN, say) loads and answers; how fast is
// measured by BenchmarkParseLargeTable, not here: a timed test fails on a busy machine.
func TestLargeLookupTable(t *testing.T) {
	var b strings.Builder
	b.WriteString(`[{"Conditions": {"a": 1}, "Actions": [` + lookupAction + `"LookupTable": {`)
	const n = 200000
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strconv.Itoa(i) + `": "AS` + strconv.Itoa(i) + `"`)
	}
	b.WriteString(`}}]}]`)
	p := mustParse(t, b.String(), "")
	if got := run(t, p, `{"a": 1, "k": 199999}`); got != `{"a":1,"k":199999,"x":"AS199999"}` {
		t.Errorf("got %s", got)
	}
	// duplicates are still found in a large object
	_, err := Parse([]byte(strings.Replace(b.String(), `"199999":`, `"5":`, 1)), "t.json", "")
	if err == nil || !strings.Contains(err.Error(), `duplicate key "5"`) {
		t.Errorf("duplicate: %v", err)
	}
}
