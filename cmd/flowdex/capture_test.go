package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/collector/pcap"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// Live capture on lo while the test makes real traffic (HTTP requests to a
// local server, ping): what flowdex puts in Elasticsearch equals what pmacctd
// makes of tcpdump's capture of the same interface at the same time.
func TestCaptureLiveMatchesTcpdump(t *testing.T) {
	requireTools(t, "pmacctd", "tcpdump", "ping")
	// capturing needs CAP_NET_RAW, a property of the machine, not a server
	probe := pcap.DefaultConfiguration()
	probe.Interface = "lo"
	c, err := pcap.Open(probe, nil)
	if err != nil {
		t.Skipf("this machine cannot capture on lo (uid %d): %v", os.Geteuid(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Run(ctx, nil) // closes it
	url := estest.URL(t)
	index := estest.Index(t, "flowdex-test-capture")
	dir := t.TempDir()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("flowdex ", 500))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	filter := fmt.Sprintf("tcp port %s or icmp", port)
	aggregate := []string{"src_host", "dst_host", "src_port", "dst_port", "proto"}

	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pcap"
interface = "lo"
filter = %q
[[pipeline]]
name = "lo"
aggregate = %s
timestamps_utc = true
outputs = ["es"]
`, filter, tomlStrings(aggregate))+esOutputTOML(url, index))
	fdx, fdxErr := startFlowdex(t, conf)
	trace := filepath.Join(dir, "lo.pcap")
	dump := exec.Command("tcpdump", "-i", "lo", "-U", "-n", "-w", trace, filter)
	var dumpErr syncBuffer
	dump.Stderr = &dumpErr
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	defer dump.Process.Kill()
	waitFor(t, "flowdex to capture", 20*time.Second, func() bool { return strings.Contains(fdxErr.String(), "capturing") })
	waitFor(t, "tcpdump to capture", 20*time.Second, func() bool { return strings.Contains(dumpErr.String(), "listening on") })
	time.Sleep(300 * time.Millisecond) // both filters installed

	for range 5 {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	srv.CloseClientConnections()
	if out, err := exec.Command("ping", "-c", "3", "-i", "0.2", "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	time.Sleep(time.Second)
	dump.Process.Signal(syscall.SIGINT)
	dump.Wait()
	terminate(t, fdx, fdxErr)

	pm := filepath.Join(dir, "pmacctd.json")
	if err := runPmacct(context.Background(), dir, pmacctRun{daemon: "pmacctd", savefile: trace,
		plugins: []pmacctPlugin{{name: "lo", aggregate: aggregate, file: pm}}}); err != nil {
		t.Fatal(err)
	}
	want := loadSums(t, "pmacctd on tcpdump's capture", pm)
	var docs []map[string]any
	for _, d := range estest.Docs(t, url, index+"-*") {
		docs = append(docs, d.Source)
	}
	got, err := sumDocs(docs)
	if err != nil {
		t.Fatal(err)
	}
	gp, gb := got.total()
	wp, wb := want.total()
	t.Logf("Elasticsearch: %d keys, %d packets, %d bytes; pmacctd on tcpdump's capture: %d keys, %d packets, %d bytes", len(got), gp, gb, len(want), wp, wb)
	if wp < 20 {
		t.Fatalf("tcpdump saw %d packets: the traffic did not happen\n%s", wp, dumpErr.String())
	}
	if diffs := diffSums(got, want); len(diffs) > 0 {
		t.Errorf("%d of %d keys differ:\n%s\nflowdex said:\n%s", len(diffs), len(want), strings.Join(diffs, "\n"), fdxErr.String())
	}
}
