package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/bench/gen"
)

// kafkaResult is the scale-out shape on one machine (README "Scaling out"):
// a collector publishing to Kafka and an indexer reading the topic into
// Elasticsearch, beside the direct path (one flowdex from the export into
// Elasticsearch), and each Kafka hop beside Kafka's own perf tools on the
// same broker and the same messages.
type kafkaResult struct {
	brokers, esURL string
	totals         gen.Totals
	direct, via    []pathRun
	collector      []usage   // the collector alone into Kafka: wall from start to exit
	producer       []float64 // kafka-producer-perf-test, records/s
	consumer       []float64 // kafka-consumer-perf-test, fetch messages/s
	input          []inputRun
	err            error
}

// pathRun is one export indexed into Elasticsearch: documents per wall
// second and the CPU each process spent on it.
type pathRun struct {
	wall                time.Duration // first process started -> last document indexed
	flowdex, broker, es time.Duration // CPU
	collectorWall       time.Duration // the collector's start -> its exit (every record acknowledged)
}

// inputRun is the kafka input reading a full topic into the print output:
// messages per second from its partitions' assignment to its last record,
// as kafka-consumer-perf-test's fetch rate leaves out its group join.
type inputRun struct {
	rate float64
	cpu  time.Duration
}

// kafkaPartitions is the topics' partition count: the collector's default
// key (the exporter's address) puts one exporter's records in one of them.
const kafkaPartitions = 4

// measureKafka runs rounds of: the direct path, the path through Kafka, the
// consumer perf test and the kafka input on the topic that path filled, the
// producer perf test with its messages, and the collector alone; after one
// round that is not counted (Elasticsearch and the broker's JIT warm up).
func measureKafka(bin, dir, esURL, brokers string, runs, records int) kafkaResult {
	res := kafkaResult{brokers: brokers, esURL: esURL}
	os.MkdirAll(dir, 0o755)
	export, totals, err := write(dir, fmt.Sprintf("netflow9-distinct-%d.pcap", records), func(f *os.File) (gen.Totals, error) {
		return gen.WriteNetFlow(f, gen.NetFlow{Version: 9, Records: records, PerDatagram: 25, TemplateEvery: 20, Seed: 7, Distinct: true})
	})
	if err != nil {
		res.err = err
		return res
	}
	res.totals = totals
	esPID, brokerPID := serverPID(esURL), kafkaPID()
	admin, err := newAdmin(brokers)
	if err != nil {
		res.err = err
		return res
	}
	defer admin.Close()
	esDo(esURL, http.MethodDelete, "/_index_template/flowdex-bench*", nil)
	tag := strconv.Itoa(os.Getpid())
	for round := -1; round < runs; round++ {
		what := fmt.Sprintf("run %d", round+1)
		if round < 0 {
			what = "warm-up (not counted)"
		}
		name := func(s string) string { return fmt.Sprintf("flowdex-bench-%s-%s-%d", s, tag, round+1) }
		fail := func(step string, err error) kafkaResult {
			res.err = fmt.Errorf("%s, %s: %w", what, step, err)
			return res
		}
		if err := admin.create(name("e2e"), name("alone"), name("producer")); err != nil {
			return fail("creating topics", err)
		}
		// the two paths take turns at going first: Elasticsearch merges what
		// the first indexed while the second runs
		var d, v pathRun
		paths := []func() error{
			func() (err error) {
				if d, err = directPath(bin, dir, export, esURL, name("direct"), esPID, totals); err != nil {
					err = fmt.Errorf("direct path: %w", err)
				}
				return err
			},
			func() (err error) {
				if v, err = kafkaPath(bin, dir, export, esURL, brokers, name("e2e"), esPID, brokerPID, totals); err != nil {
					err = fmt.Errorf("through Kafka: %w", err)
				}
				return err
			},
		}
		if round%2 != 0 {
			paths[0], paths[1] = paths[1], paths[0]
		}
		for _, path := range paths {
			if err := path(); err != nil {
				return fail("indexing", err)
			}
		}
		c, err := consumerPerfTest(brokers, name("e2e"), totals.Records)
		if err != nil {
			return fail("kafka-consumer-perf-test", err)
		}
		printed := filepath.Join(dir, "input.json")
		in, err := inputToPrint(bin, dir, brokers, name("e2e"), printed, totals)
		if err != nil {
			return fail("kafka input to print", err)
		}
		payload := filepath.Join(dir, "payload.json")
		if err := headLines(printed, payload, 100_000); err != nil {
			return fail("payload file", err)
		}
		p, err := producerPerfTest(brokers, name("producer"), payload, totals.Records)
		if err != nil {
			return fail("kafka-producer-perf-test", err)
		}
		alone, err := run(collectorCmd(bin, dir, export, brokers, name("alone")))
		if err != nil {
			return fail("collector alone", err)
		}
		if err := admin.check(name("alone"), totals.Records); err != nil {
			return fail("collector alone", err)
		}
		admin.delete(name("e2e"), name("alone"), name("producer"))
		log.Printf("kafka %s: direct %.0f docs/s, through Kafka %.0f docs/s; consumer perf test %.0f msg/s, kafka input %.0f msg/s; producer perf test %.0f rec/s, collector alone %.0f rec/s",
			what, perSecond(totals.Records, d.wall), perSecond(totals.Records, v.wall), c, in.rate, p, perSecond(totals.Records, alone.Wall))
		if round < 0 {
			continue
		}
		res.direct, res.via = append(res.direct, d), append(res.via, v)
		res.consumer, res.input = append(res.consumer, c), append(res.input, in)
		res.producer, res.collector = append(res.producer, p), append(res.collector, alone)
	}
	return res
}

func perSecond(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

// esOutput is the output both paths index with: one node, a fresh index
// without replicas, the template the ingest scenario uses.
func esOutput(url, index string) string {
	return fmt.Sprintf("[output.es]\ntype = \"elasticsearch\"\nurls = [%q]\nindex = %q\nreplicas = 0\ntemplate_name = %q\n", url, index, benchTemplate)
}

const benchPipeline = `[[pipeline]]
aggregate = ["src_host", "dst_host", "src_port", "dst_port", "proto", "tos"]
timestamps_utc = true
`

// directPath is one flowdex from the export into Elasticsearch; it exits
// once every document is indexed.
func directPath(bin, dir, export, esURL, index string, esPID int, want gen.Totals) (pathRun, error) {
	esDo(esURL, http.MethodDelete, "/"+index, nil)
	defer esDo(esURL, http.MethodDelete, "/"+index, nil)
	conf := fmt.Sprintf("[log]\nlevel = \"warn\"\n[[input]]\ntype = \"netflow\"\nreplay = %q\n%soutputs = [\"es\"]\n%s", export, benchPipeline, esOutput(esURL, index))
	path := filepath.Join(dir, "direct.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return pathRun{}, err
	}
	esBefore := processCPU(esPID)
	u, err := runQuiet(exec.Command(bin, "run", "-c", path))
	if err != nil {
		return pathRun{}, err
	}
	r := pathRun{wall: u.Wall, flowdex: u.CPU, es: processCPU(esPID) - esBefore, collectorWall: u.Wall}
	return r, checkIndex(esURL, index, want)
}

func collectorCmd(bin, dir, export, brokers, topic string) *exec.Cmd {
	conf := fmt.Sprintf("[log]\nlevel = \"warn\"\n[[input]]\ntype = \"netflow\"\nreplay = %q\n%soutputs = [\"kafka\"]\n[output.kafka]\ntype = \"kafka\"\nbrokers = [%q]\ntopic = %q\npartition_key = \"$src_host\"\n",
		export, benchPipeline, brokers, topic)
	path := filepath.Join(dir, "collector.toml")
	os.WriteFile(path, []byte(conf), 0o644)
	cmd := exec.Command(bin, "run", "-c", path)
	cmd.Stderr = &tailBuffer{}
	return cmd
}

// daemon is a flowdex run with a kafka input, which runs until SIGTERM,
// and its /metrics.
type daemon struct {
	cmd     *exec.Cmd
	metrics string
	stderr  tailBuffer
}

func startDaemon(bin, dir, name, brokers, topic, outputs, output string) (*daemon, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf("[log]\nlevel = \"warn\"\n[http]\nlisten = %q\n[[input]]\ntype = \"kafka\"\nbrokers = [%q]\ntopics = [%q]\ngroup = %q\ntimezone = \"UTC\"\n[[pipeline]]\noutputs = [%q]\n%s",
		addr, brokers, topic, topic+"-"+name, outputs, output)
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	d := &daemon{cmd: exec.Command(bin, "run", "-c", path), metrics: "http://" + addr + "/metrics"}
	d.cmd.Stderr = &d.stderr
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	return d, nil
}

// nearEnd is the progress after which until polls every 10 ms.
const nearEnd = 0.97

// until polls the daemon's metrics until progress reaches 1 (a fraction of
// the work done), and returns when it saw it. A scrape costs the daemon
// about a millisecond of CPU, taken from the work measured: the polls come
// every 100 ms, and every 10 ms once progress reaches near, when the moment
// matters (polling every 20 ms throughout cost the indexer 0.7 µs a
// document, a quarter of its CPU).
func (d *daemon) until(what string, timeout time.Duration, near float64, progress func(m metrics) (float64, error)) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := scrape(d.metrics)
		wait := 100 * time.Millisecond
		if err == nil {
			p, err := progress(m)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s: %w\n%s", what, err, d.stderr.String())
			}
			if p >= 1 {
				return time.Now(), nil
			}
			if p >= near {
				wait = 10 * time.Millisecond
			}
		}
		if d.cmd.ProcessState != nil || time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s: not within %v (%v)\n%s", what, timeout, err, d.stderr.String())
		}
		time.Sleep(wait)
	}
}

func (d *daemon) assigned() (time.Time, error) {
	// the join starts the clocks: polled every 10 ms, before the work begins
	return d.until("partitions assigned", 2*time.Minute, 0, func(m metrics) (float64, error) {
		return m.sum("flowdex_kafka_partitions_total", `event="assigned"`) / kafkaPartitions, nil
	})
}

// stop ends the daemon with SIGTERM and returns its CPU time.
func (d *daemon) stop() (time.Duration, error) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%v\n%s", err, d.stderr.String())
	}
	var u usage
	add(&u, d.cmd.ProcessState.SysUsage().(*syscall.Rusage))
	return u.CPU, nil
}

// kafkaPath: the indexer joins its group first; the clock starts with the
// collector and stops when the indexer has indexed the last document.
func kafkaPath(bin, dir, export, esURL, brokers, topic string, esPID, brokerPID int, want gen.Totals) (pathRun, error) {
	index := topic
	esDo(esURL, http.MethodDelete, "/"+index, nil)
	defer esDo(esURL, http.MethodDelete, "/"+index, nil)
	ix, err := startDaemon(bin, dir, "indexer", brokers, topic, "es", esOutput(esURL, index))
	if err != nil {
		return pathRun{}, err
	}
	defer ix.cmd.Process.Kill()
	if _, err := ix.assigned(); err != nil {
		return pathRun{}, err
	}
	esBefore, brokerBefore := processCPU(esPID), processCPU(brokerPID)
	col := collectorCmd(bin, dir, export, brokers, topic)
	start := time.Now()
	if err := col.Start(); err != nil {
		return pathRun{}, err
	}
	collectorDone := make(chan error, 1)
	var collectorWall time.Duration
	go func() {
		err := col.Wait()
		collectorWall = time.Since(start)
		collectorDone <- err
	}()
	end, err := ix.until("every document indexed", 10*time.Minute, nearEnd, func(m metrics) (float64, error) {
		if bad := m.sum("flowdex_output_documents_total", `result="failed"`) + m.sum("flowdex_output_documents_total", `result="dead_lettered"`); bad > 0 {
			return 0, fmt.Errorf("%.0f documents failed", bad)
		}
		return m.sum("flowdex_output_documents_total", `result="indexed"`) / float64(want.Records), nil
	})
	r := pathRun{wall: end.Sub(start), es: processCPU(esPID) - esBefore, broker: processCPU(brokerPID) - brokerBefore}
	if err != nil {
		return r, err
	}
	if err := <-collectorDone; err != nil {
		return r, fmt.Errorf("collector: %v\n%s", err, col.Stderr)
	}
	r.collectorWall = collectorWall
	var cu usage
	add(&cu, col.ProcessState.SysUsage().(*syscall.Rusage))
	ic, err := ix.stop()
	if err != nil {
		return r, err
	}
	r.flowdex = cu.CPU + ic
	return r, checkIndex(esURL, index, want)
}

// inputToPrint reads the whole topic with the kafka input into the print
// output and checks its sums.
func inputToPrint(bin, dir, brokers, topic, out string, want gen.Totals) (inputRun, error) {
	os.Remove(out)
	d, err := startDaemon(bin, dir, "input", brokers, topic, "file", fmt.Sprintf("[output.file]\ntype = \"print\"\nfile = %q\n", out))
	if err != nil {
		return inputRun{}, err
	}
	defer d.cmd.Process.Kill()
	start, err := d.assigned()
	if err != nil {
		return inputRun{}, err
	}
	end, err := d.until("every record read", 5*time.Minute, nearEnd, func(m metrics) (float64, error) {
		return m.sum("flowdex_kafka_records_total", "") / float64(want.Records), nil
	})
	if err != nil {
		return inputRun{}, err
	}
	cpu, err := d.stop()
	if err != nil {
		return inputRun{}, err
	}
	got, err := sumFile(out)
	if err == nil && (got.Records != want.Records || got.Packets != want.Packets || got.Bytes != want.Bytes) {
		err = fmt.Errorf("the print output holds %d records, %d packets, %d bytes; the export %d, %d, %d", got.Records, got.Packets, got.Bytes, want.Records, want.Packets, want.Bytes)
	}
	return inputRun{rate: perSecond(want.Records, end.Sub(start)), cpu: cpu}, err
}

// consumerPerfTest reads the topic with kafka-consumer-perf-test in a group
// of its own: its fetch rate (messages/s, its group join left out).
func consumerPerfTest(brokers, topic string, records int64) (float64, error) {
	out, err := kafkaTool("kafka-consumer-perf-test", "--bootstrap-server", brokers, "--topic", topic,
		"--num-records", strconv.FormatInt(records, 10), "--group", topic+"-perf-test", "--timeout", "60000")
	if err != nil {
		return 0, err
	}
	// start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
	row, err := lastCSVRow(out, "fetch.nMsg.sec")
	if err != nil {
		return 0, err
	}
	if n, _ := strconv.ParseInt(strings.TrimSpace(row["data.consumed.in.nMsg"]), 10, 64); n != records {
		return 0, fmt.Errorf("consumed %d messages; the topic holds %d", n, records)
	}
	return strconv.ParseFloat(strings.TrimSpace(row["fetch.nMsg.sec"]), 64)
}

// producerPerfTest sends records messages drawn from the payload file (the
// collector's own messages), with the collector's producer settings: acks
// from every in-sync replica, idempotence on.
func producerPerfTest(brokers, topic, payload string, records int64) (float64, error) {
	out, err := kafkaTool("kafka-producer-perf-test", "--topic", topic, "--num-records", strconv.FormatInt(records, 10),
		"--payload-file", payload, "--throughput", "-1",
		"--command-property", "bootstrap.servers="+brokers, "acks=all", "enable.idempotence=true") // one flag, several values: a second flag replaces the first
	if err != nil {
		return 0, err
	}
	// "N records sent, R records/sec (M MB/sec), ..." is the last line
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 5 || f[1] != "records" || f[4] != "records/sec" || f[0] != strconv.FormatInt(records, 10) {
		return 0, fmt.Errorf("kafka-producer-perf-test: unexpected summary %q", lines[len(lines)-1])
	}
	return strconv.ParseFloat(f[3], 64)
}

func kafkaTool(name string, args ...string) (string, error) {
	cmd := kafkaSh(append([]string{"tool", name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", name, err, tail(string(out)))
	}
	return string(out), nil
}

// lastCSVRow reads the header line holding column and the row after it.
func lastCSVRow(out, column string) (map[string]string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 2; i >= 0; i-- {
		if !strings.Contains(lines[i], column) {
			continue
		}
		head, err1 := csv.NewReader(strings.NewReader(lines[i])).Read()
		row, err2 := csv.NewReader(strings.NewReader(lines[i+1])).Read()
		if err1 != nil || err2 != nil || len(head) != len(row) {
			break
		}
		m := map[string]string{}
		for j, h := range head {
			m[strings.TrimSpace(h)] = row[j]
		}
		return m, nil
	}
	return nil, fmt.Errorf("no %s column in:\n%s", column, tail(out))
}

// headLines copies the first n lines of src to dst.
func headLines(src, dst string, n int) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	var b bytes.Buffer
	sc := bufio.NewScanner(in)
	for i := 0; i < n && sc.Scan(); i++ {
		b.Write(sc.Bytes())
		b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return os.WriteFile(dst, b.Bytes(), 0o644)
}

// The bench's own broker: an instance of kafka.sh beside the tests' (its
// own ports and data), with a heap for throughput rather than the tests'.
const kafkaScript = "internal/kafkatest/kafka.sh"

var kafkaEnv = []string{"FLOWDEX_KAFKA_INSTANCE=bench", "FLOWDEX_KAFKA_PORT=19692", "FLOWDEX_KAFKA_HEAP=1g"}

// kafkaSh is a kafka.sh command on the bench's broker.
func kafkaSh(args ...string) *exec.Cmd {
	cmd := exec.Command(kafkaScript, args...)
	cmd.Env = append(os.Environ(), kafkaEnv...)
	return cmd
}

// startKafka starts the bench's broker (before the harness becomes a
// subreaper, as startES) and returns its bootstrap address.
func startKafka(work string) (string, error) {
	logFile := filepath.Join(work, "kafka.sh.log")
	f, err := os.Create(logFile)
	if err != nil {
		return "", err
	}
	start := kafkaSh("start")
	start.Stdout, start.Stderr = f, f
	err = start.Run()
	f.Close()
	if err != nil {
		b, _ := os.ReadFile(logFile)
		return "", fmt.Errorf("kafka.sh start: %v\n%s", err, tail(string(b)))
	}
	out, err := kafkaSh("url").Output()
	return strings.TrimSpace(string(out)), err
}

// stopKafka removes the bench's broker and its data.
func stopKafka() {
	if out, err := kafkaSh("remove").CombinedOutput(); err != nil {
		log.Printf("kafka.sh remove: %v\n%s", err, out)
	}
}

func kafkaPID() int {
	out, err := kafkaSh("pid", "1").Output()
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}

type admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func newAdmin(brokers string) (*admin, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		return nil, err
	}
	return &admin{cl, kadm.NewClient(cl)}, nil
}

func (a *admin) Close() { a.cl.Close() }

func (a *admin) create(topics ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := a.adm.CreateTopics(ctx, kafkaPartitions, 1, nil, topics...)
	if err == nil {
		err = rs.Error()
	}
	return err
}

func (a *admin) delete(topics ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if rs, err := a.adm.DeleteTopics(ctx, topics...); err != nil || rs.Error() != nil {
		log.Printf("deleting topics %v: %v %v", topics, err, rs.Error())
	}
}

// check: the topic holds n messages.
func (a *admin) check(topic string, n int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := a.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	if sum != n {
		return fmt.Errorf("topic %s holds %d messages; the export %d records", topic, sum, n)
	}
	return nil
}

// metrics is a scrape of flowdex's /metrics.
type metrics []string

func scrape(url string) (metrics, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return strings.Split(string(b), "\n"), nil
}

// sum adds the samples of a metric whose labels hold label (all if empty).
func (m metrics) sum(name, label string) float64 {
	var s float64
	for _, l := range m {
		if !strings.HasPrefix(l, name) || len(l) == len(name) || (l[len(name)] != '{' && l[len(name)] != ' ') {
			continue
		}
		if label != "" && !strings.Contains(l, label) {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			v, _ := strconv.ParseFloat(l[i+1:], 64)
			s += v
		}
	}
	return s
}

// tailBuffer keeps the last 16 KiB written to it: a daemon's stderr.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 16<<10 {
		t.b = t.b[len(t.b)-16<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tail(string(t.b))
}
