package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/collector/datagram"
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// A bin written at two refreshes reaches Elasticsearch as two documents that
// sum up, never one overwriting the other: the same NetFlow v9 datagrams sent
// twice, a flush between them, give every (key, bin) twice, with twice the
// packets and bytes of one replay of them.
func TestPartialBinsAddUp(t *testing.T) {
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) {
			url := srv.URL(t)
			export, err := filepath.Abs("../../collector/netflow/testdata/softflowd-v9.pcap")
			if err != nil {
				t.Fatal(err)
			}
			var payloads [][]byte
			if _, err := datagram.Replay(context.Background(), export, 0, func(d *datagram.Datagram) {
				payloads = append(payloads, append([]byte(nil), d.Payload...))
			}); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			index := estest.Index(t, "flowdex-test-bins")
			port := freeUDPPort(t)
			aggregate := `["src_host", "dst_host", "proto"]`
			conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
listen = ["127.0.0.1:%d"]
[[pipeline]]
name = "bins"
aggregate = %s
refresh = "1s"
history = "1h"
history_roundoff = "h" # bins from midnight: the live run and the replay start at different minutes
timestamps_utc = true
outputs = ["es"]
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m"
replicas = 0
flush_interval = "100ms"
`, port, aggregate, url, index))
			cmd, stderr := startFlowdex(t, conf)
			testwatch.WaitFor(t, "flowdex to listen", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "listening") })
			conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			send := func() {
				for _, p := range payloads {
					if _, err := conn.Write(p); err != nil {
						t.Fatal(err)
					}
				}
			}
			send()
			testwatch.WaitFor(t, "the first refresh to reach Elasticsearch", 30*time.Second, func() bool { return estest.Count(t, url, index+"-*") > 0 })
			first := estest.Count(t, url, index+"-*")
			send()
			testwatch.WaitFor(t, "the second refresh", 30*time.Second, func() bool { return estest.Count(t, url, index+"-*") >= 2*first })
			terminate(t, cmd, stderr)

			replay := writeFile(t, dir, "replay.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
replay = %q
[[pipeline]]
aggregate = %s
history = "1h"
history_roundoff = "h"
timestamps_utc = true
[output.file]
type = "print"
file = "replay.json"
`, export, aggregate))
			if code, _, stderr := runCLI(t, "", "run", "-c", replay); code != 0 {
				t.Fatalf("replay: exit %d\n%s", code, stderr)
			}
			once := loadSums(t, "replay", dir+"/replay.json")

			docs := estest.Docs(t, url, index+"-*")
			var sources []map[string]any
			perKey := map[string]int{}
			for _, d := range docs {
				sources = append(sources, d.Source)
				one, err := sumDocs([]map[string]any{d.Source})
				if err != nil {
					t.Fatal(err)
				}
				for k := range one {
					perKey[k]++
				}
			}
			got, err := sumDocs(sources)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(once) {
				t.Fatalf("%d keys in Elasticsearch, %d in one replay", len(got), len(once))
			}
			for k, w := range once {
				g := got[k]
				if perKey[k] != 2 || g.packets != 2*w.packets || g.bytes != 2*w.bytes {
					t.Errorf("%s: %d documents, %d packets, %d bytes; want 2 documents, %d packets, %d bytes",
						k, perKey[k], g.packets, g.bytes, 2*w.packets, 2*w.bytes)
				}
			}
		})
	}
}

// exporters is an allow-list: datagrams from other sources are dropped before
// decoding, counted and logged with their source.
func TestExporterAllowList(t *testing.T) {
	export, err := filepath.Abs("../../collector/netflow/testdata/softflowd-v9.pcap") // one exporter, 192.0.2.1
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		allow    string
		rejected string
		records  bool
	}{
		{`["192.0.2.0/24"]`, "rejected_exporters=0", true},
		{`["198.51.100.0/24", "2001:db8::/32"]`, "rejected_exporters=1", false},
	} {
		dir := t.TempDir()
		out := filepath.Join(dir, "out.json")
		conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
replay = %q
exporters = %s
[[pipeline]]
aggregate = ["src_host", "dst_host"]
[output.p]
type = "print"
file = %q
`, export, tt.allow, out))
		code, _, stderr := runCLI(t, "", "run", "-c", conf)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if !strings.Contains(stderr, tt.rejected) {
			t.Errorf("allow %s: want %s in\n%s", tt.allow, tt.rejected, stderr)
		}
		if !tt.records && !strings.Contains(stderr, `exporter=192.0.2.1:`) {
			t.Errorf("the dropped datagram's source is not logged:\n%s", stderr)
		}
		lines, _ := readLines(out)
		if (len(lines) > 0) != tt.records {
			t.Errorf("allow %s: %d records written", tt.allow, len(lines))
		}
	}
}
