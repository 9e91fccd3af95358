package main

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
}
