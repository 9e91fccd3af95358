package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// Datagrams the kernel holds in the socket buffer when SIGTERM comes are
// read and aggregated, not closed away uncounted: flowdex is stopped
// (SIGSTOP) while the datagrams arrive, so that all of them wait there, and
// gets SIGTERM before it runs again.
func TestSigtermReadsSocketBuffer(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "flows.json")
	port := freeUDPPort(t)
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
listen = ["127.0.0.1:%d"]
read_buffer = 16777216
[[pipeline]]
aggregate = ["src_host", "dst_host", "src_port"]
[output.print]
type = "print"
file = %q
`, port, out))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s := newV5Sender(t, port)
	const datagrams = 3000 // 1.5 MB of payload, well within the buffer
	var packets int64
	for range datagrams {
		d, p, _ := s.datagram()
		if _, err := s.conn.Write(d); err != nil {
			t.Fatal(err)
		}
		packets += p
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
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
	lines, err := readLines(out)
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	for _, l := range lines {
		var rec struct{ Packets int64 }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		got += rec.Packets
	}
	if got != packets || !strings.Contains(stderr.String(), fmt.Sprintf("received=%d ", datagrams)) {
		t.Errorf("the output holds %d packets of the %d sent in %d datagrams\n%s", got, packets, datagrams, stderr)
	}
}
