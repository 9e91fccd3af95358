package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

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
	node := esNode(t)
	t.Cleanup(func() { esScript(t, node, false, "remove", "8") })
	url, err := esScript(t, node, false, "start", "8")
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("FLOWDEX_REQUIRE_ES") == "1" {
			t.Fatalf("cannot start this test's Elasticsearch: %v", err)
		}
		t.Skipf("cannot start this test's Elasticsearch: %v", err)
	}
	pidText, err := esScript(t, node, false, "pid", "8")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		t.Fatalf("es.sh pid: %q", pidText)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })

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
	if took := time.Since(start); took > 3*time.Second {
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
