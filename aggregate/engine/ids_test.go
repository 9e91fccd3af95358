package engine

import (
	"sort"
	"testing"
)

// Ids are deterministic, differ by origin, line and content, and follow the
// line order within an origin (what Elasticsearch looks up fastest).
func TestIDs(t *testing.T) {
	a, b := newIDMaker("file|1"), newIDMaker("file|2")
	seen := map[string]bool{}
	var ordered []string
	for line := 1; line <= 300; line++ {
		id := a.make(line, []byte(`{"bytes": 1}`))
		if id != newIDMaker("file|1").make(line, []byte(`{"bytes": 1}`)) {
			t.Fatalf("line %d: not deterministic", line)
		}
		for _, other := range []string{id, b.make(line, []byte(`{"bytes": 1}`)), a.make(line, []byte(`{"bytes": 2}`))} {
			if seen[other] {
				t.Fatalf("line %d: id %s twice", line, other)
			}
			seen[other] = true
		}
		ordered = append(ordered, id)
	}
	if !sort.StringsAreSorted(ordered) {
		t.Errorf("ids of one origin do not follow the line order: %v ...", ordered[:3])
	}
	// an id is forever: a changed scheme indexes an already-read file again
	line := []byte(`{"ip_src": "192.0.2.1", "bytes": 100}`)
	m := newIDMaker("/var/lib/pmacct/flows.json|0")
	if got, want := m.make(7, line), "dX0Nm6GgoAo0000000007jqd9zMBTAio"; got != want {
		t.Errorf("id %s, want %s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { m.make(7, line) }); n > 1 {
		t.Errorf("%v allocations per id, want the string's only", n)
	}
}
