package engine

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flowdex/flowdex/aggregate/engine/config"
)

// syncBuffer is a bytes.Buffer safe for the engine's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEngine is an engine of the configuration text conf (its relative paths
// under a temporary directory), started, with its log in log.
type testEngine struct {
	*Engine
	log *syncBuffer
}

func startEngine(t *testing.T, conf string, stdin io.Reader) *testEngine {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "flowdex.toml"), []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	e, err := New(cfg, Options{Stdin: stdin, Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(log, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Listen(); err != nil {
		t.Fatal(err)
	}
	return &testEngine{Engine: e, log: log}
}

// run runs the engine until ctx is done or its inputs end, then stops it;
// the channel gets Run's error, or Stop's.
func (e *testEngine) run(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() {
		err := e.Run(ctx)
		if _, stopErr := e.Stop(); err == nil {
			err = stopErr
		}
		done <- err
	}()
	return done
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape reads /metrics at addr into name -> label set ("k=v,k=v") -> value.
func scrape(t *testing.T, addr string) map[string]map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for name, f := range families {
		out[name] = map[string]float64{}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
			out[name][strings.Join(labels, ",")] = v
		}
	}
	return out
}

// A pipeline that cannot be built is reported once, at its key, however many
// inputs feed it.
func TestNewReportsABrokenPipelineOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flowdex.toml")
	cfg, err := config.Parse(path, []byte(`[[input]]
type = "netflow"
listen = ["127.0.0.1:0"]
pipelines = ["p"]
[[input]]
type = "sflow"
listen = ["127.0.0.1:0"]
pipelines = ["p"]
[[pipeline]]
name = "p"
networks_file = "missing.lst"
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	want := path + `:11:1: pipeline#0.networks_file: networks file: open ` + filepath.Join(filepath.Dir(path), "missing.lst") + `: no such file or directory`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
