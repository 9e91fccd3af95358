package engine

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/sink/elasticsearch"
)

// The directory Start makes for a dead-letter file is its owner's only, as
// the file is: both hold flow records.
func TestDeadLetterDirMode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // a port nothing listens on once closed
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	o := &config.ElasticsearchOutput{Configuration: elasticsearch.DefaultConfiguration()}
	o.URLs = []string{"http://" + l.Addr().String()}
	dir := filepath.Join(t.TempDir(), "dead")
	o.DeadLetterFile = filepath.Join(dir, "es.ndjson")
	out, err := newElasticsearch("es", o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Start(context.Background()); err == nil { // unreachable, no spool: refused
		out.Stop(context.Background())
		t.Fatal("started without Elasticsearch")
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Mode().Perm(); m != 0o700 {
		t.Errorf("dead-letter directory mode %v, want 0700", m)
	}
}
