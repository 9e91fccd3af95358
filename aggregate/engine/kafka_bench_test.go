package engine

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/sink/file"
)

// BenchmarkKafkaMessage: the kafka input's work for one message of pmacct's
// kafka plugin (one JSON record) into the print output, without the broker:
// ns/op is flowdex's own cost per message, the part of the consume rate that
// bench/harness's kafka scenario compares with kafka-consumer-perf-test.
func BenchmarkKafkaMessage(b *testing.B) {
	data, err := os.ReadFile("../../collector/pmacct/testdata/out/print-default.json")
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	sink := file.New(file.Configuration{Path: "-", Stdout: io.Discard})
	ctx := context.Background()
	if err := sink.Start(ctx); err != nil {
		b.Fatal(err)
	}
	p := &pipeline{name: "bench", outputs: []*namedOutput{{name: "print", output: printOutput{sink}}}}
	logger := slog.New(slog.DiscardHandler)
	k := newKafkaInput(&config.KafkaInput{InputCommon: config.InputCommon{Name: "bench"}}, p, &counters{}, logger)
	r := &kgo.Record{Topic: "flows", Partition: 3}
	b.SetBytes(int64(len(data) / len(lines)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Offset, r.Value = int64(i), lines[i%len(lines)]
		if err := k.Message(ctx, 0, r); err != nil {
			b.Fatal(err)
		}
	}
	if k.badMsg.Load() != 0 {
		b.Fatalf("%d bad messages", k.badMsg.Load())
	}
}
