package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// Documents dead-lettered for a mapping conflict are indexed once the mapping
// is fixed, by replaying the dead-letter file: in the index of their records,
// with their ids, so that a second replay finds them all there. Bad lines are
// counted with their numbers, documents that fail again go to the output's
// dead-letter file, and a file is not replayed into itself.
func TestIngestDeadLetterReplay(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "replay")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = "-"
[output.es]
type = "elasticsearch"
urls = [%q]
index = %q
replicas = 0
dead_letter_file = "dead.ndjson"
`, url, index))
	deadLetter := filepath.Join(dir, "dead.ndjson")

	// a mapping that cannot take the documents: all four are dead-lettered
	estest.Call(t, http.MethodPut, url+"/"+index, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0},"mappings":{"properties":{"ip_src":{"type":"long"}}}}`), nil)
	var input strings.Builder
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&input, `{"event_type": "purge", "ip_src": "192.0.2.%d", "packets": %d, "bytes": %d}`+"\n", i, i, 60*i)
	}
	code, stdout, stderr := runCLI(t, input.String(), "ingest", "-c", cfg)
	if code != exitData || !strings.Contains(stdout, "indexed 0 (0 already there), failed 4, dead-lettered 4") {
		t.Fatalf("first ingest: exit %d\n%s%s", code, stdout, stderr)
	}
	var ids []string
	for line := range strings.Lines(readText(t, deadLetter)) {
		var r struct{ ID, Index string }
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.ID == "" || r.Index != index {
			t.Fatalf("dead-letter record %q: %v", line, err)
		}
		ids = append(ids, r.ID)
	}
	replayFile := filepath.Join(dir, "replay.ndjson")
	if err := os.Rename(deadLetter, replayFile); err != nil {
		t.Fatal(err)
	}

	// the mapping fixed: the index is made again from flowdex's template
	estest.Call(t, http.MethodDelete, url+"/"+index, nil, nil)
	code, stdout, stderr = runCLI(t, "", "ingest", "-c", cfg, "--dead-letter-replay", replayFile)
	want := "flowdex ingest: read 4 lines, 4 records; indexed 4 (0 already there), failed 0, dead-lettered 0, retried 0; skipped markers 0, bad lines 0\n"
	if code != 0 || stdout != want {
		t.Fatalf("replay: exit %d\n got %q\nwant %q\n%s", code, stdout, want, stderr)
	}
	var got []string
	for _, d := range estest.Docs(t, url, index) {
		got = append(got, d.ID)
		if d.Source["ip_src"] == nil || d.Source["@timestamp"] == nil {
			t.Errorf("document %s: %v", d.ID, d.Source)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("indexed ids %v, want the dead-letter records' %v", got, ids)
	}

	// again: nothing new
	code, stdout, stderr = runCLI(t, "", "ingest", "-c", cfg, "--dead-letter-replay", replayFile)
	want = "flowdex ingest: read 4 lines, 4 records; indexed 0 (4 already there), failed 0, dead-lettered 0, retried 0; skipped markers 0, bad lines 0\n"
	if code != 0 || stdout != want {
		t.Fatalf("second replay: exit %d\n got %q\nwant %q\n%s", code, stdout, want, stderr)
	}
	if n := estest.Count(t, url, index); n != 4 {
		t.Fatalf("%d documents after the second replay, want 4", n)
	}

	// a record without id, a bad line, a document the mapping still refuses
	mixed := writeFile(t, dir, "mixed.ndjson", fmt.Sprintf(`{"time":"2024-01-01T00:00:00.000Z","index":%[1]q,"id":null,"status":400,"error":{},"document":{"ip_src":"192.0.2.9","bytes":9,"@timestamp":"2024-01-01T00:00:00.000Z"}}
{"time":"2024-01-01T00:00:00.000Z","index":%[1]q,"id":"x
{"time":"2024-01-01T00:00:00.000Z","index":%[1]q,"id":"conflict-1","status":400,"error":{},"document":{"ip_src":"192.0.2.10","bytes":"abc","@timestamp":"2024-01-01T00:00:00.000Z"}}
`, index))
	code, stdout, stderr = runCLI(t, "", "ingest", "-c", cfg, "--dead-letter-replay", mixed)
	want = "flowdex ingest: read 3 lines, 2 records; indexed 1 (0 already there), failed 1, dead-lettered 1, retried 0; skipped markers 0, bad lines 1\n"
	if code != exitData || stdout != want {
		t.Fatalf("mixed replay: exit %d\n got %q\nwant %q\n%s", code, stdout, want, stderr)
	}
	if !strings.Contains(stderr, "line=2") || !strings.Contains(stderr, deadLetter) {
		t.Errorf("the bad line's number or the dead-letter file is not reported:\n%s", stderr)
	}
	if dl := readText(t, deadLetter); strings.Count(dl, "\n") != 1 || !strings.Contains(dl, `"id":"conflict-1"`) || !strings.Contains(dl, "[bytes]") {
		t.Errorf("dead-letter file after the mixed replay:\n%s", dl)
	}

	// into itself
	code, _, stderr = runCLI(t, "", "ingest", "-c", cfg, "--dead-letter-replay", deadLetter)
	if code != exitUsage || !strings.Contains(stderr, "is the dead-letter file of output") {
		t.Errorf("replaying the output's own dead-letter file: exit %d\n%s", code, stderr)
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
