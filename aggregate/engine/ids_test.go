package engine

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/internal/kafkaclient"
)

// Ids are deterministic, differ by origin, line and content, and follow the
// line order within an origin (what Elasticsearch looks up fastest).
func TestIDs(t *testing.T) {
	a, b := newIDMaker("file|1"), newIDMaker("file|2")
	seen := map[string]bool{}
	var ordered []string
	for line := 1; line <= 300; line++ {
		id := a.make(line, []byte(`{"bytes": 1}`))
		if id != newIDMaker("file|1").make(line, []byte(`{"bytes": 1}`)) {
			t.Fatalf("line %d: not deterministic", line)
		}
		for _, other := range []string{id, b.make(line, []byte(`{"bytes": 1}`)), a.make(line, []byte(`{"bytes": 2}`))} {
			if seen[other] {
				t.Fatalf("line %d: id %s twice", line, other)
			}
			seen[other] = true
		}
		ordered = append(ordered, id)
	}
	if !sort.StringsAreSorted(ordered) {
		t.Errorf("ids of one origin do not follow the line order: %v ...", ordered[:3])
	}
	// an id is forever: a changed scheme indexes an already-read file again
	line := []byte(`{"ip_src": "192.0.2.1", "bytes": 100}`)
	m := newIDMaker("/var/lib/pmacct/flows.json|0")
	if got, want := m.make(7, line), "dX0Nm6GgoAo0000000007jqd9zMBTAio"; got != want {
		t.Errorf("id %s, want %s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { m.make(7, line) }); n > 1 {
		t.Errorf("%v allocations per id, want the string's only", n)
	}
}

// Ids of a Kafka partition derive from the message's offset and the line in
// the message: the same record read again (after a crash, a rebalance) gets
// the same id, records of other offsets or lines others, in order.
func TestKafkaIDs(t *testing.T) {
	m := newIDMaker("kafka|pmacct|0")
	raw := []byte(`{"bytes": 1}`)
	seen := map[string]bool{}
	var ordered []string
	for offset := int64(0); offset < 100; offset++ {
		for line := 1; line <= 3; line++ {
			m.offset = offset
			id := m.make(line, raw)
			again := newIDMaker("kafka|pmacct|0")
			again.offset = offset
			if id != again.make(line, raw) {
				t.Fatalf("offset %d line %d: not deterministic", offset, line)
			}
			if seen[id] {
				t.Fatalf("offset %d line %d: id %s twice", offset, line, id)
			}
			seen[id] = true
			ordered = append(ordered, id)
		}
	}
	if !sort.StringsAreSorted(ordered) {
		t.Errorf("ids of a partition do not follow the offsets: %v ...", ordered[:3])
	}
	other := newIDMaker("kafka|pmacct|1")
	other.offset = 0
	if m.offset = 0; other.make(1, raw) == m.make(1, raw) {
		t.Error("two partitions give one id")
	}
}

// A Kafka message keeps the id its kafkaclient.IDHeader carries when it
// holds one line and the id is one Elasticsearch takes; otherwise its
// records get ids from their offset and line.
func TestHeaderID(t *testing.T) {
	rec := func(value, id string) *kgo.Record {
		r := &kgo.Record{Value: []byte(value), Headers: []kgo.RecordHeader{{Key: "other", Value: []byte("x")}}}
		if id != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: kafkaclient.IDHeader, Value: []byte(id)})
		}
		return r
	}
	one := `{"event_type": "purge", "bytes": 1}`
	for _, c := range []struct{ value, id, want string }{
		{one, "kLuQjyx1MQE0000000001AAAAAAAAAAA", "kLuQjyx1MQE0000000001AAAAAAAAAAA"},
		{one + "\n", "a", "a"},
		{one + "\r\n", "a", "a"},
		{strings.Repeat("é", 256), strings.Repeat("é", 256), strings.Repeat("é", 256)}, // 512 bytes
		{one, "", ""},
		{one + "\n" + one, "a", ""}, // kafka_multi_values: the ids of offset and line
		{one, "_a", ""},
		{one, strings.Repeat("a", 513), ""},
		{one, "\xff", ""},
	} {
		if got := headerID(rec(c.value, c.id)); got != c.want {
			t.Errorf("value %.20q, id %.20q: %.20q, want %.20q", c.value, c.id, got, c.want)
		}
	}
	m := newIDMaker("kafka|t|0")
	m.offset, m.given = 7, "given"
	if got := m.make(0, []byte(one)); got != "given" {
		t.Errorf("%q, want the given id", got)
	}
}

// Two pipelines of one name (two collectors) flushing in the same
// nanosecond give different ids; one pipeline's flush gives the same.
func TestFlushIDs(t *testing.T) {
	pc := &config.Pipeline{Aggregate: []string{"src_host"}}
	var fps []*flowPipeline
	for range 2 {
		fp, err := newFlowPipeline(&pipeline{name: "flows"}, pc)
		if err != nil {
			t.Fatal(err)
		}
		fps = append(fps, fp)
	}
	now := time.Unix(1700000000, 0)
	a, b := fps[0].flushIDs(now).make(1, nil), fps[1].flushIDs(now).make(1, nil)
	if a == b {
		t.Errorf("the same id %s from two pipelines", a)
	}
	if again := fps[0].flushIDs(now).make(1, nil); again != a {
		t.Errorf("%s, then %s", a, again)
	}
}
