package main

import (
	be "encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// v5Sender sends NetFlow v5 datagrams of 10 records each to 127.0.0.1:port
// at a fixed rate and adds up what it sent. Records cycle through 40 keys.
type v5Sender struct {
	conn           net.Conn
	seq            uint32
	start          time.Time
	mu             sync.Mutex
	records        int
	packets, bytes int64
}

func newV5Sender(t *testing.T, port int) *v5Sender {
	t.Helper()
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &v5Sender{conn: conn, start: time.Now().Add(-time.Minute)}
}

// datagram builds the next datagram: a 24-byte header and 10 records of 48.
func (s *v5Sender) datagram() ([]byte, int64, int64) {
	const n = 10
	b := make([]byte, 24+48*n)
	now := time.Now()
	uptime := uint32(now.Sub(s.start).Milliseconds())
	big := be.BigEndian
	big.PutUint16(b[0:], 5)
	big.PutUint16(b[2:], n)
	big.PutUint32(b[4:], uptime)
	big.PutUint32(b[8:], uint32(now.Unix()))
	big.PutUint32(b[16:], s.seq)
	var packets, bytes int64
	for i := range n {
		k := int(s.seq+uint32(i)) % 40
		r := b[24+48*i:]
		copy(r[0:4], []byte{192, 0, 2, byte(1 + k%8)})
		copy(r[4:8], []byte{198, 51, 100, byte(1 + k/8)})
		p := uint32(1 + (int(s.seq)+i)%7)
		o := p*40 + uint32(k)
		big.PutUint32(r[16:], p)
		big.PutUint32(r[20:], o)
		big.PutUint32(r[24:], uptime-500) // first
		big.PutUint32(r[28:], uptime-100) // last
		big.PutUint16(r[32:], uint16(40000+k))
		big.PutUint16(r[34:], 443)
		r[38] = 6
		packets += int64(p)
		bytes += int64(o)
	}
	s.seq += n
	return b, packets, bytes
}

// send sends datagrams at rate per second until stop is closed.
func (s *v5Sender) send(t *testing.T, rate int, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		d, p, o := s.datagram()
		if _, err := s.conn.Write(d); err != nil {
			t.Errorf("send: %v", err)
			return
		}
		s.mu.Lock()
		s.records += 10
		s.packets += p
		s.bytes += o
		s.mu.Unlock()
	}
}

func (s *v5Sender) totals() (records int, packets, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records, s.packets, s.bytes
}

// esTotals sums packets and bytes over every document of the pattern and
// fails the test if an _id appears twice.
func esTotals(t *testing.T, url, pattern string) (docs int, packets, bytes int64) {
	t.Helper()
	seen := map[string]string{}
	for _, d := range estest.Docs(t, url, pattern) {
		if other, ok := seen[d.ID]; ok {
			t.Errorf("document id %s twice (indices %s and %s)", d.ID, other, d.Index)
		}
		seen[d.ID] = d.Index
		p, _ := d.Source["packets"].(float64)
		b, _ := d.Source["bytes"].(float64)
		packets += int64(p)
		bytes += int64(b)
	}
	return len(seen), packets, bytes
}

// flowdexConfig is a NetFlow collector on port writing 5-tuples to url,
// refreshing every second, with a spool when spool is not "", and its
// metrics at base (waitReceived).
func flowdexConfig(port int, url, index, spool, base string) string {
	c := fmt.Sprintf(`
[http]
listen = %q
[[input]]
name = "netflow"
type = "netflow"
listen = ["127.0.0.1:%d"]
[[pipeline]]
name = "flows"
aggregate = ["src_host", "dst_host", "src_port", "dst_port", "proto"]
refresh = "1s"
timestamps_utc = true
outputs = ["es"]
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m"
replicas = 0
flush_interval = "200ms"
request_timeout = "2s"
max_retries = 2
`, strings.TrimPrefix(base, "http://"), port, url, index)
	if spool != "" {
		c += fmt.Sprintf("spool_dir = %q\n", spool)
	}
	return c
}

// waitReceived waits until the flowdex serving base has read n datagrams
// from its sockets since it started (SIGTERM reads what the kernel holds
// too, TestSigtermReadsSocketBuffer; here the counts must add up before).
func waitReceived(t *testing.T, base string, n int) {
	t.Helper()
	testwatch.WaitFor(t, fmt.Sprintf("flowdex to read the %d datagrams sent", n), 30*time.Second, func() bool {
		return testwatch.Metrics(t, base)["flowdex_input_received_datagrams_total"]["input=netflow"] == float64(n)
	})
}

// SIGTERM while flows sit in the cache and bulk requests are in flight, then
// a second run: Elasticsearch holds exactly what was sent, each id once.
func TestSigtermKeepsEverything(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "flowdex-test-sigterm")
	dir := t.TempDir()
	port := freeUDPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf := writeFile(t, dir, "flowdex.toml", flowdexConfig(port, url, index, filepath.Join(dir, "spool"), base))
	sender := newV5Sender(t, port)
	for run := range 2 {
		cmd, stderr := startFlowdex(t, conf)
		testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
		before, _, _ := sender.totals()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { sender.send(t, 400, stop); close(done) }()
		time.Sleep(2500 * time.Millisecond) // mid-refresh: the cache holds flows
		close(stop)
		<-done
		records, _, _ := sender.totals()
		waitReceived(t, base, (records-before)/10) // the last datagrams too, on a loaded machine
		terminate(t, cmd, stderr)
		if !strings.Contains(stderr.String(), "malformed=0") {
			t.Errorf("run %d: malformed datagrams?\n%s", run, stderr)
		}
	}
	records, packets, bytes := sender.totals()
	docs, gotPackets, gotBytes := esTotals(t, url, index+"-*")
	if gotPackets != packets || gotBytes != bytes {
		t.Errorf("Elasticsearch holds %d packets, %d bytes in %d documents; sent %d packets, %d bytes in %d records",
			gotPackets, gotBytes, docs, packets, bytes, records)
	}
}

// esNode is es.sh's environment for a node of a test's own, which it can
// stop and kill: an instance named after the test process, on ports that were
// free when the test began, so that two copies of the suite running at once
// (two worktrees, two CI jobs on one host) each freeze and kill their own
// node, never the other's.
func esNode(t *testing.T) []string {
	t.Helper()
	skipIfNoES(t)
	return []string{
		fmt.Sprintf("FLOWDEX_ES_INSTANCE=outage-%d", os.Getpid()),
		fmt.Sprintf("FLOWDEX_ES_PORT=%d", freeTCPPort(t)),
		fmt.Sprintf("FLOWDEX_ES_TRANSPORT_PORT=%d", freeTCPPort(t)),
	}
}

// startOwnNode starts an Elasticsearch 8 node of the test's own (esNode),
// removed at the end, and returns its environment, URL and pid; it is sent
// SIGCONT at the end too, in case the test froze it.
func startOwnNode(t *testing.T) (node []string, url string, pid int) {
	t.Helper()
	node = esNode(t)
	t.Cleanup(func() { esScript(t, node, false, "remove", "8") }) // also after a failed start
	url, err := esScript(t, node, false, "start", "8")
	if err != nil {
		ownESFailed(t, err)
	}
	pidText, err := esScript(t, node, false, "pid", "8")
	if err != nil {
		t.Fatal(err)
	}
	if pid, err = strconv.Atoi(pidText); err != nil {
		t.Fatalf("es.sh pid: %q", pidText)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	return node, url, pid
}

// ownESFailed ends a test whose own Elasticsearch did not start: it fails
// in CI (or with FLOWDEX_REQUIRE_ES=1), else it is skipped.
// skipIfNoES skips, in the quick suite (FLOWDEX_TEST_NO_ES=1, unless CI=true
// or FLOWDEX_REQUIRE_ES=1), a test that would start Elasticsearch nodes of
// its own.
func skipIfNoES(t *testing.T) {
	t.Helper()
	if os.Getenv("FLOWDEX_TEST_NO_ES") == "1" && os.Getenv("CI") != "true" && os.Getenv("FLOWDEX_REQUIRE_ES") != "1" {
		t.Skip("FLOWDEX_TEST_NO_ES=1: no Elasticsearch node of the test's own (the quick suite)")
	}
}

func ownESFailed(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" || os.Getenv("FLOWDEX_REQUIRE_ES") == "1" {
		t.Fatalf("cannot start this test's Elasticsearch: %v", err)
	}
	t.Skipf("cannot start this test's Elasticsearch: %v", err)
}

// esScript runs the project's es.sh for the node of node (esNode).
func esScript(t *testing.T, node []string, keepData bool, args ...string) (string, error) {
	t.Helper()
	script, err := filepath.Abs("../../sink/elasticsearch/estest/es.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, args...)
	cmd.Env = append(os.Environ(), node...)
	if keepData {
		cmd.Env = append(cmd.Env, "FLOWDEX_ES_KEEP_DATA=1")
	}
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%v: %s", err, ee.Stderr)
	}
	return strings.TrimSpace(string(out)), err
}

// An Elasticsearch outage under steady traffic: the node is frozen
// (SIGSTOP: requests time out), then killed, then started again on its data.
// flowdex spools what it cannot send and replays it: the sums in
// Elasticsearch equal what was sent, and no id appears twice.
func TestOutageLosesNothing(t *testing.T) {
	node, url, pid := startOwnNode(t)
	index := estest.Index(t, "flowdex-test-outage")
	dir := t.TempDir()
	port := freeUDPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf := writeFile(t, dir, "flowdex.toml", flowdexConfig(port, url, index, filepath.Join(dir, "spool"), base))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
	sender := newV5Sender(t, port)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { sender.send(t, 200, stop); close(done) }()

	time.Sleep(3 * time.Second)
	syscall.Kill(pid, syscall.SIGSTOP) // requests now hang until their timeout
	time.Sleep(8 * time.Second)
	syscall.Kill(pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGCONT)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // connections refused for a while
	if _, err := esScript(t, node, true, "start", "8"); err != nil {
		t.Fatalf("restarting Elasticsearch on its data: %v", err)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	<-done
	records, _, _ := sender.totals()
	waitReceived(t, base, records/10)
	testwatch.WaitFor(t, "the spool to be sent", 60*time.Second, func() bool { return spoolEmpty(filepath.Join(dir, "spool")) })
	terminate(t, cmd, stderr)
	out := stderr.String()
	if !strings.Contains(out, "spooling") {
		t.Errorf("flowdex never spooled: the outage did not happen?\n%s", out)
	}
	if !spoolEmpty(filepath.Join(dir, "spool")) {
		t.Errorf("the spool is not empty at the end")
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "elasticsearch: stopped") {
			t.Log(l)
		}
	}
	records, packets, bytes := sender.totals()
	docs, gotPackets, gotBytes := esTotals(t, url, index+"-*")
	t.Logf("sent %d records (%d packets, %d bytes); Elasticsearch: %d documents", records, packets, bytes, docs)
	if gotPackets != packets || gotBytes != bytes {
		t.Errorf("Elasticsearch holds %d packets, %d bytes in %d documents; sent %d packets, %d bytes in %d records\n%s",
			gotPackets, gotBytes, docs, packets, bytes, records, out)
	}
}

// spoolEmpty reports whether no segment is left in dir.
func spoolEmpty(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.spool"))
	return len(m) == 0
}
