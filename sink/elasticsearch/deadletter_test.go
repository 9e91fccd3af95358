package elasticsearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// deadLetterLines checks that path holds one JSON object per line and
// returns how many.
func deadLetterLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("%s ends in a torn line: ...%q", path, data[max(0, len(data)-40):])
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
		var r struct {
			ID       string          `json:"id"`
			Document json.RawMessage `json:"document"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == "" || len(r.Document) == 0 {
			t.Errorf("%s line %d is not a dead-letter record (%v): %.80s", path, n, err, sc.Bytes())
		}
	}
	return n
}

// Dead-letter files hold whole flow records: only their owner reads them.
func TestDeadLetterMode(t *testing.T) {
	_, srv := newFakeES(t, func(int) string { return "403" })
	cfg := fakeConfig(srv.URL)
	cfg.DeadLetterFile = filepath.Join(t.TempDir(), "dead.ndjson")
	s, _ := startSink(t, cfg)
	writeDocs(t, s, 5, true)
	info, err := os.Stat(cfg.DeadLetterFile)
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Mode().Perm(); m != 0o600 {
		t.Errorf("dead-letter file mode %v, want 0600", m)
	}
	if n := deadLetterLines(t, cfg.DeadLetterFile); n != 5 || s.Stats().DeadLettered != 5 {
		t.Errorf("%d lines, stats %+v; want 5 dead-lettered", n, s.Stats())
	}
}

// A full disk cuts a dead-letter write short: the records written whole
// count as dead-lettered, the others as failed, and the torn one is cut off,
// so that the records of the next write, once there is room, are whole lines.
// The disk is a 64 KiB tmpfs (root only).
func TestDeadLetterDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 16<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	_, srv := newFakeES(t, func(int) string { return "403" })
	cfg := fakeConfig(srv.URL)
	cfg.DeadLetterFile = filepath.Join(dir, "dead.ndjson")
	cfg.MaxRetries, cfg.Workers, cfg.FlushDocs = 0, 1, 1000
	s, _ := startSink(t, cfg)
	t.Cleanup(func() { s.Stop(context.Background()) }) // closes the file before the unmount
	writeAndFlush(t, s, 400)                           // one request, one write of 400 records: more than the disk holds
	testwatch.WaitFor(t, "the 400 documents refused", 20*time.Second, func() bool {
		st := s.Stats()
		return st.DeadLettered+st.Failed == 400
	})
	st := s.Stats()
	lines := deadLetterLines(t, cfg.DeadLetterFile)
	if st.DeadLettered == 0 || st.Failed == 0 || st.DeadLettered != uint64(lines) {
		t.Fatalf("stats %+v, %d records in the file: want those in the file dead-lettered, the rest failed", st, lines)
	}
	t.Logf("disk full: %d dead-lettered, %d failed", st.DeadLettered, st.Failed)

	// room again
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	writeAndFlush(t, s, 5)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	st2 := s.Stats()
	if st2.DeadLettered != st.DeadLettered+5 || st2.Failed != st.Failed || deadLetterLines(t, cfg.DeadLetterFile) != lines+5 {
		t.Errorf("after the disk has room: stats %+v, want 5 more dead-lettered, whole lines", st2)
	}
}

// An error object a proxy indents is written on the record's one line.
func TestDeadLetterCompactError(t *testing.T) {
	for raw, want := range map[string]string{
		`{"type":"x","reason":"y"}`:                       `{"type":"x","reason":"y"}`,
		"{\n  \"type\": \"x\",\r\n  \"reason\": \"y\"\n}": `{"type":"x","reason":"y"}`,
		"not json\n": `{"type":"unknown","reason":"not json\n"}`,
	} {
		if got := string(appendCompact(nil, []byte(raw))); got != want {
			t.Errorf("%q: got %s, want %s", raw, got, want)
		}
	}
}
