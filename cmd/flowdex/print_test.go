package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// The print output is written at each refresh, as pmacct's print plugin
// writes at each purge: people follow those files. One NetFlow datagram, a
// 1 s refresh: its record is in the file within a few refreshes, long before
// the daemon stops, and before the output's own hourly flush.
func TestPrintWrittenAtRefresh(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "flows.json")
	port := freeUDPPort(t)
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
listen = ["127.0.0.1:%d"]
[[pipeline]]
aggregate = ["src_host", "dst_host", "dst_port"]
refresh = "1s"
[output.print]
type = "print"
file = %q
flush_interval = "1h"
`, port, out))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
	s := newV5Sender(t, port)
	d, _, _ := s.datagram()
	if _, err := s.conn.Write(d); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the records in the print file before stopping", 10*time.Second, func() bool {
		lines, _ := readLines(out)
		return len(lines) == 10 // 10 records, 10 keys
	})
	terminate(t, cmd, stderr)
}

// A followed pmacct print file gets to the print output as it is read, not
// when the daemon stops.
func TestPrintWrittenAsPmacctRecordsArrive(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "plugin1.json")
	out := filepath.Join(dir, "out.json")
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
follow = true
poll = "50ms"
[output.print]
type = "print"
file = %q
`, in, out))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to start", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "flowdex started") })
	f, err := os.OpenFile(in, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644) // print_output_file_append
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 3 {
		fmt.Fprintf(f, `{"event_type": "purge", "ip_src": "192.0.2.%d", "packets": 1, "bytes": 40}`+"\n", i+1)
	}
	testwatch.WaitFor(t, "the records in the print file before stopping", 10*time.Second, func() bool {
		lines, _ := readLines(out)
		return len(lines) == 3
	})
	terminate(t, cmd, stderr)
}

// A pmacct print file rewritten at each purge (print_output_file_append
// false) gets to the print output at each purge, before the output's own
// hourly flush: the purge read ends when pmacct rewrites the file.
func TestPrintWrittenAtEachPmacctPurge(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "plugin1.json")
	out := filepath.Join(dir, "out.json")
	port := freeTCPPort(t)
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = "127.0.0.1:%d"
[[input]]
type = "pmacct"
file = %q
follow = true
poll = "50ms"
[output.print]
type = "print"
file = %q
flush_interval = "1h"
`, port, in, out))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	read := func(lines float64) func() bool {
		return func() bool { return testwatch.Metrics(t, base)["flowdex_pmacct_lines_total"][""] == lines }
	}
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to start", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "flowdex started") })
	purge := func(n int, stamp string) {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"event_type": "purge", "ip_src": "192.0.2.%d", "packets": 1, "bytes": 40, "stamp_inserted": %q}`+"\n", i+1, stamp)
		}
		if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil { // truncated and written, as pmacct does
			t.Fatal(err)
		}
	}
	// each purge is read before the next replaces it: pmacct's refresh is
	// minutes, the test's as short as it can be
	purge(2, "2024-01-01 00:00:00")
	testwatch.WaitFor(t, "the first purge read", 10*time.Second, read(2))
	purge(3, "2024-01-01 00:05:00")
	testwatch.WaitFor(t, "the second purge read", 10*time.Second, read(5))
	testwatch.WaitFor(t, "the first purge in the print file", 10*time.Second, func() bool {
		lines, _ := readLines(out)
		return len(lines) == 2
	})
	purge(1, "2024-01-01 00:10:00")
	testwatch.WaitFor(t, "the second purge in the print file", 10*time.Second, func() bool {
		lines, _ := readLines(out)
		return len(lines) == 5
	})
	terminate(t, cmd, stderr)
}

// The pmacct line counters move as lines are read: an operator alerting on
// bad lines of a followed print file sees them while pmacct appends to it.
func TestPmacctCountersWhileFollowing(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "plugin1.json")
	port := freeTCPPort(t)
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = "127.0.0.1:%d"
[[input]]
type = "pmacct"
file = %q
follow = true
poll = "50ms"
[output.print]
type = "print"
file = "out.json"
`, port, in))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to start", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "flowdex started") })
	f, err := os.OpenFile(in, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644) // print_output_file_append
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, `{"event_type": "purge", "ip_src": "192.0.2.1", "packets": 1, "bytes": 40}`)
	fmt.Fprintln(f, `{"event_type": "purge", "ip_src": "192.0.2.2", "packets": 1, "bytes"`)
	fmt.Fprintln(f, `{"event_type": "purge", "ip_src": "192.0.2.3", "packets": 1, "bytes": 40}`)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var lines, bad float64
	testwatch.WaitFor(t, "the line counters on /metrics", 10*time.Second, func() bool {
		m := testwatch.Metrics(t, base)
		lines, bad = m["flowdex_pmacct_lines_total"][""], m["flowdex_pmacct_bad_lines_total"][""]
		return lines == 3 && bad == 1
	})
	terminate(t, cmd, stderr)
}

// ingest serves no HTTP: with the daemon's configuration, whose [http] port
// the running daemon holds, it reads and writes as usual.
func TestIngestLeavesHTTPPortAlone(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	dir := t.TempDir()
	writeFile(t, dir, "in.json", `{"event_type": "purge", "ip_src": "192.0.2.1", "packets": 1, "bytes": 40}`+"\n")
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q
[[input]]
type = "pmacct"
file = "in.json"
[output.print]
type = "print"
file = "out.json"
`, held.Addr().String()))
	if code, stdout, stderr := runCLI(t, "", "ingest", "-c", conf); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if lines, _ := readLines(filepath.Join(dir, "out.json")); len(lines) != 1 {
		t.Errorf("%d records written, want 1", len(lines))
	}
}
