package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

var (
	buildOnce   sync.Once
	builtBinary string
	buildErr    error
)

// TestMain removes the binary flowdexBinary built: 25 MB in the temporary
// directory at every run otherwise.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary != "" {
		os.RemoveAll(filepath.Dir(builtBinary))
	}
	os.Exit(code)
}

// flowdexBinary builds the command once per test run, for tests that need a
// process of its own (signals).
func flowdexBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowdex-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBinary = filepath.Join(dir, "flowdex")
		out, err := exec.Command("go", "build", "-o", builtBinary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBinary
}

// startFlowdex runs `flowdex run -c conf` as a process of its own, with its
// standard error kept for waitFor; the process is killed when the test ends.
func startFlowdex(t *testing.T, conf string) (*exec.Cmd, *testwatch.Log) {
	t.Helper()
	cmd := exec.Command(flowdexBinary(t), "run", "-c", conf)
	stderr := &testwatch.Log{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, stderr
}

// terminate sends SIGTERM (then the signals of then) and expects the
// process to flush and exit 0 soon.
func terminate(t *testing.T, cmd *exec.Cmd, stderr fmt.Stringer, then ...os.Signal) {
	t.Helper()
	for _, sig := range append([]os.Signal{syscall.SIGTERM}, then...) {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("flowdex run exited with %v after SIGTERM\n%s", err, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("flowdex run did not stop on SIGTERM\n%s", stderr)
	}
}

// The daemon follows a pmacct print file as pmacct writes it (rewritten at each
// purge, markers included), indexes each purge once, and flushes and exits 0 on
// SIGTERM.
func TestRunFollowsPrintFile(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "follow")
	dir := t.TempDir()
	printFile := filepath.Join(dir, "plugin1.json")
	cfg := writeFile(t, dir, "flowdex.toml", `
[[input]]
type = "pmacct"
file = "plugin1.json"
follow = true
poll = "50ms"
timezone = "UTC"
`+esOutputTOML(url, index))
	cmd, stderr := startFlowdex(t, cfg)

	purge := func(stamp string, n int) string {
		var b strings.Builder
		b.WriteString(`{"event_type": "purge_init", "writer_id": "plugin1/1234"}` + "\n")
		for i := range n {
			fmt.Fprintf(&b, `{"event_type": "purge", "ip_src": "192.0.2.%d", "ip_dst": "198.51.100.1", "stamp_inserted": "%s", "stamp_updated": "%s", "packets": %d, "bytes": %d}`+"\n",
				i+1, stamp, stamp, i+1, 100*(i+1))
		}
		fmt.Fprintf(&b, `{"event_type": "purge_close", "writer_id": "plugin1/1234", "purged_entries": %d, "total_entries": %d, "duration": 0}`+"\n", n, n)
		return b.String()
	}
	// pmacct truncates and rewrites the file at each purge
	if err := os.WriteFile(printFile, []byte(purge("2024-01-01 00:00:00", 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the first purge in Elasticsearch", 20*time.Second, func() bool { return estest.Count(t, url, index+"-*") == 3 })
	if err := os.WriteFile(printFile, []byte(purge("2024-01-01 00:01:00", 5)), 0o644); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the second purge in Elasticsearch", 20*time.Second, func() bool { return estest.Count(t, url, index+"-*") == 8 })

	terminate(t, cmd, stderr)
	var packets float64
	for _, d := range estest.Docs(t, url, index+"-*") {
		packets += d.Source["packets"].(float64)
		if d.Source["event_type"] != "purge" {
			t.Errorf("a marker was indexed: %v", d.Source)
		}
	}
	if packets != 1+2+3+1+2+3+4+5 {
		t.Fatalf("packets summed in Elasticsearch: %v", packets)
	}
	if !strings.Contains(stderr.String(), "markers=4") {
		t.Errorf("markers not counted:\n%s", stderr.String())
	}
}

// A signal ends the daemon even while standard input has nothing to read (a
// `pmacct -s` that hangs): it stops reading, flushes and exits. The
// configuration is the default one (standard input to standard output) with
// metrics, to see the record read before the signal: a sleep after "flowdex
// started" let a loaded machine signal before the input read it.
func TestRunStopsOnSignalWhileReadingStdin(t *testing.T) {
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf := writeFile(t, t.TempDir(), "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q
[[input]]
type = "pmacct"
file = "-"
[output.stdout]
type = "print"
`, strings.TrimPrefix(base, "http://")))
	cmd := exec.Command(flowdexBinary(t), "run", "-c", conf)
	stdin, err := cmd.StdinPipe() // never written to, never closed
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var stdout bytes.Buffer
	var stderr testwatch.Log // read while the process writes it
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	io := []byte(`{"event_type": "purge", "ip_src": "192.0.2.1", "packets": 1, "bytes": 60}` + "\n")
	if _, err := stdin.Write(io); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the record read", 10*time.Second, func() bool {
		code, body := getURL(t, base+"/metrics")
		return code == 200 && strings.Contains(body, "\nflowdex_records_total 1\n")
	})
	terminate(t, cmd, &stderr)
	if got := stdout.String(); got != string(io) {
		t.Fatalf("printed %q, want the record read before the signal", got)
	}
}

// esOutputTOML is the [output.es] table the end-to-end tests write to: the
// index pattern prefix-YYYY.MM.DD at url, no replicas, short flushes.
func esOutputTOML(url, index string) string {
	return fmt.Sprintf(`[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d"
replicas = 0
flush_interval = "200ms"
`, url, index)
}
