package kafkatest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produce sends n records to topic, keyed so that they spread over the
// partitions, values prefix-0 ... prefix-(n-1), and waits for their acks.
func produce(t *testing.T, cl *kgo.Client, topic, prefix string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var recs []*kgo.Record
	var values []string
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("%s-%d", prefix, i)
		values = append(values, v)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing %d records to %s: %v", n, topic, err)
	}
	return values
}

// consumeAll reads topic from the start until it has want records, and
// returns their values, sorted.
func consumeAll(t *testing.T, brokers []string, topic string, want int) []string {
	t.Helper()
	cl := Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: %d records of %d after %v: %v", topic, len(got), want, opTimeout, got)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("consuming %s partition %d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	return got
}

func TestProduceConsume(t *testing.T) {
	brokers := Brokers(t)
	topic := Topic(t, "kafkatest", 3)
	cl := Client(t, brokers, kgo.DefaultProduceTopic(topic))
	want := produce(t, cl, topic, "rec", 10)
	slices.Sort(want)
	if got := consumeAll(t, brokers, topic, 10); !slices.Equal(got, want) {
		t.Fatalf("consumed %q, want %q", got, want)
	}
	// The topic is there with its partitions, as made.
	md, err := Admin(t, brokers).Metadata(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Topics[topic].Partitions); n != 3 {
		t.Fatalf("topic %s has %d partitions, want 3", topic, n)
	}
}

// The three-node cluster takes records with acks from all in-sync replicas
// while one node is stopped, and again while another is killed, and loses
// none of them.
func TestClusterSurvivesOneBrokerDown(t *testing.T) {
	c := NewCluster(t)
	topic := c.Topic("kafkatest", 3)
	md, err := Admin(t, c.Brokers).Metadata(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics[topic].Partitions {
		if len(p.Replicas) != ClusterSize || len(p.ISR) != ClusterSize {
			t.Fatalf("partition %d: replicas %v, in sync %v; want %d of each", p.Partition, p.Replicas, p.ISR, ClusterSize)
		}
	}
	// acks from all in-sync replicas (min.insync.replicas=2), idempotent:
	// kgo's defaults, spelled out.
	cl := Client(t, c.Brokers, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000))
	want := produce(t, cl, topic, "before", 5)

	pid := c.Pid(1)
	if pid == 0 {
		t.Fatal("no pid for node 1")
	}
	start := time.Now()
	c.StopBroker(1)
	t.Logf("node 1 (pid %d) stopped in %v", pid, time.Since(start))
	if c.Pid(1) != 0 {
		t.Fatal("node 1 still runs after StopBroker")
	}
	want = append(want, produce(t, cl, topic, "stopped", 5)...)
	start = time.Now()
	c.StartBroker(1)
	t.Logf("node 1 started again in %v (pid %d)", time.Since(start), c.Pid(1))

	c.KillBroker(2)
	start = time.Now()
	want = append(want, produce(t, cl, topic, "killed", 5)...)
	t.Logf("5 records acknowledged %v after node 2 was killed", time.Since(start))

	slices.Sort(want)
	if got := consumeAll(t, c.Brokers, topic, len(want)); !slices.Equal(got, want) {
		t.Fatalf("consumed %q, want %q", got, want)
	}
}
