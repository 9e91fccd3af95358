package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
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
	terminate(t, cmd, stderr, syscall.SIGCONT) // SIGTERM is there when it runs again
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

// The port answers while the templates file loads: here the file is a pipe
// the test writes only once a datagram was received and decoded. The loaded
// template then reads data sets that come without it.
func TestTemplatesLoadAfterBind(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "flows.json")
	templates := filepath.Join(dir, "templates.json")
	if err := syscall.Mkfifo(templates, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q
[[input]]
name = "netflow"
type = "netflow"
listen = ["127.0.0.1:%d"]
templates_file = %q
[[pipeline]]
aggregate = ["src_host", "dst_host"]
[output.print]
type = "print"
file = %q
`, strings.TrimPrefix(base, "http://"), port, templates, out))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to listen before its templates file is written", 20*time.Second, func() bool {
		return strings.Contains(stderr.String(), "listening")
	})
	s := newV5Sender(t, port)
	d, _, _ := s.datagram()
	if _, err := s.conn.Write(d); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the datagram decoded while the file loads", 20*time.Second, func() bool {
		return testwatch.Metrics(t, base)["flowdex_input_datagrams_total"]["input=netflow"] == 1
	})
	if strings.Contains(stderr.String(), "templates loaded") {
		t.Fatal("templates loaded before the file was written")
	}
	// an IPFIX data template: source, destination, packets
	file := `{"format": 1, "templates": [{"exporter": "127.0.0.1", "version": 10, "domain": 7, "id": 300,
		"fields": [{"type": 8, "length": 4}, {"type": 12, "length": 4}, {"type": 2, "length": 8}]}]}`
	if err := os.WriteFile(templates, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the templates loaded", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "templates loaded") })
	data := []byte{192, 0, 2, 77, 198, 51, 100, 77, 0, 0, 0, 0, 0, 0, 0x03, 0xe8} // 1000 packets
	msg := binary.BigEndian.AppendUint16(nil, 10)
	msg = binary.BigEndian.AppendUint16(msg, uint16(16+4+len(data)))
	msg = binary.BigEndian.AppendUint32(msg, uint32(time.Now().Unix()))
	msg = binary.BigEndian.AppendUint32(msg, 0) // sequence
	msg = binary.BigEndian.AppendUint32(msg, 7) // domain
	msg = binary.BigEndian.AppendUint16(msg, 300)
	msg = binary.BigEndian.AppendUint16(msg, uint16(4+len(data)))
	if _, err := s.conn.Write(append(msg, data...)); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the data set decoded", 20*time.Second, func() bool {
		return testwatch.Metrics(t, base)["flowdex_input_datagrams_total"]["input=netflow"] == 2
	})
	terminate(t, cmd, stderr)
	lines, err := readLines(out)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range lines {
		found = found || strings.Contains(l, `"ip_src": "192.0.2.77"`) && strings.Contains(l, `"packets": 1000`)
	}
	if !found {
		t.Errorf("no record read with the loaded template in\n%s\n%s", strings.Join(lines, "\n"), stderr)
	}
}
