package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/internal/testwatch"
)

// One malformed datagram is one warning, naming its exporter: the README
// promises one line a second per exporter at most, and a second line from
// another layer would double what an operator counts in the log.
func TestMalformedDatagramWarnsOnce(t *testing.T) {
	dir := t.TempDir()
	port := freeUDPPort(t)
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
listen = ["127.0.0.1:%d"]
[[pipeline]]
aggregate = ["src_host"]
[output.print]
type = "print"
file = "out.json"
`, port))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// a NetFlow v5 header announcing 3 records, and none of them
	if _, err := conn.Write([]byte{0, 5, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the warning", 10*time.Second, func() bool { return strings.Contains(stderr.String(), "malformed") })
	// any other warning about it is written while the datagram is decoded,
	// before the engine's: no wait for it is needed
	terminate(t, cmd, stderr)
	var warnings []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(strings.ToLower(l), "malformed") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "exporter=127.0.0.1:") {
		t.Fatalf("%d warnings for one malformed datagram, want 1 naming the exporter:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
}

// The log file quotes records' values and exporters' addresses: it is made
// readable by its owner and group only, whatever the umask, and written to
// as well as standard error.
func TestLogFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowdex.log")
	var stderr bytes.Buffer
	logger, closer, err := newLogger(config.Log{Level: "info", Format: "text", File: path}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	logger.Warn("hello")
	closer.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o007 != 0 {
		t.Errorf("log file mode %v: others may read it", info.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte("hello")) || !strings.Contains(stderr.String(), "hello") {
		t.Errorf("file %q, standard error %q", b, stderr.String())
	}
}
