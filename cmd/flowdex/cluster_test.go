package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// startOwnCluster starts a three-node Elasticsearch 8 cluster of the test's
// own (es.sh FLOWDEX_ES_NODES=3, an instance named after the test process,
// ports free when the test began), removed at the end, and returns its
// environment, the nodes' URLs and pids.
func startOwnCluster(t *testing.T) (cluster []string, urls []string, pids []int) {
	t.Helper()
	return beginOwnCluster(t)()
}

// beginOwnCluster starts the cluster of startOwnCluster in the background
// (about 35 s), so that the test can start other servers meanwhile, and
// returns what waits for it, to be called on the test's goroutine.
func beginOwnCluster(t *testing.T) func() (cluster []string, urls []string, pids []int) {
	t.Helper()
	skipIfNoES(t)
	var httpPorts, transportPorts []string
	for i, port := range freeTCPPorts(t, 6) {
		if i%2 == 0 {
			httpPorts = append(httpPorts, strconv.Itoa(port))
		} else {
			transportPorts = append(transportPorts, strconv.Itoa(port))
		}
	}
	cluster := []string{
		fmt.Sprintf("FLOWDEX_ES_INSTANCE=cluster-%d", os.Getpid()),
		"FLOWDEX_ES_NODES=3",
		"FLOWDEX_ES_HEAP=256m",
		"FLOWDEX_ES_PORT=" + strings.Join(httpPorts, ","),
		"FLOWDEX_ES_TRANSPORT_PORT=" + strings.Join(transportPorts, ","),
	}
	if os.Getenv("FLOWDEX_ES_WAIT") == "" {
		// three JVMs starting at once, maybe beside a Kafka cluster, on a
		// shared machine: es.sh's 120 s are not always enough
		cluster = append(cluster, "FLOWDEX_ES_WAIT=300")
	}
	start := time.Now()
	var out string
	var err error
	done := make(chan struct{})
	go func() { out, err = esScript(t, cluster, false, "start", "8"); close(done) }()
	// also after a failed start, once the start is over
	t.Cleanup(func() { <-done; esScript(t, cluster, false, "remove", "8") })
	return func() ([]string, []string, []int) {
		t.Helper()
		<-done
		if err != nil {
			ownESFailed(t, err)
		}
		t.Logf("three-node cluster up in %v", time.Since(start).Round(100*time.Millisecond))
		urls := strings.Fields(out)
		pidsOut, err := esScript(t, cluster, false, "pid", "8")
		if err != nil {
			t.Fatal(err)
		}
		var pids []int
		for _, f := range strings.Fields(pidsOut) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("es.sh pid: %q", pidsOut)
			}
			pids = append(pids, pid)
		}
		if len(urls) != 3 || len(pids) != 3 {
			t.Fatalf("es.sh: %d URLs, %d pids for 3 nodes", len(urls), len(pids))
		}
		return cluster, urls, pids
	}
}

// masterNode is the index (0, 1, 2) of the cluster's elected master, as
// the node of url sees it: es.sh names node i "…-n<i>".
func masterNode(t *testing.T, url string) int {
	t.Helper()
	var m []struct {
		Node string `json:"node"`
	}
	estest.Call(t, http.MethodGet, url+"/_cat/master?format=json", nil, &m)
	if len(m) != 1 {
		t.Fatalf("_cat/master: %v", m)
	}
	i := strings.LastIndex(m[0].Node, "-n")
	n, err := strconv.Atoi(m[0].Node[i+2:])
	if i < 0 || err != nil {
		t.Fatalf("master %q is not an es.sh node", m[0].Node)
	}
	return n
}

// coordinated is how many bytes of bulk requests the node of url took from
// clients since it started (indexing pressure's coordinating bytes).
func coordinated(t *testing.T, url string) float64 {
	t.Helper()
	var st struct {
		Nodes map[string]struct {
			IndexingPressure struct {
				Memory struct {
					Total struct {
						CoordinatingBytes float64 `json:"coordinating_in_bytes"`
					} `json:"total"`
				} `json:"memory"`
			} `json:"indexing_pressure"`
		} `json:"nodes"`
	}
	estest.Call(t, http.MethodGet, url+"/_nodes/_local/stats/indexing_pressure", nil, &st)
	for _, n := range st.Nodes {
		return n.IndexingPressure.Memory.Total.CoordinatingBytes
	}
	t.Fatalf("no local node in the stats of %s", url)
	return 0
}

// indexWatch samples a flowdex's indexed-documents counter and remembers when
// it last grew.
type indexWatch struct {
	mu      sync.Mutex
	value   float64
	grew    time.Time
	longest time.Duration // longest time without growth since mark
	since   time.Time
}

func (w *indexWatch) run(t *testing.T, base string, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		v := testwatch.Metrics(t, base)["flowdex_output_documents_total"]["output=es,result=indexed"]
		now := time.Now()
		w.mu.Lock()
		if v > w.value {
			if !w.since.IsZero() {
				from := w.grew
				if w.since.After(from) {
					from = w.since
				}
				w.longest = max(w.longest, now.Sub(from))
			}
			w.value, w.grew = v, now
		}
		w.mu.Unlock()
	}
}

// mark starts measuring the longest stall.
func (w *indexWatch) mark() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.since, w.longest = time.Now(), 0
}

func (w *indexWatch) indexed() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.value
}

func (w *indexWatch) stall() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.longest
}

// clusterFlowdex is one flowdex of TestClusterNodeDeathLosesNothing: a
// NetFlow collector on its own port, fed by its own sender, writing to its
// own index on the cluster.
type clusterFlowdex struct {
	name   string
	index  string
	base   string
	cmd    *exec.Cmd
	stderr *testwatch.Log
	sender *v5Sender
	watch  indexWatch

	stopOnce, watchOnce   sync.Once
	stop, done, watchStop chan struct{}
	watchDone             chan struct{}
}

// startClusterFlowdex starts a flowdex sending to urls with one replica,
// with extra appended to its elasticsearch output, and waits until it
// listens.
func startClusterFlowdex(t *testing.T, name string, urls []string, extra string) *clusterFlowdex {
	t.Helper()
	f := &clusterFlowdex{name: name, index: estest.Index(t, "flowdex-test-cluster-"+name),
		base: fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))}
	dir := t.TempDir()
	port := freeUDPPort(t)
	conf := flowdexConfig(port, urls[0], f.index, "", f.base)
	quoted := make([]string, len(urls))
	for i, u := range urls {
		quoted[i] = strconv.Quote(u)
	}
	conf = strings.Replace(conf, fmt.Sprintf("urls = [%q]", urls[0]), "urls = ["+strings.Join(quoted, ", ")+"]", 1)
	conf = strings.Replace(conf, "replicas = 0", "replicas = 1", 1)
	// a killed node refuses connections: the kill does not wait for this
	// timeout; 30 s, as the template's PUT once took more than 2 s on a
	// cluster that had just formed (start_timeout now retries it, too)
	conf = strings.Replace(conf, `request_timeout = "2s"`, `request_timeout = "30s"`, 1)
	conf = strings.Replace(conf, "max_retries = 2", "max_retries = 10\ndead_letter_file = "+strconv.Quote(dir+"/dead.json"), 1)
	conf += extra
	f.cmd, f.stderr = startFlowdex(t, writeFile(t, dir, "flowdex.toml", conf))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("flowdex %s:\n%s", name, f.stderr)
		}
	})
	// the template goes through a cluster that has just formed: slow on a loaded machine
	testwatch.WaitFor(t, "flowdex "+name+" to listen", time.Minute, func() bool { return strings.Contains(f.stderr.String(), "listening") })
	f.sender = newV5Sender(t, port)
	return f
}

// run starts sending and watching the indexed-documents counter.
func (f *clusterFlowdex) run(t *testing.T) {
	f.stop, f.done, f.watchStop, f.watchDone = make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { f.sender.send(t, 200, f.stop); close(f.done) }()
	t.Cleanup(f.stopSending) // before the sender's socket closes, also after a failure
	go func() { f.watch.run(t, f.base, f.watchStop); close(f.watchDone) }()
	t.Cleanup(f.stopWatching)
}

func (f *clusterFlowdex) stopSending()  { f.stopOnce.Do(func() { close(f.stop); <-f.done }) }
func (f *clusterFlowdex) stopWatching() { f.watchOnce.Do(func() { close(f.watchStop); <-f.watchDone }) }

// metric is the value of a metric of its elasticsearch output.
func (f *clusterFlowdex) metric(t *testing.T, name, labels string) float64 {
	return testwatch.Metrics(t, f.base)[name]["output=es"+labels]
}

// check stops f and checks that Elasticsearch holds exactly what was sent,
// no id twice, and that nothing failed or was dead-lettered.
func (f *clusterFlowdex) check(t *testing.T, alive string) {
	t.Helper()
	records, packets, bytes := f.sender.totals()
	waitReceived(t, f.base, records/10)
	f.stopWatching()
	terminate(t, f.cmd, f.stderr) // the pipeline's last flush too
	out := f.stderr.String()
	m := stoppedCounts(t, out)
	written, indexed, dups := m["written"], m["indexed"], m["duplicates"]
	if m["failed"] != 0 || m["dead_lettered"] != 0 || m["spooled"] != 0 {
		t.Errorf("flowdex %s: %v documents failed, %v dead-lettered, %v spooled\n%s", f.name, m["failed"], m["dead_lettered"], m["spooled"], out)
	}
	if written != indexed+dups {
		t.Errorf("flowdex %s: written %v != indexed %v + duplicates %v", f.name, written, indexed, dups)
	}
	docs, gotPackets, gotBytes := esTotals(t, alive, f.index+"-*")
	t.Logf("flowdex %s: sent %d records (%d packets, %d bytes); Elasticsearch: %d documents; flowdex: %v written, %v indexed, %v duplicates",
		f.name, records, packets, bytes, docs, written, indexed, dups)
	if gotPackets != packets || gotBytes != bytes {
		t.Errorf("flowdex %s: Elasticsearch holds %d packets, %d bytes in %d documents; sent %d packets, %d bytes in %d records\n%s",
			f.name, gotPackets, gotBytes, docs, packets, bytes, records, out)
	}
	// a fresh index holds only this run's documents: every one counted
	// already there was indexed by an attempt whose answer the kill cut off
	if float64(docs) != indexed+dups {
		t.Errorf("flowdex %s: Elasticsearch holds %d documents; flowdex counted %v indexed and %v already there", f.name, docs, indexed, dups)
	}
}

// A three-node cluster with one replica under steady NetFlow: the elected
// master is killed (-9) mid-stream, and flowdex, given the three URLs and no
// spool, goes on through the other two; the node, started again, gets bulk
// requests again. Elasticsearch holds exactly what was sent, no id twice,
// and nothing failed or went to the dead-letter file.
//
// A second flowdex is given only the URL of the node killed, with
// discover_nodes: it finds the other two at start, goes on through them
// when its only configured node dies (its indexing goes on: its requests
// can only go to the nodes it discovered), sets the node aside and takes it
// back once restarted, with the same outcome.
func TestClusterNodeDeathLosesNothing(t *testing.T) {
	cluster, urls, pids := startOwnCluster(t)
	victim := masterNode(t, urls[0])
	alive := urls[(victim+1)%3]
	all := startClusterFlowdex(t, "all", urls, "")
	disc := startClusterFlowdex(t, "disc", urls[victim:victim+1], "discover_nodes = true\n")
	testwatch.WaitFor(t, "flowdex disc to discover the nodes", 30*time.Second, func() bool {
		return disc.metric(t, "flowdex_output_node_discoveries_total", ",result=ok") >= 1 &&
			disc.metric(t, "flowdex_output_nodes", ",state=answering") == 3
	})
	all.run(t)
	disc.run(t)
	testwatch.WaitFor(t, "documents indexed", 30*time.Second, func() bool {
		return all.watch.indexed() >= 200 && disc.watch.indexed() >= 200
	})

	// replicas=1 keeps every shard through a node's death once the replica
	// is started: a kill during its recovery left the shard without a copy
	// until the node came back, and a flowdex's writes waited on it
	green := time.Now()
	testwatch.WaitFor(t, "the replicas to be started", 2*time.Minute, func() bool {
		var health struct {
			Status string `json:"status"`
		}
		estest.Call(t, http.MethodGet, alive+"/_cluster/health/"+all.index+"-*,"+disc.index+"-*", nil, &health)
		return health.Status == "green"
	})
	t.Logf("indices green %v after %v documents were indexed", time.Since(green).Round(10*time.Millisecond), all.watch.indexed())
	all.watch.mark()
	before, beforeDisc := all.watch.indexed(), disc.watch.indexed()
	killed := time.Now()
	syscall.Kill(pids[victim], syscall.SIGKILL)
	t.Logf("killed node %d, the elected master (pid %d), with %v and %v documents indexed", victim, pids[victim], before, beforeDisc)
	// the cluster elects a master and promotes the replicas of the node's
	// primaries first: seconds on a quiet machine; once, with the machine
	// loaded (load average 16 on 2 cores), over 30 s, when writes waited on
	// the nodes left and timed out (request_timeout) in both flowdexes
	testwatch.WaitFor(t, "indexing to go on through the other nodes", 2*time.Minute, func() bool {
		return all.watch.indexed() >= before+100 && disc.watch.indexed() >= beforeDisc+100
	})
	t.Logf("100 more documents indexed by each flowdex %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	if aside := disc.metric(t, "flowdex_output_nodes", ",state=aside"); aside != 1 {
		t.Errorf("flowdex disc has %v nodes set aside after the kill, want 1 (the node killed)", aside)
	}

	started := time.Now()
	if _, err := esScript(t, cluster, false, "start", "8", strconv.Itoa(victim)); err != nil {
		t.Fatalf("restarting node %d: %v", victim, err)
	}
	t.Logf("node %d back in the cluster after %v", victim, time.Since(started).Round(100*time.Millisecond))
	testwatch.WaitFor(t, "flowdex to send to the restarted node again", 20*time.Second, func() bool { return coordinated(t, urls[victim]) > 0 })
	t.Logf("node %d gets bulk requests again %v after its restart", victim, time.Since(started).Round(100*time.Millisecond))
	testwatch.WaitFor(t, "flowdex disc to take the restarted node back", 20*time.Second, func() bool {
		return disc.metric(t, "flowdex_output_nodes", ",state=answering") == 3
	})

	all.stopSending()
	disc.stopSending()
	t.Logf("longest time without a document indexed after the kill: %v", all.watch.stall().Round(10*time.Millisecond))
	all.check(t, alive)
	disc.check(t, alive)
	var health struct {
		Status string `json:"status"`
	}
	estest.Call(t, http.MethodGet, alive+"/_cluster/health/"+all.index+"-*,"+disc.index+"-*", nil, &health)
	t.Logf("indices: %s", health.Status)
}

// stoppedCounts reads the counters of the Elasticsearch output's last log
// line ("elasticsearch: stopped written=… indexed=…").
func stoppedCounts(t *testing.T, out string) map[string]float64 {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "elasticsearch: stopped") {
			continue
		}
		t.Log(l)
		m := map[string]float64{}
		for _, f := range strings.Fields(l) {
			k, v, ok := strings.Cut(f, "=")
			if n, err := strconv.ParseFloat(v, 64); ok && err == nil {
				m[k] = n
			}
		}
		return m
	}
	t.Fatalf("no 'elasticsearch: stopped' line:\n%s", out)
	return nil
}
