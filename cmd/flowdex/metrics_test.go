package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/flowdex/flowdex/internal/testports"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/netflow"
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// freeTCPPort returns a port nothing listens on now.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	return freeTCPPorts(t, 1)[0]
}

// freeTCPPorts returns n distinct free ports: each listener stays open
// until all are chosen (a port picked, closed and picked again was a
// cluster whose HTTP and transport ports were one).
func freeTCPPorts(t *testing.T, n int) []int {
	t.Helper()
	// none another server of the process was given: an Elasticsearch
	// cluster binds its ports seconds after, and a Kafka cluster took one
	ports, err := testports.Free(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// getURL answers an HTTP GET's status and body; 0 when nothing answers.
func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// The Prometheus endpoint after real traffic: softflowd's IPFIX export of a
// trace (relayed by the test, which keeps every datagram) and one malformed
// datagram reach flowdex's UDP input; /metrics then counts exactly those
// datagrams and the records in them, per exporter, the pipeline's records and
// aggregates, and the documents Elasticsearch indexed, as the index holds them.
// /healthz and /readyz answer while it runs.
func TestMetricsAfterTraffic(t *testing.T) {
	requireTools(t, "softflowd")
	requireFaketime(t)
	url := estest.URL(t)
	index := estest.Index(t, "flowdex-test-metrics")
	dir := t.TempDir()
	port := freeUDPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q

[[input]]
name = "routers"
type = "netflow"
listen = ["127.0.0.1:%d"]

[[pipeline]]
name = "five"
aggregate = ["src_host", "dst_host", "src_port", "dst_port", "proto"]
refresh = "1s"
outputs = ["es"]

`, strings.TrimPrefix(base, "http://"), port)+esOutputTOML(url, index))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to start", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "flowdex started") })

	// ready once the input's socket is bound, which follows "flowdex started"
	testwatch.WaitFor(t, "/readyz", 10*time.Second, func() bool { code, _ := getURL(t, base+"/readyz"); return code == http.StatusOK })
	if code, body := getURL(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: HTTP %d: %s", code, body)
	}
	var r struct {
		Ready   bool
		Inputs  bool `json:"inputs_running"`
		Outputs map[string]struct{ Started bool }
	}
	if _, body := getURL(t, base+"/readyz"); json.Unmarshal([]byte(body), &r) != nil || !r.Ready || !r.Inputs || !r.Outputs["es"].Started {
		t.Errorf("/readyz: %s", body)
	}

	relay := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	ds, log, err := captureExport(context.Background(), func(p int) (*exec.Cmd, error) {
		return softflowd(exportTraffic, "-v", "10")(dir, p)
	}, relay)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relay))
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{0, 10, 0, 99, 1, 2, 3}) // IPFIX header cut short
	conn.Close()

	// the records in what was sent, counted by a decoder of the test's own
	dec, err := netflow.New(netflow.DefaultConfiguration(), nil)
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for _, d := range ds {
		if err := dec.Decode(d.payload, d.src.Addr(), d.at, func(*flow.Record) { records++ }); err != nil {
			t.Fatalf("decoding what softflowd sent: %v", err)
		}
	}
	if records == 0 {
		t.Fatal("softflowd's export has no records")
	}

	var m map[string]map[string]float64
	exp := "exporter=127.0.0.1,input=routers"
	testwatch.WaitFor(t, "every datagram decoded and every aggregate indexed", 30*time.Second, func() bool {
		m = testwatch.Metrics(t, base)
		written := m["flowdex_pipeline_aggregates_written_total"]["pipeline=five"]
		return m["flowdex_exporter_datagrams_total"][exp] == float64(len(ds)+1) && written > 0 &&
			m["flowdex_pipeline_cache_entries"]["pipeline=five"] == 0 &&
			m["flowdex_output_documents_total"]["output=es,result=indexed"] == written
	})
	docs := estest.Count(t, url, index+"-*")
	checks := []struct {
		metric, labels string
		want           float64
	}{
		{"flowdex_exporter_datagrams_total", exp, float64(len(ds) + 1)},
		{"flowdex_exporter_decode_errors_total", exp, 1},
		{"flowdex_exporter_records_total", exp, float64(records)},
		{"flowdex_input_datagrams_total", "input=routers", float64(len(ds) + 1)},
		{"flowdex_input_malformed_datagrams_total", "input=routers", 1},
		{"flowdex_input_received_datagrams_total", "input=routers", float64(len(ds) + 1)},
		{"flowdex_input_records_total", "input=routers", float64(records)},
		{"flowdex_input_dropped_datagrams_total", "input=routers,reason=kernel", 0},
		{"flowdex_input_dropped_datagrams_total", "input=routers,reason=queue_full", 0},
		{"flowdex_input_dropped_datagrams_total", "input=routers,reason=shutdown", 0},
		{"flowdex_pipeline_records_total", "pipeline=five", float64(records)},
		{"flowdex_output_documents_total", "output=es,result=indexed", float64(docs)},
		{"flowdex_output_documents_total", "output=es,result=written", float64(docs)},
		{"flowdex_output_documents_total", "output=es,result=failed", 0},
		{"flowdex_output_queue_documents", "output=es", 0},
		{"flowdex_output_bulk_duration_seconds", "output=es", m["flowdex_output_bulk_requests_total"]["output=es"]},
		{"flowdex_output_healthy", "output=es", 1},
		{"flowdex_output_nodes", "output=es,state=answering", 1},
		{"flowdex_output_nodes", "output=es,state=aside", 0},
		{"flowdex_output_node_discoveries_total", "output=es,result=ok", 0}, // discover_nodes is off
	}
	for _, c := range checks {
		got, ok := m[c.metric][c.labels]
		if !ok || got != c.want {
			t.Errorf("%s{%s} = %v (present %v), want %v", c.metric, c.labels, got, ok, c.want)
		}
	}
	if m["flowdex_input_netflow_templates_total"]["event=added,input=routers"] == 0 {
		t.Errorf("no template counted: %v", m["flowdex_input_netflow_templates_total"])
	}
	if m["flowdex_output_bulk_requests_total"]["output=es"] == 0 || docs == 0 {
		t.Errorf("%d documents, %v bulk requests", docs, m["flowdex_output_bulk_requests_total"])
	}
	if !strings.Contains(stderr.String(), "malformed datagram") || !strings.Contains(stderr.String(), "exporter=127.0.0.1") {
		t.Errorf("the malformed datagram is not logged with its exporter:\n%s", stderr)
	}
	// the web view on the same server reads the same documents (their time is
	// their arrival: the aggregate has no timestamps)
	res, err := http.Get(base + "/api/traffic?from=now-1h")
	if err != nil {
		t.Fatal(err)
	}
	var traffic struct {
		Documents int
		Total     struct{ Packets int64 }
	}
	err = json.NewDecoder(res.Body).Decode(&traffic)
	res.Body.Close()
	var packets int64
	for _, d := range estest.Docs(t, url, index+"-*") {
		packets += int64(d.Source["packets"].(float64))
	}
	if err != nil || res.StatusCode != 200 || traffic.Documents != docs || traffic.Total.Packets != packets || packets == 0 {
		t.Errorf("web view /api/traffic: HTTP %d %+v (%v), want %d documents, %d packets", res.StatusCode, traffic, err, docs, packets)
	}
	if code, body := httpGet(t, base+"/"); code != 200 || !strings.Contains(body, "vendor/chart.umd.min.js") {
		t.Errorf("web view page: HTTP %d\n%.300s", code, body)
	}
	t.Logf("%d datagrams, %d records, %d documents", len(ds), records, docs)
	terminate(t, cmd, stderr)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// /readyz is 503 once an input has failed, though the process runs on for the
// others: here a pmacct file input whose file is missing, beside a flow input
// that receives.
func TestReadyzInputFailed(t *testing.T) {
	dir := t.TempDir()
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q

[[input]]
name = "good"
type = "netflow"
listen = ["127.0.0.1:%d"]
pipelines = ["hosts"]

[[input]]
name = "missing"
type = "pmacct"
file = "missing.json"
pipeline = "pmacct"

[[pipeline]]
name = "hosts"
aggregate = ["src_host"]
outputs = ["file"]

[[pipeline]]
name = "pmacct"
outputs = ["file"]

[output.file]
type = "print"
file = "out.json"
`, strings.TrimPrefix(base, "http://"), freeUDPPort(t)))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "the missing input to fail", 20*time.Second, func() bool {
		return strings.Contains(stderr.String(), `msg="input stopped" input=missing`)
	})
	code, body := getURL(t, base+"/readyz")
	var r struct {
		Ready  bool
		Inputs bool `json:"inputs_running"`
	}
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &r) != nil || r.Ready || r.Inputs {
		t.Errorf("/readyz after an input failed: HTTP %d %s", code, body)
	}
	if code, _ := getURL(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: HTTP %d, want 200 (the process lives)", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Errorf("exit 0 after an input failed, want an error status\n%s", stderr)
	}
}

// SIGHUP never ends the daemon: not while it starts (before the enrichment
// watcher is up), not while it runs, not while it flushes after SIGTERM.
func TestSIGHUPNeverEnds(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "flowdex-test-sighup")
	dir := t.TempDir()
	// Elasticsearch makes the windows of interest longer: version and
	// template at start, the last bulk request at stop
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
listen = ["127.0.0.1:%d"]

[[pipeline]]
aggregate = ["src_host"]
outputs = ["es"]
`, freeUDPPort(t))+esOutputTOML(url, index))
	cmd, stderr := startFlowdex(t, conf)
	// the first log line comes after the handler is installed
	testwatch.WaitFor(t, "flowdex to log", 20*time.Second, func() bool { return stderr.String() != "" })
	stop := make(chan struct{})
	spammed := make(chan int)
	var sent atomic.Int64
	go func() {
		defer func() { spammed <- int(sent.Load()) }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if cmd.Process.Signal(syscall.SIGHUP) != nil {
					return // exited
				}
				sent.Add(1)
			}
		}
	}()
	testwatch.WaitFor(t, "flowdex to start", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "flowdex started") })
	// ten SIGHUPs while it runs, counted rather than slept for: on a loaded
	// machine the sender got one out in 100 ms
	atStart := sent.Load()
	testwatch.WaitFor(t, "ten SIGHUPs while it runs", 20*time.Second, func() bool { return sent.Load() >= atStart+10 })
	terminate(t, cmd, stderr)
	close(stop)
	if n := <-spammed; n < 10 {
		t.Errorf("only %d SIGHUPs sent", n)
	}
}
