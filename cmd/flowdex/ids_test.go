package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// Document ids of a file name its path, modification time and size
// (README): reading it again unchanged indexes nothing twice, and pmacct's
// next purge written in place with the very same lines (steady traffic, no
// time in the records) is indexed as the new records it is. A touch looks
// the same as that purge, so it indexes the file again: the price the
// README states.
func TestReingestIdsFollowModificationTime(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "reingest")
	dir := t.TempDir()
	purge, err := os.ReadFile(samples + "print-label.json") // a rewritten print file, records without time
	if err != nil {
		t.Fatal(err)
	}
	input := writeFile(t, dir, "flows.json", string(purge))
	records := len(pmacctRecords(t, input))
	cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d"
replicas = 0
`, input, url, index))
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // explicit: whatever the file system's resolution
	setMtime := func(m time.Time) {
		t.Helper()
		if err := os.Chtimes(input, m, m); err != nil {
			t.Fatal(err)
		}
	}
	ingest := func(step string, indexed, already, total int) {
		t.Helper()
		code, stdout, stderr := runCLI(t, "", "ingest", "-c", cfg)
		m := summaryRE.FindStringSubmatch(stdout)
		if code != 0 || m == nil || m[3] != fmt.Sprint(indexed) || m[4] != fmt.Sprint(already) {
			t.Fatalf("%s: exit %d, %s%s; want %d indexed, %d already there", step, code, stdout, stderr, indexed, already)
		}
		if n := estest.Count(t, url, index+"-*"); n != total {
			t.Fatalf("%s: %d documents, want %d", step, n, total)
		}
	}
	setMtime(mtime)
	ingest("first read", records, 0, records)
	ingest("the same file again", 0, records, records)
	// the next purge, rewritten in place, holds the same lines: new records
	if err := os.WriteFile(input, purge, 0o644); err != nil {
		t.Fatal(err)
	}
	setMtime(mtime.Add(time.Minute))
	ingest("the next purge, same lines", records, 0, 2*records)
	// a touch cannot be told from that purge
	setMtime(mtime.Add(2 * time.Minute))
	ingest("touched", records, 0, 3*records)
}
