package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/internal/kafkaclient"
	"github.com/flowdex/flowdex/internal/kafkatest"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestPattern(t *testing.T) {
	var d document.Document
	d.SetString("peer_ip_src", "192.0.2.1")
	d.SetInt("port_src", 443)
	d.SetString("ip_proto", "tcp")
	d.SetInt("tag", 7)
	for _, c := range []struct{ in, want, err string }{
		{"pmacct.acct", "pmacct.acct", ""},
		{"flows.$peer_src_ip", "flows.192.0.2.1", ""},
		{"$peer_src_ip-$src_port-$proto", "192.0.2.1-443-tcp", ""},
		{"x$dst_host.y", "x.y", ""},  // absent: nothing
		{"a.$tag.$tag2", "a.7.", ""}, // the pre_tag_map's, when aggregated
		{"a.$post_tag2", "", "$post_tag2: pmacct's post_tag, which flowdex does not have yet"},
		{"a.$nope", "", "unknown variable $nope"},
	} {
		p, err := parsePattern(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if got := string(p.appendTo(nil, &d)); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Topic = "flows.$post_tag"
	cfg.PartitionKey = "$peer"
	cfg.MaxBufferedRecords = 0
	err := cfg.Validate()
	for _, want := range []string{"topic: \"flows.$post_tag\": $post_tag: pmacct's post_tag", "partition_key: \"$peer\": unknown variable",
		"max_buffered_records: 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	cfg = DefaultConfiguration()
	cfg.Compression = "brotli"
	if err := cfg.Validate(); err == nil || err.Error() != `compression: "brotli": expected one of none, gzip, snappy, lz4, zstd` {
		t.Errorf("compression: %v", err)
	}
	cfg = DefaultConfiguration()
	cfg.Topic, cfg.Markers = "flows.$peer_src_ip", true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "markers:") {
		t.Errorf("markers with a dynamic topic: %v", err)
	}
}

// consume reads n records of topic from the start.
func consume(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d records of %d after 60 s", len(got), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

// started is a started sink named "k" of cfg.
func started(t testing.TB, cfg Configuration) *Sink {
	t.Helper()
	s, err := New("k", cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func doc(exporter string, i int) *document.Document {
	var d document.Document
	d.SetString("event_type", "purge")
	if exporter != "" {
		d.SetString("peer_ip_src", exporter)
	}
	d.SetString("ip_src", "198.51.100.7")
	d.SetInt("packets", int64(i))
	d.SetString("note", "quote \" and é")
	return &d
}

// Records are the print output's bytes, keyed by exporter, in order within
// an exporter, with their document id in a header (none when the pipeline
// gave none); markers bracket a purge; the counters add up.
func TestPublish(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "kout", 4)
	cfg := DefaultConfiguration()
	cfg.Brokers, cfg.Topic, cfg.Markers = brokers, topic, true
	s := started(t, cfg)
	ctx := context.Background()
	exporters := []string{"192.0.2.1", "192.0.2.2", "2001:db8::3", ""}
	const per = 50
	want := map[string][]string{}
	wantID := map[string]string{} // by value
	for i := range per {
		for j, e := range exporters {
			d := doc(e, i)
			v := string(d.AppendJSON(nil, document.Pmacct))
			want[e] = append(want[e], v)
			if j != 1 {
				wantID[v] = fmt.Sprintf("id-%d-%d", i, j)
			}
			if err := s.Write(ctx, d, wantID[v]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	n := per * len(exporters)
	if st := s.Stats(); st != (Stats{Written: uint64(n), Produced: uint64(n), Markers: 2}) {
		t.Fatalf("stats %+v", st)
	}
	recs := consume(t, brokers, topic, n+2)
	got := map[string][]string{}
	partition := map[string]int32{}
	var markers []string
	for _, r := range recs {
		v := string(r.Value)
		if strings.Contains(v, `"purge_init"`) || strings.Contains(v, `"purge_close"`) {
			markers = append(markers, v)
			continue
		}
		if len(r.Headers) > 1 || string(kafkaclient.DocumentID(r)) != wantID[v] {
			t.Errorf("record %s: headers %q, want the id %q", v, r.Headers, wantID[v])
		}
		e := string(r.Key)
		if p, ok := partition[e]; ok && p != r.Partition && e != "" {
			t.Errorf("exporter %q in partitions %d and %d", e, p, r.Partition)
		}
		partition[e] = r.Partition
		got[e] = append(got[e], v)
	}
	for _, e := range exporters[:3] {
		if fmt.Sprint(got[e]) != fmt.Sprint(want[e]) {
			t.Errorf("exporter %q: got\n%q\nwant\n%q", e, got[e], want[e])
		}
	}
	if len(got[""]) != per { // without a key: spread, in no particular order across partitions
		t.Errorf("%d records without a key, want %d", len(got[""]), per)
	}
	wid := fmt.Sprintf("k/%d", os.Getpid())
	initRE := regexp.MustCompile(`^\{"event_type": "purge_init", "writer_id": "` + regexp.QuoteMeta(wid) + `"\}$`)
	closeRE := regexp.MustCompile(`^\{"event_type": "purge_close", "writer_id": "` + regexp.QuoteMeta(wid) +
		fmt.Sprintf(`", "purged_entries": %d, "total_entries": %d, "duration": \d+\}$`, n, n))
	if len(markers) != 2 || !initRE.MatchString(markers[0]) && !initRE.MatchString(markers[1]) ||
		!closeRE.MatchString(markers[0]) && !closeRE.MatchString(markers[1]) {
		t.Errorf("markers %q", markers)
	}
}

// Each compression reaches the broker as it was asked (the batches' codec,
// as a consumer sees it) and the records come back as they were written.
func TestCompression(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx := context.Background()
	for codec, attr := range map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4} {
		topic := kafkatest.Topic(t, "kcodec", 1)
		cfg := DefaultConfiguration()
		cfg.Brokers, cfg.Topic, cfg.Compression = brokers, topic, codec
		s := started(t, cfg)
		var want []string
		for i := range 20 {
			d := doc("192.0.2.1", i)
			want = append(want, string(d.AppendJSON(nil, document.Pmacct)))
			if err := s.Write(ctx, d, ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range consume(t, brokers, topic, len(want)) {
			got = append(got, string(r.Value))
			if c := r.Attrs.CompressionType(); c != attr {
				t.Errorf("%s: a batch of codec %d, want %d", codec, c, attr)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: read back\n%q\nwant\n%q", codec, got, want)
		}
	}
}

// A topic that does not exist and a broker that does not answer fail the
// start with errors naming the brokers and the cause.
func TestStartErrors(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := DefaultConfiguration()
	cfg.Brokers, cfg.Topic = brokers, "flowdex-no-such-topic"
	s, err := New("k", cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `topic "flowdex-no-such-topic" does not exist`) || !strings.Contains(err.Error(), brokers[0]) {
		t.Errorf("unknown topic: %v", err)
	}
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.DialTimeout.Duration = time.Second
	s, _ = New("k", cfg, discard())
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "brokers 127.0.0.1:1") {
		t.Errorf("no broker: %v", err)
	}
}

// BenchmarkPublish publishes records of 4 exporters, each with an id as a
// flow pipeline makes them, to a 4-partition topic of the shared broker and
// waits for every acknowledgement.
func BenchmarkPublish(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	cfg := DefaultConfiguration()
	cfg.Brokers, cfg.Topic = brokers, kafkatest.Topic(b, "kbench", 4)
	s := started(b, cfg)
	ctx := context.Background()
	docs := []*document.Document{doc("192.0.2.1", 1), doc("192.0.2.2", 2), doc("192.0.2.3", 3), doc("192.0.2.4", 4)}
	ids := []string{"kLuQjyx1MQE0000000001AAAAAAAAAAA", "kLuQjyx1MQE0000000002AAAAAAAAAAA",
		"kLuQjyx1MQE0000000003AAAAAAAAAAA", "kLuQjyx1MQE0000000004AAAAAAAAAAA"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Write(ctx, docs[i&3], ids[i&3]); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if err := s.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	if st := s.Stats(); st.Produced != uint64(b.N) || st.Failed != 0 {
		b.Fatalf("stats %+v after %d", st, b.N)
	}
}
