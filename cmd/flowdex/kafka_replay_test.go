package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/internal/kafkaclient"
	"github.com/flowdex/flowdex/internal/kafkatest"
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// A record the brokers took but the kafka output spooled all the same (its
// acknowledgement lost) is produced again by the spool's replay, under a
// second offset; the indexer must still make it one document. The test
// makes that happen to every record: a collector writes while two brokers
// of three are stopped (the topic takes nothing; the producer does not even
// get an id), and is stopped, so its spool holds every record; the spool is
// copied, and the spool and its copy are each replayed by a run of the
// collector once the brokers are back, so that the topic holds every record
// twice. An indexer then reads the topic into Elasticsearch: as many
// documents as the collector wrote records, no id twice, the exporter's
// packets and bytes. (Markers are left out: TestMarkersSpooledInOrder in
// sink/kafka has them.)
func TestKafkaOutputReplayIndexesOnce(t *testing.T) {
	kafkatest.SkipIfNoKafka(t)
	url := estest.URL(t)
	index := estest.Index(t, "kafka-replay")
	kc := kafkatest.NewCluster(t)
	topic := kc.Topic("replay", 2)
	dir := t.TempDir()
	spoolDir, spoolCopy := filepath.Join(dir, "spool"), filepath.Join(dir, "spool-copy")
	collector := func(name, spool string) (*daemon, int) {
		port := freeUDPPort(t)
		d := &daemon{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))}
		d.conf = writeFile(t, dir, name+".toml", kafkaCollectorTOML(d.base, port, kc.Brokers, topic, "1s", fmt.Sprintf(`
spool_dir = %q
spool_after = "1s"
stop_grace = "2s"
`, spool)))
		d.start(t, "listening")
		t.Cleanup(func() {
			if t.Failed() {
				t.Log(d)
			}
		})
		return d, port
	}
	report := func(d *daemon) (written, produced int) {
		t.Helper()
		m := kafkaReport.FindStringSubmatch(d.log.String())
		if m == nil {
			t.Fatalf("%s: no final report of its kafka output", d.name)
		}
		if m[4] != "0" {
			t.Errorf("%s: %s records failed", d.name, m[4])
		}
		written, _ = strconv.Atoi(m[1])
		produced, _ = strconv.Atoi(m[2])
		return written, produced
	}

	// the first run writes while the topic takes nothing: all to the spool
	c, port := collector("collector", spoolDir)
	kc.StopBroker(1)
	kc.StopBroker(2)
	e := newExporter(t, "127.0.0.2", port)
	e.run(t, 50)
	testwatch.WaitFor(t, "records written", 60*time.Second, func() bool {
		return c.metric(t, "flowdex_output_documents_total", "output=kafka,result=written") >= 200
	})
	e.halt()
	waitReceived(t, c.base, e.datagrams())
	terminate(t, c.cmd, c.log)
	written, produced := report(c)
	if produced != 0 {
		t.Fatalf("the brokers acknowledged %d records of %d with two brokers of three stopped; want none", produced, written)
	}
	copySpool(t, spoolDir, spoolCopy)
	kc.StartBroker(1)
	kc.StartBroker(2)

	// the spool, then its copy, replayed: every record twice in the topic
	for _, spool := range []string{spoolDir, spoolCopy} {
		c, _ := collector("replay of "+filepath.Base(spool), spool)
		testwatch.WaitFor(t, "the spool to be replayed", 60*time.Second, func() bool {
			return c.metric(t, "flowdex_output_documents_total", "output=kafka,result=replayed") >= float64(written)
		})
		terminate(t, c.cmd, c.log)
		if w, p := report(c); w != 0 || p != written {
			t.Errorf("%s: wrote %d records and produced %d; want none written and the %d spooled produced", c.name, w, p, written)
		}
	}
	perID := topicIDs(t, kc.Brokers, topic, 2*written)
	for id, n := range perID {
		if n < 2 {
			t.Errorf("id %q %d times in the topic, want twice at least", id, n)
		}
	}
	if len(perID) != written {
		t.Errorf("%d ids in the topic, want one for each of the %d records written", len(perID), written)
	}

	// the indexer: each record once
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	group := "flowdex-" + topic
	conf := writeFile(t, dir, "indexer.toml", kafkaIndexerConfig(kc.Brokers, topic, group, url, index, base, filepath.Join(dir, "dead.json")))
	cmd, stderr := startIndexer(t, conf)
	adm := kafkatest.Admin(t, kc.Brokers)
	testwatch.WaitFor(t, "the group's lag to reach zero", 60*time.Second, func() bool { return groupCommitted(t, adm, group, topic) })
	_, packets, bytes := e.totals()
	checkKafkaIndexed(t, &kafkaFeed{records: written, packets: packets, bytes: bytes}, url, index, stderr)
	m := testwatch.Metrics(t, base)
	read, fromHeader := m["flowdex_kafka_records_total"]["input=kafka"], m["flowdex_kafka_header_ids_total"]["input=kafka"]
	if read < float64(2*written) || fromHeader != read {
		t.Errorf("the indexer read %v records, %v with the id of their header; want %d or more, all", read, fromHeader, 2*written)
	}
	terminate(t, cmd, stderr)
	t.Logf("%d records written while the topic took nothing, %v read by the indexer, %d documents", written, read, written)
}

// copySpool copies the segments of a spool directory (not its lock).
func copySpool(t *testing.T, from, to string) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(from, "*.spool"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no spool segment in %s (%v)", from, err)
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(s)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// topicIDs reads topic from the start until it has seen n records (not
// markers), and counts them by the document id of their header.
func topicIDs(t *testing.T, brokers []string, topic string, n int) map[string]int {
	t.Helper()
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	perID := map[string]int{}
	for seen := 0; seen < n; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d records of %d in the topic after 60 s", seen, n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !strings.Contains(string(r.Value), `"event_type": "purge_`) {
				perID[string(kafkaclient.DocumentID(r))]++
				seen++
			}
		})
	}
	return perID
}
