package transform

import (
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
)

// doc decodes one JSON object into a Document.
func doc(t testing.TB, line string) *document.Document {
	t.Helper()
	d := &document.Document{}
	if err := document.NewDecoder().Decode([]byte(line), d); err != nil {
		t.Fatalf("decode %s: %v", line, err)
	}
	return d
}

func mustParse(t testing.TB, cfg, baseDir string) *Program {
	t.Helper()
	p, err := Parse([]byte(cfg), "test.json", baseDir)
	if err != nil {
		t.Fatalf("Parse(%s):\n%v", cfg, err)
	}
	return p
}

// run applies cfg to the record and returns the result as compact JSON.
func run(t testing.TB, p *Program, record string) string {
	t.Helper()
	d := doc(t, record)
	p.Apply(d)
	return string(d.AppendJSON(nil, document.Compact))
}

// condProgram wraps a condition in a transformation that marks matches.
func condProgram(t testing.TB, cond string) *Program {
	t.Helper()
	return mustParse(t, `[{"Conditions": `+cond+`, "Actions": [{"Type": "AddField", "Name": "_hit", "Value": "y"}]}]`, "")
}

func matches(p *Program, d *document.Document) bool {
	p.Apply(d)
	_, ok := d.Get("_hit")
	return ok
}
