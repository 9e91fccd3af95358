package main

// Debian's nfacctd with its kafka plugin as the source of the kafka input:
// one nfacctd run replays an export capture into a kafka plugin and a print
// plugin of the same aggregate; flowdex reads the topic and must write
// exactly the print plugin's records.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/flowdex/flowdex/internal/kafkatest"
	"github.com/flowdex/flowdex/internal/testwatch"
)

// nfacctdKafkaAggregate is the aggregate of both plugins: the 5-tuple, the
// exporter, ToS and the flows' times (from the capture, not the clock).
const nfacctdKafkaAggregate = "peer_src_ip, src_host, dst_host, src_port, dst_port, proto, tos, timestamp_start, timestamp_end"

// requireNfacctdKafka skips the test (fails it under CI=true) without an
// nfacctd built with its kafka plugin.
func requireNfacctdKafka(t *testing.T) {
	t.Helper()
	why := ""
	if missing := missingTools("nfacctd"); len(missing) > 0 {
		why = "missing nfacctd (make deps installs pmacct)"
	} else if out, _ := exec.Command("nfacctd", "-V").CombinedOutput(); !regexp.MustCompile(`(?m)^kafka$`).Match(out) {
		why = "nfacctd is built without its kafka plugin (nfacctd -V lists no kafka plugin)"
	}
	if why == "" {
		return
	}
	if ciRequired() {
		t.Fatal(why + " (CI=true: this test must run)")
	}
	t.Skip(why)
}

// nfacctdTopic creates a topic of two partitions (its name under pmacct's
// limit of 64 characters: the test's name is short) whose messages the broker
// stamps (LogAppendTime): with nfacctd's clock shifted (make test-dates),
// the messages' times, which retention and the timestamp checks read, stay
// the broker's.
func nfacctdTopic(t *testing.T, brokers []string) string {
	t.Helper()
	topic := kafkatest.Topic(t, "nfacctd", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kafkatest.Admin(t, brokers).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "message.timestamp.type", Value: kadm.StringPtr("LogAppendTime")}}, topic)
	if err == nil {
		_, err = resp.On(topic, nil)
	}
	if err != nil {
		t.Fatalf("topic %s: %v", topic, err)
	}
	return topic
}

var kafkaPurgeEndRE = regexp.MustCompile(`INFO \( k/kafka \): \*\*\* Purging cache - END \(PID: (\d+), QN: (\d+)/\d+`)

// nfacctdKafkaRun runs nfacctd once on capture with a kafka plugin
// publishing to topic and a print plugin writing print, both purging at
// the end of the capture with their markers, and returns its log. A run
// whose kafka or print plugin did not purge, or that reported a Kafka
// error, is the caller's to try again, on a new topic (1.7.7 sometimes ends
// before a plugin has started, see runPmacct).
func nfacctdKafkaRun(t *testing.T, dir, capture, broker, topic, print string) string {
	t.Helper()
	host, port, _ := strings.Cut(broker, ":")
	conf := writeFile(t, dir, "nfacctd.conf", fmt.Sprintf(`daemonize: false
pcap_savefile: %s
timestamps_utc: true
plugins: kafka[k], print[p]
aggregate[k]: %[2]s
aggregate[p]: %[2]s
print_output[p]: json
print_output_file[p]: %s
print_refresh_time[p]: 86400
print_markers[p]: true
kafka_output[k]: json
kafka_topic[k]: %s
kafka_broker_host[k]: %s
kafka_broker_port[k]: %s
kafka_refresh_time[k]: 86400
kafka_markers[k]: true
`, capture, nfacctdKafkaAggregate, print, topic, host, port))
	pmacctSlots <- struct{}{}
	defer func() { <-pmacctSlots }()
	ctx, cancel := context.WithTimeout(context.Background(), daemonTimeout)
	defer cancel()
	cmd := collectorCommand(exec.CommandContext(ctx, "nfacctd", "-f", conf))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	_ = cmd.Run() // 1.7.7 exits 1 when it loses a plugin: the log tells
	if ctx.Err() != nil {
		t.Fatalf("nfacctd did not finish in %v:\n%s", daemonTimeout, tail(out.String(), 30))
	}
	return out.String()
}

// canonicalJSON is line with its keys sorted: pmacct and flowdex may order
// a record's keys differently.
func canonicalJSON(t *testing.T, line string) string {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	b, err := json.Marshal(m) // maps marshal with sorted keys
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// splitRecords splits pmacct JSON lines into data records (canonical,
// sorted) and markers. writer, when not "", is the writer_id every record
// must have (pmacct's kafka plugin adds it to each message, see
// writer_id_string; its print plugin does not): it is checked and taken
// out of the record.
func splitRecords(t *testing.T, lines []string, writer string) (records []string, markers int) {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(l, `"event_type": "purge_`) {
			markers++
			continue
		}
		if writer != "" {
			w := `, "writer_id": "` + writer + `"`
			if !strings.Contains(l, w) {
				t.Errorf("a record without %s: %s", w, l)
			}
			l = strings.Replace(l, w, "", 1)
		}
		records = append(records, canonicalJSON(t, l))
	}
	slices.Sort(records)
	return records, markers
}

// nfacctd replays export captures into its kafka plugin and its print
// plugin; flowdex's kafka input, with a print output, writes the same
// multiset of records as nfacctd's print plugin, and recognises the kafka
// plugin's purge markers without indexing them.
func TestKafkaInputNfacctd(t *testing.T) {
	requireNfacctdKafka(t)
	if os.Getenv("FLOWDEX_TEST_CLOCK_SHIFT") != "" {
		requireFaketime(t) // make test-dates runs it with nfacctd's clock shifted
	}
	brokers := kafkatest.Brokers(t)
	for _, capture := range []string{"softflowd-v9.pcap", "nfprobe-ipfix.pcap", "softflowd-ipfix.pcap"} {
		t.Run(strings.TrimSuffix(capture, ".pcap"), func(t *testing.T) {
			capture, err := filepath.Abs(filepath.Join("..", "..", "collector", "netflow", "testdata", capture))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			printed := filepath.Join(dir, "nfacctd.json")
			var topic, log, writer string
			for try := 1; ; try++ {
				// a topic per run: a failed run may have published part of its records
				topic = nfacctdTopic(t, brokers)
				log = nfacctdKafkaRun(t, dir, capture, brokers[0], topic, printed)
				if m := kafkaPurgeEndRE.FindStringSubmatch(log); m != nil && m[2] != "0" && !strings.Contains(log, "ERROR ( k/kafka )") &&
					strings.Contains(log, "INFO ( p/print ): *** Purging cache - END") {
					writer = "k/" + m[1] // the kafka plugin's writer process
					break
				}
				if try == 3 {
					t.Fatalf("nfacctd's kafka or print plugin did not purge, in 3 runs; last log:\n%s", tail(log, 30))
				}
			}
			lines, err := readLines(printed)
			if err != nil {
				t.Fatal(err)
			}
			want, wantMarkers := splitRecords(t, lines, "")
			if len(want) == 0 || wantMarkers != 2 {
				t.Fatalf("nfacctd's print plugin wrote %d records, %d markers\n%s", len(want), wantMarkers, tail(log, 30))
			}

			base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
			out := filepath.Join(dir, "flowdex.json")
			cmd, stderr := startIndexer(t, writeFile(t, dir, "flowdex.toml", kafkaInputTOML(brokers, topic, "flowdex-nfacctd", base, "")+
				fmt.Sprintf("[output.print]\ntype = \"print\"\nfile = %q\n", out)))
			adm := kafkatest.Admin(t, brokers)
			testwatch.WaitFor(t, "the group's lag to reach zero", 30*time.Second, func() bool { return groupCommitted(t, adm, "flowdex-nfacctd", topic) })
			m := testwatch.Metrics(t, base)
			terminate(t, cmd, stderr)
			for name, want := range map[string]float64{
				"flowdex_kafka_records_total":      float64(len(want)),
				"flowdex_kafka_markers_total":      2, // purge_init and purge_close
				"flowdex_kafka_bad_messages_total": 0,
			} {
				if got := m[name]["input=kafka"]; got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			lines, err = readLines(out)
			if err != nil {
				t.Fatal(err)
			}
			got, gotMarkers := splitRecords(t, lines, writer)
			if gotMarkers != 0 {
				t.Errorf("flowdex wrote %d markers: the kafka plugin's markers were taken for records", gotMarkers)
			}
			if !slices.Equal(got, want) {
				t.Errorf("flowdex wrote %d records, nfacctd's print plugin %d:\nflowdex:\n%s\nnfacctd:\n%s\nnfacctd's log:\n%s",
					len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"), tail(log, 20))
			}
			t.Logf("%d records, %d markers from nfacctd's kafka plugin", len(want), wantMarkers)
		})
	}
}
