package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/internal/kafkatest"
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// kafkaFeed produces pmacct JSON messages as pmacct's kafka plugin writes
// them (one record a message, or several a line each with
// kafka_multi_values), from real lines of pmacct's print plugin, and keeps
// the sums of what it sent.
type kafkaFeed struct {
	t       *testing.T
	cl      *kgo.Client
	topic   string
	lines   []string // data records
	marker  string
	next    int
	records int
	packets int64
	bytes   int64
	markers int
}

func newKafkaFeed(t *testing.T, brokers []string, topic string) *kafkaFeed {
	t.Helper()
	f := &kafkaFeed{t: t, cl: kafkatest.Client(t, brokers), topic: topic}
	for _, name := range []string{"print-rfc3339.json", "print-markers.json"} {
		fh, err := os.Open(filepath.Join("..", "..", "collector", "pmacct", "testdata", "out", name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			switch l := sc.Text(); {
			case strings.Contains(l, `"event_type": "purge"`):
				f.lines = append(f.lines, l)
			case strings.Contains(l, `"purge_init"`):
				f.marker = l
			}
		}
		fh.Close()
	}
	if len(f.lines) < 20 || f.marker == "" {
		t.Fatalf("testdata: %d records, marker %q", len(f.lines), f.marker)
	}
	return f
}

// produce sends n messages: one to three records each, and a purge_init
// marker every 50th, keyed so that they spread over the partitions.
func (f *kafkaFeed) produce(n int) {
	f.t.Helper()
	rs := make([]*kgo.Record, 0, n)
	for range n {
		i := f.next
		f.next++
		var b strings.Builder
		if i%50 == 49 {
			b.WriteString(f.marker)
			f.markers++
		} else {
			for j := range i%3 + 1 {
				l := f.lines[(i+j)%len(f.lines)]
				var rec struct{ Packets, Bytes int64 }
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					f.t.Fatal(err)
				}
				f.records++
				f.packets += rec.Packets
				f.bytes += rec.Bytes
				if j > 0 {
					b.WriteByte('\n')
				}
				b.WriteString(l)
			}
		}
		rs = append(rs, &kgo.Record{Topic: f.topic, Key: []byte(strconv.Itoa(i)), Value: []byte(b.String())})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
}

// kafkaCase is what each Kafka input test starts from: the shared broker,
// a topic of four partitions with a feed, an index, a group of its own.
type kafkaCase struct {
	brokers           []string
	topic, url, index string
	dir, group        string
	feed              *kafkaFeed
}

func newKafkaCase(t *testing.T, index string) *kafkaCase {
	t.Helper()
	c := &kafkaCase{brokers: kafkatest.Brokers(t), url: estest.URL(t), index: estest.Index(t, index), dir: t.TempDir()}
	c.topic = kafkatest.Topic(t, "pmacct", 4)
	c.group = "flowdex-" + filepath.Base(c.dir)
	c.feed = newKafkaFeed(t, c.brokers, c.topic)
	return c
}

// kafkaIndexerConfig is a kafka input of group on topic into Elasticsearch,
// with its metrics at base.
func kafkaIndexerConfig(brokers []string, topic, group, url, index, base, deadLetter string) string {
	return kafkaInputTOML(brokers, topic, group, base, deadLetter) + esOutputTOML(url, index)
}

// kafkaInputTOML is a kafka input of group on topic, with its metrics at
// base; the outputs are the caller's.
func kafkaInputTOML(brokers []string, topic, group, base, deadLetter string) string {
	return fmt.Sprintf(`
[http]
listen = %q
[[input]]
name = "kafka"
type = "kafka"
brokers = [%q]
topics = [%q]
group = %q
max_poll_records = 200
session_timeout = "6s"
timezone = "UTC"
dead_letter_file = %q
`, strings.TrimPrefix(base, "http://"), brokers[0], topic, group, deadLetter)
}

// startIndexer starts flowdex with conf and waits until it serves its
// metrics (its Kafka input is connected then).
func startIndexer(t *testing.T, conf string) (*exec.Cmd, *testwatch.Log) {
	t.Helper()
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to start", 30*time.Second, func() bool { return strings.Contains(stderr.String(), "flowdex started") })
	return cmd, stderr
}

// groupCommitted reports whether the group has committed every partition
// of topic up to its end: its lag is zero.
func groupCommitted(t *testing.T, adm *kadm.Client, group, topic string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false // the group may be rebalancing
	}
	done := true
	ends.Each(func(e kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, e.Partition)
		if e.Offset > 0 && (!ok || c.At < e.Offset) {
			done = false
		}
	})
	return done
}

// checkKafkaIndexed waits until Elasticsearch holds every record f sent, and
// checks the sums and that no id is there twice.
func checkKafkaIndexed(t *testing.T, f *kafkaFeed, url, index string, stderr ...fmt.Stringer) {
	t.Helper()
	testwatch.WaitFor(t, "every record in Elasticsearch", 40*time.Second, func() bool {
		estest.Refresh(t, url, index+"-*")
		return estest.Count(t, url, index+"-*") >= f.records
	})
	docs, packets, bytes := esTotals(t, url, index+"-*")
	if docs != f.records || packets != f.packets || bytes != f.bytes {
		var logs []string
		for _, s := range stderr {
			logs = append(logs, s.String())
		}
		t.Errorf("Elasticsearch holds %d documents, %d packets, %d bytes; sent %d records, %d packets, %d bytes\n%s",
			docs, packets, bytes, f.records, f.packets, f.bytes, strings.Join(logs, "\n---\n"))
	}
}

// The kafka input reads pmacct JSON messages (several records a message,
// markers, one message that is not JSON) from a topic of four partitions
// into Elasticsearch: every record once, markers not indexed, the bad
// message counted, dead-lettered with its coordinates and committed past,
// and the group's lag zero.
func TestKafkaInputIndexesEveryRecordOnce(t *testing.T) {
	c := newKafkaCase(t, "kafka-in")
	brokers, topic, url, index, dir, group, f := c.brokers, c.topic, c.url, c.index, c.dir, c.group, c.feed
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	f.produce(1000)
	bad := &kgo.Record{Topic: topic, Partition: 0, Value: []byte("not pmacct at all")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.cl.ProduceSync(ctx, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, "dead.json")
	cmd, stderr := startFlowdex(t, writeFile(t, dir, "flowdex.toml", kafkaIndexerConfig(brokers, topic, group, url, index, base, dead)))
	checkKafkaIndexed(t, f, url, index, stderr)
	adm := kafkatest.Admin(t, brokers)
	testwatch.WaitFor(t, "the group's lag to reach zero", 20*time.Second, func() bool { return groupCommitted(t, adm, group, topic) })
	m := testwatch.Metrics(t, base)
	for name, want := range map[string]float64{
		"flowdex_kafka_messages_total":               1001,
		"flowdex_kafka_records_total":                float64(f.records),
		"flowdex_kafka_markers_total":                float64(f.markers),
		"flowdex_kafka_bad_messages_total":           1,
		"flowdex_kafka_dead_lettered_messages_total": 1,
	} {
		if got := m[name]["input=kafka"]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if m["flowdex_kafka_commits_total"]["input=kafka,result=ok"] < 1 || m["flowdex_kafka_partitions_total"]["event=assigned,input=kafka"] != 4 {
		t.Errorf("commits %v, partitions %v", m["flowdex_kafka_commits_total"], m["flowdex_kafka_partitions_total"])
	}
	for labels, lag := range m["flowdex_kafka_consumer_lag"] {
		if lag != 0 {
			t.Errorf("lag %s = %v", labels, lag)
		}
	}
	terminate(t, cmd, stderr)
	data, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	var dl struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Message   string `json:"message"`
	}
	if err := json.Unmarshal(data, &dl); err != nil || dl.Topic != topic || dl.Message != "not pmacct at all" {
		t.Errorf("dead-letter file: %v %+v\n%s", err, dl, data)
	}
	out := stderr.String()
	if !strings.Contains(out, "kafka input stopped") || !strings.Contains(out, "offset="+strconv.FormatInt(dl.Offset, 10)) {
		t.Errorf("no final line or no log of the bad message at its offset\n%s", out)
	}
}

// An indexer killed (-9) mid-stream, with documents written and offsets not
// committed, is started again: it reads the uncommitted messages again, and
// their documents keep their ids, so Elasticsearch holds every record once.
func TestKafkaInputKilledLosesNothingAndDoublesNothing(t *testing.T) {
	c := newKafkaCase(t, "kafka-kill")
	brokers, topic, url, index, dir, group, f := c.brokers, c.topic, c.url, c.index, c.dir, c.group, c.feed
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	// small bulk requests, one at a time: the kill finds documents read and
	// not yet indexed
	conf := writeFile(t, dir, "flowdex.toml", kafkaIndexerConfig(brokers, topic, group, url, index, base, "")+"flush_docs = 50\nworkers = 1\n")
	f.produce(3000)
	cmd, stderr := startIndexer(t, conf)
	testwatch.WaitFor(t, "documents indexed", 30*time.Second, func() bool {
		return testwatch.Metrics(t, base)["flowdex_output_documents_total"]["output=es,result=indexed"] >= 500
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	first := stderr.String()
	f.produce(1000) // while no indexer runs
	cmd, stderr = startIndexer(t, conf)
	f.produce(1000)
	checkKafkaIndexed(t, f, url, index, stderr)
	adm := kafkatest.Admin(t, brokers)
	testwatch.WaitFor(t, "the group's lag to reach zero", 20*time.Second, func() bool { return groupCommitted(t, adm, group, topic) })
	m := testwatch.Metrics(t, base)
	t.Logf("after the restart: %v messages read again or new, %v documents indexed, %v already there",
		m["flowdex_kafka_messages_total"]["input=kafka"], m["flowdex_output_documents_total"]["output=es,result=indexed"],
		m["flowdex_output_documents_total"]["output=es,result=duplicate"])
	terminate(t, cmd, stderr)
	if t.Failed() {
		t.Logf("first run:\n%s", first)
	}
}

// Two indexers in one group share the four partitions; one is killed (-9),
// the other takes its partitions and reads what it had not committed:
// every record once.
func TestKafkaInputGroupTakesOverFromDeadMember(t *testing.T) {
	c := newKafkaCase(t, "kafka-group")
	brokers, topic, url, index, dir, group, f := c.brokers, c.topic, c.url, c.index, c.dir, c.group, c.feed
	var bases []string
	var cmds []*exec.Cmd
	var logs []*testwatch.Log
	for i := range 2 {
		base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
		conf := kafkaIndexerConfig(brokers, topic, group, url, index, base, "")
		// a dead member's partitions go to the other once its session times out (6 s)
		cmd, stderr := startIndexer(t, writeFile(t, dir, fmt.Sprintf("flowdex%d.toml", i), conf))
		bases, cmds, logs = append(bases, base), append(cmds, cmd), append(logs, stderr)
	}
	assigned := func(i int) float64 {
		m := testwatch.Metrics(t, bases[i])["flowdex_kafka_partitions_total"]
		return m["event=assigned,input=kafka"] - m["event=revoked,input=kafka"] - m["event=lost,input=kafka"]
	}
	testwatch.WaitFor(t, "both indexers to own partitions", 30*time.Second, func() bool { return assigned(0) == 2 && assigned(1) == 2 })
	f.produce(3000)
	testwatch.WaitFor(t, "both indexers to index", 30*time.Second, func() bool {
		for _, b := range bases {
			if testwatch.Metrics(t, b)["flowdex_output_documents_total"]["output=es,result=indexed"] < 100 {
				return false
			}
		}
		return true
	})
	if err := cmds[1].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmds[1].Wait()
	killed := time.Now()
	f.produce(1000)
	testwatch.WaitFor(t, "the survivor to take every partition", 60*time.Second, func() bool { return assigned(0) == 4 })
	t.Logf("the survivor owns the four partitions %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	checkKafkaIndexed(t, f, url, index, logs[0], logs[1])
	adm := kafkatest.Admin(t, brokers)
	testwatch.WaitFor(t, "the group's lag to reach zero", 20*time.Second, func() bool { return groupCommitted(t, adm, group, topic) })
	terminate(t, cmds[0], logs[0])
}

// A topic that does not exist and a broker that never answers fail the
// start with exit 3 and an error naming the brokers and the cause.
func TestKafkaInputStartErrors(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	dir := t.TempDir()
	conf := func(broker, topic string) string {
		return writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "kafka"
brokers = [%q]
topics = [%q]
dial_timeout = "1s"
[output.out]
type = "print"
file = "out.json"
`, broker, topic))
	}
	for _, c := range []struct {
		name, broker, topic string
		want                []string
	}{
		{"missing topic", brokers[0], "flowdex-no-such-topic", []string{brokers[0], `topic "flowdex-no-such-topic"`, "UNKNOWN_TOPIC_OR_PARTITION"}},
		{"no broker", fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)), "x", []string{"connection refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", "run", "-c", conf(c.broker, c.topic))
			if code != exitStartup {
				t.Errorf("exit %d, want %d\n%s", code, exitStartup, stderr)
			}
			for _, w := range append(c.want, "kafka brokers "+c.broker) {
				if !strings.Contains(stderr, w) {
					t.Errorf("the error does not say %q\n%s", w, stderr)
				}
			}
		})
	}
}

// committedOffsets are the group's committed offsets of topic, by partition.
func committedOffsets(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// The commit order: offsets are committed only once the outputs hold the
// records. The indexer's Elasticsearch (a node of the test's own) is
// frozen while the indexer reads: the documents go into the output's
// buffers, its bulk requests hang, and the group's offsets must not move.
// The indexer is then killed (-9), the node thawed and the indexer started
// again: it reads the uncommitted messages again and Elasticsearch holds
// every record once. Committing before the outputs' Sync loses the
// documents that were in the buffers.
func TestKafkaInputCommitsOnlyWhatOutputsHold(t *testing.T) {
	brokers := kafkatest.Brokers(t) // first: the quick suite skips before a node starts
	_, url, pid := startOwnNode(t)
	index := estest.Index(t, "kafka-frozen")
	dir := t.TempDir()
	topic := kafkatest.Topic(t, "pmacct", 4)
	group := "flowdex-" + filepath.Base(dir)
	f := newKafkaFeed(t, brokers, topic)
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	// bulk requests hang on the frozen node for the test's length instead
	// of failing (a failed document counts as delivered)
	conf := writeFile(t, dir, "flowdex.toml", kafkaIndexerConfig(brokers, topic, group, url, index, base, "")+"request_timeout = \"5m\"\n")
	f.produce(400)
	cmd, stderr := startIndexer(t, conf)
	checkKafkaIndexed(t, f, url, index, stderr)
	adm := kafkatest.Admin(t, brokers)
	testwatch.WaitFor(t, "the group's lag to reach zero", 20*time.Second, func() bool { return groupCommitted(t, adm, group, topic) })
	before := committedOffsets(t, adm, group, topic)
	read := testwatch.Metrics(t, base)["flowdex_kafka_messages_total"]["input=kafka"]

	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	f.produce(1000)
	testwatch.WaitFor(t, "the indexer to read messages into the output's buffers", 30*time.Second, func() bool {
		m := testwatch.Metrics(t, base)
		return m["flowdex_kafka_messages_total"]["input=kafka"] > read && m["flowdex_output_queue_documents"]["output=es"] > 0
	})
	// Nothing here to wait on: the offsets must stay where they are. A
	// consumer that commits without the outputs does so within
	// milliseconds of reading, and reads the 1000 messages in a few.
	moved := false
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && !moved; time.Sleep(100 * time.Millisecond) {
		for p, at := range committedOffsets(t, adm, group, topic) {
			if at != before[p] {
				t.Errorf("partition %d: offset committed to %d while Elasticsearch holds nothing past %d", p, at, before[p])
				moved = true
			}
		}
	}
	m := testwatch.Metrics(t, base)
	frozenRead := m["flowdex_kafka_messages_total"]["input=kafka"] - read
	t.Logf("frozen: %v messages read, %v documents in the output's buffers", frozenRead, m["flowdex_output_queue_documents"]["output=es"])
	// the lag gauge, one per partition owned, counts what was read and not
	// committed: at least the messages read since the freeze
	var lag float64
	for _, l := range m["flowdex_kafka_consumer_lag"] {
		lag += l
	}
	if n := len(m["flowdex_kafka_consumer_lag"]); n != 4 || lag < frozenRead {
		t.Errorf("consumer lag %v: want 4 partitions, %v messages or more in all", m["flowdex_kafka_consumer_lag"], frozenRead)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	first := stderr.String()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	cmd, stderr = startIndexer(t, conf)
	checkKafkaIndexed(t, f, url, index, stderr)
	testwatch.WaitFor(t, "the group's lag to reach zero", 20*time.Second, func() bool { return groupCommitted(t, adm, group, topic) })
	terminate(t, cmd, stderr)
	if t.Failed() {
		t.Logf("first run:\n%s", first)
	}
}
