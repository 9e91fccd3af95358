package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
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

// templatesConfig writes the configuration of a NetFlow collector with a
// templates file, printing source and destination to out, with metrics at
// base; it returns the collector's port, base and the file.
func templatesConfig(t *testing.T, dir, templates, out string) (port int, base, conf string) {
	port = freeUDPPort(t)
	base = fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf = writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
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
	return port, base, conf
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
	port, base, conf := templatesConfig(t, dir, templates, out)
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

// A templates file that cannot be read does not stop the collector: the
// error is logged, datagrams are received, and the file is left as it was
// for the operator to look at.
func TestTemplatesFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	templates := writeFile(t, dir, "templates.json", `{"format": 1, "templates": [{"exporter": `)
	port, base, conf := templatesConfig(t, dir, templates, filepath.Join(dir, "flows.json"))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "the error to be logged", 20*time.Second, func() bool {
		return strings.Contains(stderr.String(), "cannot read the templates file")
	})
	s := newV5Sender(t, port)
	d, _, _ := s.datagram()
	if _, err := s.conn.Write(d); err != nil {
		t.Fatal(err)
	}
	testwatch.WaitFor(t, "the datagram decoded", 20*time.Second, func() bool {
		return testwatch.Metrics(t, base)["flowdex_input_datagrams_total"]["input=netflow"] == 1
	})
	terminate(t, cmd, stderr)
	if b, err := os.ReadFile(templates); err != nil || string(b) != `{"format": 1, "templates": [{"exporter": ` {
		t.Errorf("the templates file was changed: %q, %v", b, err)
	}
}

// Elasticsearch stops answering (SIGSTOP: connections accepted, requests
// never answered) under steady NetFlow, with a request timeout and retries
// that would take minutes to run out:
//   - the spool takes over after spool_after, while flowdex runs, so memory
//     does not wait for the retries;
//   - SIGTERM ends within stop_grace and a few seconds, what was not
//     delivered spooled;
//   - flowdex started again while Elasticsearch is still frozen listens at
//     once, and stops as quickly once the node is killed (connections
//     refused);
//   - a last run, with Elasticsearch back on its data, sends the spool: the
//     sums equal what was sent, each document id once.
func TestStopDoesNotWaitForElasticsearch(t *testing.T) {
	node, url, pid := startOwnNode(t)

	index := estest.Index(t, "flowdex-test-stop")
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	port := freeUDPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	// a request waits 60 s and is retried 10 times: minutes before the
	// retries would give up
	conf := strings.Replace(flowdexConfig(port, url, index, spool, base), "request_timeout = \"2s\"\nmax_retries = 2\n",
		"request_timeout = \"60s\"\nmax_retries = 10\nstop_grace = \"1s\"\nspool_after = \"2s\"\n", 1)
	conf = writeFile(t, dir, "flowdex.toml", conf)
	sender := newV5Sender(t, port)
	// traffic sends for d, then waits until flowdex has read every datagram
	// sent since it started (at records sent)
	var started int
	traffic := func(d time.Duration) {
		t.Helper()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { sender.send(t, 200, stop); close(done) }()
		time.Sleep(d)
		close(stop)
		<-done
		records, _, _ := sender.totals()
		waitReceived(t, base, (records-started)/10)
	}
	// stopQuickly sends SIGTERM and expects a clean exit within limit
	stopQuickly := func(cmd *exec.Cmd, stderr *testwatch.Log, limit time.Duration) {
		t.Helper()
		start := time.Now()
		terminate(t, cmd, stderr)
		took := time.Since(start)
		t.Logf("stopped %.1f s after SIGTERM", took.Seconds())
		if took > limit {
			t.Errorf("flowdex took %.1f s to stop after SIGTERM; stop_grace is 1 s\n%s", took.Seconds(), stderr)
		}
	}
	spooled := func() float64 {
		return testwatch.Metrics(t, base)["flowdex_output_documents_total"]["output=es,result=spooled"]
	}

	// 1. frozen while flowdex runs
	cmd, stderr := startFlowdex(t, conf)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("flowdex's log:\n%s", stderr)
		}
	})
	testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
	traffic(2 * time.Second)
	syscall.Kill(pid, syscall.SIGSTOP)
	traffic(2 * time.Second)
	testwatch.WaitFor(t, "the spool to take over from the retries", 20*time.Second, func() bool { return spooled() > 0 })
	traffic(time.Second)
	stopQuickly(cmd, stderr, 8*time.Second)
	if spoolEmpty(spool) {
		t.Fatalf("nothing spooled at the first stop\n%s", stderr)
	}

	// 2. started while frozen, stopped once killed
	start := time.Now()
	started, _, _ = sender.totals()
	cmd, stderr = startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
	took := time.Since(start)
	t.Logf("listening %.1f s after the start, Elasticsearch frozen", took.Seconds())
	if took > 3*time.Second {
		t.Errorf("flowdex listened %.1f s after its start, Elasticsearch frozen\n%s", took.Seconds(), stderr)
	}
	traffic(2 * time.Second)
	syscall.Kill(pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGCONT)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	traffic(2 * time.Second)
	stopQuickly(cmd, stderr, 8*time.Second)

	// 3. Elasticsearch back: the spool is sent
	if _, err := esScript(t, node, true, "start", "8"); err != nil {
		t.Fatalf("restarting Elasticsearch on its data: %v", err)
	}
	cmd, stderr = startFlowdex(t, conf)
	testwatch.WaitFor(t, "the spool to be sent", 60*time.Second, func() bool { return spoolEmpty(spool) })
	terminate(t, cmd, stderr)
	records, packets, bytes := sender.totals()
	docs, gotPackets, gotBytes := esTotals(t, url, index+"-*")
	t.Logf("sent %d records (%d packets, %d bytes); Elasticsearch: %d documents", records, packets, bytes, docs)
	if gotPackets != packets || gotBytes != bytes {
		t.Errorf("Elasticsearch holds %d packets, %d bytes in %d documents; sent %d packets, %d bytes in %d records\n%s",
			gotPackets, gotBytes, docs, packets, bytes, records, stderr)
	}
}
