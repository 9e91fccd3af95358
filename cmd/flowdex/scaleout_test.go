package main

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/kafkatest"
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// daemon is one flowdex process of the scale-out test, started again on the
// same configuration after a stop or a kill; logs keeps the earlier runs'.
type daemon struct {
	name, conf, base string
	cmd              *exec.Cmd
	log              *testwatch.Log
	logs             []string
}

func (d *daemon) start(t *testing.T, ready string) {
	t.Helper()
	if d.log != nil {
		d.logs = append(d.logs, d.log.String())
	}
	d.cmd, d.log = startFlowdex(t, d.conf)
	testwatch.WaitFor(t, d.name+" to start", 30*time.Second, func() bool { return strings.Contains(d.log.String(), ready) })
}

func (d *daemon) String() string {
	return fmt.Sprintf("=== %s\n%s%s", d.name, strings.Join(d.logs, "--- (restarted)\n"), d.log)
}

func (d *daemon) metric(t *testing.T, name, labels string) float64 {
	t.Helper()
	return testwatch.Metrics(t, d.base)[name][labels]
}

// kafkaCollectorTOML is a collector: a NetFlow input on port, a pipeline of
// 5-tuples and exporter refreshed every refresh, a kafka output to topic
// with the keys of output besides, its metrics at base.
func kafkaCollectorTOML(base string, port int, brokers []string, topic, refresh, output string) string {
	q := make([]string, len(brokers))
	for i, b := range brokers {
		q[i] = strconv.Quote(b)
	}
	return fmt.Sprintf(`
[http]
listen = %q
[[input]]
name = "netflow"
type = "netflow"
listen = ["127.0.0.1:%d"]
[[pipeline]]
aggregate = ["peer_src_ip", "src_host", "dst_host", "src_port", "dst_port", "proto"]
refresh = %q
timestamps_utc = true
outputs = ["kafka"]
[output.kafka]
type = "kafka"
brokers = [%s]
topic = %q
`, strings.TrimPrefix(base, "http://"), port, refresh, strings.Join(q, ", "), topic) + output
}

// exporter is a NetFlow v5 exporter at its own loopback address, sending
// to one collector until halted.
type exporter struct {
	*v5Sender
	stop, done chan struct{}
}

func newExporter(t *testing.T, from string, port int) *exporter {
	t.Helper()
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e := &exporter{v5Sender: &v5Sender{conn: conn, start: time.Now().Add(-time.Minute)}}
	t.Cleanup(e.halt) // before the socket closes
	return e
}

// run sends rate datagrams a second until halt.
func (e *exporter) run(t *testing.T, rate int) {
	e.stop, e.done = make(chan struct{}), make(chan struct{})
	go func() { e.send(t, rate, e.stop); close(e.done) }()
}

func (e *exporter) halt() {
	if e.stop != nil {
		close(e.stop)
		<-e.done
		e.stop = nil
	}
}

func (e *exporter) datagrams() int {
	records, _, _ := e.totals()
	return records / 10
}

// kafkaReport matches the final line of a collector's kafka output.
var kafkaReport = regexp.MustCompile(`output stopped.* output=kafka written=(\d+) indexed=(\d+) duplicates=(\d+) failed=(\d+)`)

// The whole shape on one machine, as README "Scaling out" draws it: two
// collectors, each the target of its own exporter, publish to a topic of
// four partitions (replication factor 3, min.insync.replicas 2) on three
// brokers; two indexers of one group read it into a three-node
// Elasticsearch cluster (one replica). Meanwhile an indexer is killed (-9)
// and started again, an Elasticsearch node is killed and started again, a
// broker is stopped and started again, a collector is stopped (SIGTERM) and
// started again. At the end Elasticsearch holds the packets and bytes the
// exporters sent, no id twice, the group's lag is zero, each collector
// produced what it wrote and each indexer indexed (or found already there)
// every record it read.
func TestScaleOut(t *testing.T) {
	began := time.Now()
	at := func() string { return time.Since(began).Round(100 * time.Millisecond).String() }
	kafkatest.SkipIfNoKafka(t)
	esReady := beginOwnCluster(t) // in the background: the longest to start
	kc := kafkatest.NewCluster(t)
	topic := kc.Topic("flows", 4)
	group := "indexers-" + topic
	dir := t.TempDir()
	t.Logf("%s: three brokers up, topic %s", at(), topic)
	quote := func(l []string) string {
		q := make([]string, len(l))
		for i, s := range l {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}

	// collectors: 2 s refreshes of 40 keys an exporter keep the documents
	// under estest's 10000 a search; the key spreads the records over the
	// four partitions (the exporter alone would fill two at most)
	var collectors []*daemon
	var exporters []*exporter
	for i, from := range []string{"127.0.0.2", "127.0.0.3"} {
		port := freeUDPPort(t)
		c := &daemon{name: fmt.Sprintf("collector %d", i), base: fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))}
		c.conf = writeFile(t, dir, fmt.Sprintf("collector%d.toml", i), kafkaCollectorTOML(c.base, port, kc.Brokers, topic, "2s", `
partition_key = "$peer_src_ip-$src_host"
stop_grace = "20s"
`))
		c.start(t, "listening")
		collectors = append(collectors, c)
		e := newExporter(t, from, port)
		e.run(t, 50)
		exporters = append(exporters, e)
	}
	received := make([]int, len(collectors)) // datagrams of the collectors' earlier runs
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range collectors {
				t.Log(c)
			}
		}
	})

	cluster, urls, pids := esReady()
	t.Logf("%s: three Elasticsearch nodes up", at())
	index := estest.Index(t, "flowdex-test-scaleout")
	// indexers: a batch's documents are sent when its offsets are to be
	// committed (the input's Sync); a long flush_interval, small bulk
	// requests one at a time leave the kill below documents in memory, which
	// must be those of uncommitted messages
	var indexers []*daemon
	for i := range 2 {
		d := &daemon{name: fmt.Sprintf("indexer %d", i), base: fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))}
		d.conf = writeFile(t, dir, fmt.Sprintf("indexer%d.toml", i), fmt.Sprintf(`
[http]
listen = %q
[[input]]
name = "kafka"
type = "kafka"
brokers = %s
topics = [%q]
group = %q
max_poll_records = 200
session_timeout = "6s"
timezone = "UTC"
dead_letter_file = %q
[output.es]
type = "elasticsearch"
urls = %s
index = "%s-%%Y.%%m.%%d"
replicas = 1
flush_interval = "5s"
flush_docs = 50
workers = 1
request_timeout = "2s"
max_retries = 10
dead_letter_file = %q
`, strings.TrimPrefix(d.base, "http://"), quote(kc.Brokers), topic, group, filepath.Join(dir, fmt.Sprintf("kafka-dead%d.json", i)),
			quote(urls), index, filepath.Join(dir, fmt.Sprintf("es-dead%d.json", i))))
		d.start(t, "flowdex started")
		indexers = append(indexers, d)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range indexers {
				t.Log(d)
			}
		}
	})
	owned := func(d *daemon) float64 {
		m := testwatch.Metrics(t, d.base)["flowdex_kafka_partitions_total"]
		return m["event=assigned,input=kafka"] - m["event=revoked,input=kafka"] - m["event=lost,input=kafka"]
	}
	delivered := func(d *daemon) float64 {
		m := testwatch.Metrics(t, d.base)["flowdex_output_documents_total"]
		return m["output=es,result=indexed"] + m["output=es,result=duplicate"]
	}
	indexed := func() float64 { return delivered(indexers[0]) + delivered(indexers[1]) }
	testwatch.WaitFor(t, "both indexers to own partitions and index", 60*time.Second, func() bool {
		return owned(indexers[0]) == 2 && owned(indexers[1]) == 2 && delivered(indexers[0]) >= 50 && delivered(indexers[1]) >= 50
	})
	t.Logf("%s: both indexers own two partitions and index", at())

	// an indexer killed mid-stream, once it has caught up (its batches are
	// then smaller than a bulk request: documents wait for the commit's
	// flush, not for flush_interval), with documents in memory if it can be
	// caught with some within 20 s, and started again
	testwatch.WaitFor(t, "indexer 1 to catch up", 60*time.Second, func() bool {
		lag := 0.0
		for _, l := range testwatch.Metrics(t, indexers[1].base)["flowdex_kafka_consumer_lag"] {
			lag += l
		}
		return lag < 100
	})
	queued := func(d *daemon) bool {
		return d.metric(t, "flowdex_output_queue_documents", "output=es") > 0
	}
	for deadline := time.Now().Add(20 * time.Second); !queued(indexers[1]) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // polling for a moment to kill in, not for a result
	}
	killedRead := indexers[1].metric(t, "flowdex_kafka_records_total", "input=kafka")
	killedIndexed := indexers[1].metric(t, "flowdex_output_documents_total", "output=es,result=indexed")
	killedQueued := indexers[1].metric(t, "flowdex_output_queue_documents", "output=es")
	if err := indexers[1].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = indexers[1].cmd.Wait()
	indexers[1].start(t, "flowdex started")
	testwatch.WaitFor(t, "the restarted indexer to own partitions and index", 60*time.Second, func() bool {
		return owned(indexers[0])+owned(indexers[1]) == 4 && owned(indexers[1]) > 0 && delivered(indexers[1]) >= 50
	})
	t.Logf("%s: indexer 1 killed (it had read %v records, indexed %v, held %v documents at its last scrape) and back with %v partitions",
		at(), killedRead, killedIndexed, killedQueued, owned(indexers[1]))

	// an Elasticsearch node killed, the master, then started again in the
	// background while the brokers and collectors have their turn
	victim := masterNode(t, urls[0])
	alive := urls[(victim+1)%3]
	before := indexed()
	syscall.Kill(pids[victim], syscall.SIGKILL)
	testwatch.WaitFor(t, "indexing to go on through the other nodes", 60*time.Second, func() bool { return indexed() >= before+100 })
	t.Logf("%s: Elasticsearch node %d (the master) killed; indexing goes on", at(), victim)
	testwatch.WaitFor(t, "the killed node's process to be gone", 30*time.Second, func() bool { return syscall.Kill(pids[victim], 0) != nil })
	var esRestart error
	var esWG sync.WaitGroup
	esWG.Add(1)
	go func() {
		defer esWG.Done()
		_, esRestart = esScript(t, cluster, false, "start", "8", strconv.Itoa(victim))
	}()
	t.Cleanup(esWG.Wait)

	// a broker of three stopped, then started again: acks=all still succeeds
	// with two in-sync replicas
	produced := func(c *daemon) float64 {
		return c.metric(t, "flowdex_output_documents_total", "output=kafka,result=produced")
	}
	kc.StopBroker(1)
	p0, p1, i0 := produced(collectors[0]), produced(collectors[1]), indexed()
	testwatch.WaitFor(t, "producing and indexing with a broker down", 60*time.Second, func() bool {
		return produced(collectors[0]) >= p0+80 && produced(collectors[1]) >= p1+80 && indexed() >= i0+160
	})
	kc.StartBroker(1)
	t.Logf("%s: broker 1 stopped, records produced and indexed without it, started again", at())

	// a collector stopped (SIGTERM) and started again
	c := collectors[0]
	exporters[0].halt()
	waitReceived(t, c.base, exporters[0].datagrams()-received[0])
	received[0] = exporters[0].datagrams()
	terminate(t, c.cmd, c.log)
	c.start(t, "listening")
	exporters[0].run(t, 50)
	t.Logf("%s: collector 0 stopped and started again", at())
	testwatch.WaitFor(t, "the restarted collector to produce", 30*time.Second, func() bool { return produced(c) >= 80 })

	esWG.Wait()
	if esRestart != nil {
		t.Fatalf("restarting Elasticsearch node %d: %v", victim, esRestart)
	}
	t.Logf("%s: Elasticsearch node %d back", at(), victim)

	// the end: every exporter stops, every collector writes out and stops
	var records int
	for i, c := range collectors {
		exporters[i].halt()
		waitReceived(t, c.base, exporters[i].datagrams()-received[i])
		terminate(t, c.cmd, c.log)
		for _, run := range append(c.logs, c.log.String()) {
			m := kafkaReport.FindStringSubmatch(run)
			if m == nil {
				t.Fatalf("%s: no final report of its kafka output", c.name)
			}
			if m[1] != m[2] || m[3] != "0" || m[4] != "0" {
				t.Errorf("%s: its kafka output wrote %s records, the brokers acknowledged %s, %s failed", c.name, m[1], m[2], m[4])
			}
			n, _ := strconv.Atoi(m[2])
			records += n
		}
	}
	adm := kafkatest.Admin(t, kc.Brokers)
	testwatch.WaitFor(t, "the group's lag to reach zero", 60*time.Second, func() bool { return groupCommitted(t, adm, group, topic) })
	for deadline := time.Now().Add(60 * time.Second); estest.Count(t, alive, index+"-*") < records && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // polling the count as WaitFor does, not failing: the sums below say what is missing
	}
	t.Logf("%s: lag zero, %d records produced", at(), records)

	var sentPackets, sentBytes int64
	for _, e := range exporters {
		_, p, b := e.totals()
		sentPackets += p
		sentBytes += b
	}
	docs, packets, bytes := esTotals(t, alive, index+"-*")
	if docs != records || packets != sentPackets || bytes != sentBytes {
		t.Errorf("Elasticsearch holds %d documents, %d packets, %d bytes; the collectors produced %d records, the exporters sent %d packets, %d bytes",
			docs, packets, bytes, records, sentPackets, sentBytes)
		perExporter := map[string][2]int64{}
		for _, d := range estest.Docs(t, alive, index+"-*") {
			peer, _ := d.Source["peer_ip_src"].(string)
			p, _ := d.Source["packets"].(float64)
			b, _ := d.Source["bytes"].(float64)
			perExporter[peer] = [2]int64{perExporter[peer][0] + int64(p), perExporter[peer][1] + int64(b)}
		}
		for i, e := range exporters {
			_, p, b := e.totals()
			got := perExporter[e.conn.LocalAddr().(*net.UDPAddr).IP.String()]
			t.Errorf("exporter %d (through collector %d): %d packets, %d bytes in Elasticsearch; sent %d packets, %d bytes", i, i, got[0], got[1], p, b)
		}
	}

	// every indexer: what it read is what its output wrote, each indexed or
	// already there
	var finalIndexed float64
	for _, d := range indexers {
		m := testwatch.Metrics(t, d.base)
		read := m["flowdex_kafka_records_total"]["input=kafka"]
		for labels, lag := range m["flowdex_kafka_consumer_lag"] {
			if lag != 0 {
				t.Errorf("%s: lag %s = %v", d.name, labels, lag)
			}
		}
		terminate(t, d.cmd, d.log)
		st := stoppedCounts(t, d.log.String())
		if st["written"] != read || st["written"] != st["indexed"]+st["duplicates"] || st["failed"] != 0 || st["dead_lettered"] != 0 || st["spooled"] != 0 {
			t.Errorf("%s: read %v records; its output wrote %v, indexed %v, found %v already there, failed %v, dead-lettered %v, spooled %v",
				d.name, read, st["written"], st["indexed"], st["duplicates"], st["failed"], st["dead_lettered"], st["spooled"])
		}
		finalIndexed += st["indexed"]
	}
	// the killed run made the other documents: at least as many as its last
	// scrape said it had indexed
	if float64(docs)-finalIndexed < killedIndexed {
		t.Errorf("the indexers' last runs indexed %v of %d documents, and the killed run had indexed %v", finalIndexed, docs, killedIndexed)
	}
	t.Logf("%s: %d documents; the indexers' last runs indexed %v, the killed run the other %v (it had read %v records at its last scrape)",
		at(), docs, finalIndexed, float64(docs)-finalIndexed, killedRead)
}
