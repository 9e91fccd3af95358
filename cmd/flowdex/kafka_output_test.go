package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/internal/kafkatest"
	"github.com/flowdex/flowdex/internal/testwatch"
)

// A pipeline with a print output and a kafka output: every message is a
// line of the print file, byte for byte; one exporter's records are in one
// partition, in the print file's order; each purge is bracketed by
// pmacct's markers; the counters of the final report add up.
func TestKafkaOutput(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "kout", 4)
	dir := t.TempDir()
	out := filepath.Join(dir, "flows.json")
	port := freeUDPPort(t)
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
listen = ["127.0.0.1:%d"]
[[pipeline]]
aggregate = ["peer_src_ip", "src_host", "dst_host", "src_port", "dst_port", "proto"]
refresh = "1s"
outputs = ["print", "kafka"]
[output.print]
type = "print"
file = %q
[output.kafka]
type = "kafka"
brokers = [%q]
topic = %q
markers = true
`, port, out, brokers[0], topic))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
	var senders []*v5Sender
	for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		senders = append(senders, &v5Sender{conn: conn, start: time.Now().Add(-time.Minute)})
	}
	const rounds = 4 // 40 records of 40 keys from each exporter
	for range rounds {
		for _, s := range senders {
			d, _, _ := s.datagram()
			if _, err := s.conn.Write(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	testwatch.WaitFor(t, "the records in the print file", 20*time.Second, func() bool {
		lines, _ := readLines(out)
		return len(lines) >= 40*len(senders)
	})
	terminate(t, cmd, stderr)
	lines, err := readLines(out)
	if err != nil {
		t.Fatal(err)
	}
	n := len(lines)
	if m := regexp.MustCompile(`output stopped.* output=kafka written=(\d+) indexed=(\d+) duplicates=0 failed=0`).FindStringSubmatch(stderr.String()); m == nil ||
		m[1] != fmt.Sprint(n) || m[2] != fmt.Sprint(n) {
		t.Fatalf("the kafka output's report (want %d written and produced, none failed): %q\n%s", n, m, stderr)
	}

	// every message, markers included: the last purge_close is the last message
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var records, markers []*kgo.Record
	for len(records) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d records of %d in 60 s", len(records), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if strings.Contains(string(r.Value), `"event_type": "purge_`) {
				markers = append(markers, r)
			} else {
				records = append(records, r)
			}
		}
	}
	// byte-identical, per exporter in the print file's order, one partition each
	perExporter := map[string][]string{}
	for _, l := range lines {
		var rec struct {
			Peer string `json:"peer_ip_src"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		perExporter[rec.Peer] = append(perExporter[rec.Peer], l)
	}
	got := map[string][]string{}
	partitions := map[string][]int32{}
	for _, r := range records {
		k := string(r.Key)
		got[k] = append(got[k], string(r.Value))
		if !slices.Contains(partitions[k], r.Partition) {
			partitions[k] = append(partitions[k], r.Partition)
		}
	}
	if len(perExporter) != len(senders) {
		t.Errorf("%d exporters in the print file, want %d", len(perExporter), len(senders))
	}
	for e, want := range perExporter {
		if !slices.Equal(got[e], want) {
			t.Errorf("exporter %s: Kafka has\n%q\nthe print file\n%q", e, got[e], want)
		}
		if len(partitions[e]) != 1 {
			t.Errorf("exporter %s in partitions %v, want one", e, partitions[e])
		}
	}
	// markers: as many purge_init as purge_close, whose purged_entries add up to the records
	var inits, closes, purged int
	for _, r := range markers {
		var m struct {
			Event  string `json:"event_type"`
			Writer string `json:"writer_id"`
			Purged int    `json:"purged_entries"`
		}
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatalf("%q: %v", r.Value, err)
		}
		if !strings.HasPrefix(m.Writer, "kafka/") {
			t.Errorf("writer_id %q, want kafka/PID", m.Writer)
		}
		switch m.Event {
		case "purge_init":
			inits++
		case "purge_close":
			closes++
			purged += m.Purged
		}
	}
	if inits == 0 || inits != closes || purged != n {
		t.Errorf("%d purge_init, %d purge_close of %d entries; want as many of each, of %d entries", inits, closes, purged, n)
	}
}
