package engine

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// The daemon deletes old indices while it runs, again at each interval, and
// leaves the index it writes to alone.
func TestRunRetention(t *testing.T) {
	url := estest.URL(t)
	prefix := estest.Index(t, "flowdex-ret")
	retentionTiming.delay, retentionTiming.interval = 100*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { retentionTiming.delay, retentionTiming.interval = 0, 0 })
	old := prefix + "-2020.01.01"
	estest.CreateIndex(t, url, old)
	stdinR, stdinW := io.Pipe()
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
flush_interval = "100ms"
retention = "2d"
retention_interval = "1h"
`, url, prefix), stdinR)
	done := e.run(context.Background())
	now := time.Now().UTC()
	current := prefix + "-" + now.Format("2006.01.02")
	fmt.Fprintf(stdinW, `{"event_type": "purge", "ip_src": "192.0.2.1", "stamp_inserted": %q, "packets": 1, "bytes": 60}`+"\n", now.Format("2006-01-02 15:04:05"))

	testwatch.WaitFor(t, "the old index deleted and the current one made", 20*time.Second, func() bool {
		return slices.Equal(estest.Indices(t, url, prefix), []string{current})
	})
	old2 := prefix + "-2020.01.02"
	estest.CreateIndex(t, url, old2)
	testwatch.WaitFor(t, "the second old index deleted at the next run", 20*time.Second, func() bool {
		return !slices.Contains(estest.Indices(t, url, prefix), old2)
	})
	// the run counts what it deleted once Elasticsearch has answered: a
	// little after the index is gone
	var m map[string]float64
	testwatch.WaitFor(t, "the deletions counted", 20*time.Second, func() bool {
		m = testwatch.Metrics(t, "http://"+e.HTTPAddr())["flowdex_retention_total"]
		return m["event=deleted,output=es"] == 2
	})
	if m["event=runs,output=es"] < 2 || m["event=errors,output=es"] != 0 {
		t.Errorf("flowdex_retention_total %v, want 2 deleted in 2 or more runs, no error", m)
	}
	stdinW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%v\n%s", err, e.log)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the engine did not end\n%s", e.log)
	}
	if got := estest.Indices(t, url, prefix); !slices.Equal(got, []string{current}) {
		t.Fatalf("Elasticsearch holds %v, want %v", got, []string{current})
	}
	log := e.log.String()
	if !strings.Contains(log, "retention started") || !strings.Contains(log, "deleted=["+old+"]") || !strings.Contains(log, "deleted=["+old2+"]") {
		t.Fatalf("log:\n%s", log)
	}
}

// Ingest, a one-shot, does not run retention, however long its input lasts.
func TestIngestNoRetention(t *testing.T) {
	url := estest.URL(t)
	prefix := estest.Index(t, "flowdex-ret")
	retentionTiming.delay = time.Millisecond
	t.Cleanup(func() { retentionTiming.delay = 0 })
	old := prefix + "-2020.01.01"
	estest.CreateIndex(t, url, old)
	stdinR, stdinW := io.Pipe()
	e := startEngine(t, fmt.Sprintf(`
[[input]]
type = "pmacct"
file = "-"
timezone = "UTC"
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d"
replicas = 0
flush_interval = "100ms"
retention = "2d"
`, url, prefix), stdinR)
	done := make(chan error, 1)
	go func() {
		_, err := e.Ingest(context.Background())
		if _, stopErr := e.Stop(); err == nil {
			err = stopErr
		}
		done <- err
	}()
	fmt.Fprintln(stdinW, `{"event_type": "purge", "ip_src": "192.0.2.1", "stamp_inserted": "2026-01-01 00:00:00", "packets": 1, "bytes": 60}`)
	testwatch.WaitFor(t, "the record indexed", 20*time.Second, func() bool { return slices.Contains(estest.Indices(t, url, prefix), prefix+"-2026.01.01") })
	time.Sleep(time.Second) // the daemon would have deleted the old index by now (TestRunRetention)
	stdinW.Close()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, e.log)
	}
	if !slices.Contains(estest.Indices(t, url, prefix), old) {
		t.Fatalf("ingest deleted %s", old)
	}
}
