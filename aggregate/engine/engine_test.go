package engine

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/internal/testwatch"
)

// testEngine is an engine of the configuration text conf (its relative paths
// under a temporary directory), started, with its log in log.
type testEngine struct {
	*Engine
	log *testwatch.Log
}

func startEngine(t *testing.T, conf string, stdin io.Reader) *testEngine {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "flowdex.toml"), []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	log := &testwatch.Log{}
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
