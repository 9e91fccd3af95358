package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// A record whose ip_src is not an address is indexed, Elasticsearch leaving
// the field out of the index (ignore_malformed, _ignored), and flowdex says
// so: counted per output on /metrics, and a warning naming field, value and
// index.
func TestMalformedAddressCounted(t *testing.T) {
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) {
			url := srv.URL(t)
			index := estest.Index(t, "flowdex-badaddr")
			in := `{"event_type": "purge", "ip_src": "not-an-address", "ip_dst": "192.0.2.2", "stamp_inserted": "2024-01-02 03:04:05", "packets": 1, "bytes": 60}` + "\n" +
				`{"event_type": "purge", "ip_src": "192.0.2.1", "ip_dst": "192.0.2.2", "stamp_inserted": "2024-01-02 03:04:05", "packets": 2, "bytes": 120}` + "\n"
			e := startEngine(t, fmt.Sprintf(`
[http]
listen = "127.0.0.1:0"
[[input]]
type = "pmacct"
file = "-"
timezone = "UTC"
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d"
replicas = 0
`, url, index), strings.NewReader(in))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := e.Run(ctx); err != nil {
				t.Fatal(err)
			}
			m := testwatch.Metrics(t, "http://"+e.HTTPAddr())
			reports, err := e.Stop()
			if err != nil {
				t.Fatal(err)
			}
			if r := reports["es"]; r.Indexed != 2 || r.Failed != 0 {
				t.Errorf("report %+v, want 2 indexed", r)
			}
			if got := m["flowdex_output_malformed_addresses_total"]["output=es"]; got != 1 {
				t.Errorf("flowdex_output_malformed_addresses_total %v, want 1", got)
			}
			if log := e.log.String(); !strings.Contains(log, "field=ip_src") || !strings.Contains(log, "not-an-address") ||
				!strings.Contains(log, "index="+index+"-2024.01.02") {
				t.Errorf("no warning naming field, value and index:\n%s", log)
			}
			if n := estest.Count(t, url, index+"-*"); n != 2 {
				t.Errorf("%d documents, want 2", n)
			}
			ignored := estest.Search(t, url, index+"-*", `{"query": {"term": {"_ignored": "ip_src"}}}`)
			if len(ignored) != 1 || ignored[0]["ip_src"] != "not-an-address" || ignored[0]["bytes"] != float64(60) {
				t.Errorf("documents with ip_src ignored: %v, want the first record", ignored)
			}
		})
	}
}

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
	o.StartTimeout.Duration = time.Second // refused until then
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
