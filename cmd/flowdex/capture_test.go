package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// Live capture on lo while the test makes real traffic (HTTP requests to a
// local server, ping, a UDP datagram): what flowdex puts in Elasticsearch
// equals what pmacctd makes of tcpdump's capture of the same interface at the
// same time.
//
// The traffic goes to an address of the test's own (lo has all of
// 127.0.0.0/8) and both captures filter on it: lo carries other processes'
// traffic, a second copy of this test's pings among them. The captures end
// when both have the last packet, a UDP marker, not after a sleep.
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
	addr := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("flowdex ", 500))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	marker, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	filter := "host " + addr
	aggregate := []string{"src_host", "dst_host", "src_port", "dst_port", "proto"}
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))

	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q
[[input]]
name = "lo"
type = "pcap"
interface = "lo"
filter = %q
[[pipeline]]
name = "lo"
aggregate = %s
timestamps_utc = true
outputs = ["es"]
`, strings.TrimPrefix(base, "http://"), filter, tomlStrings(aggregate))+esOutputTOML(url, index))
	fdx, fdxErr := startFlowdex(t, conf)
	trace := filepath.Join(dir, "lo.pcap")
	// -U --immediate-mode: each packet is in the file as soon as it is
	// captured; -s and -B as flowdex's capture: an immediate-mode ring of
	// 2 MB in frames of the default 256 KiB snaplen holds 8 packets, which a
	// loaded machine overflows
	dump := exec.Command("tcpdump", "-i", "lo", "-U", "--immediate-mode", "-s", "512", "-B", "16384", "-n", "-w", trace, filter)
	var dumpErr testwatch.Log
	dump.Stderr = &dumpErr
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	defer dump.Process.Kill()
	// both log once their filter is installed
	testwatch.WaitFor(t, "flowdex to capture", 20*time.Second, func() bool { return strings.Contains(fdxErr.String(), "capturing") })
	testwatch.WaitFor(t, "tcpdump to capture", 20*time.Second, func() bool { return strings.Contains(dumpErr.String(), "listening on") })

	client := &http.Client{Transport: &http.Transport{}}
	for range 5 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	srv.CloseClientConnections()
	if out, err := exec.Command("ping", "-c", "3", "-i", "0.2", addr).CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	const mark = "flowdex-capture-marker"
	if _, err := marker.WriteToUDP([]byte(mark), marker.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	// the marker is the last packet: once tcpdump's file has it and flowdex
	// has read as many packets, both have all of them
	var packets int
	var read float64
	var marked bool
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		packets, marked = pcapPackets(t, trace, mark)
		read = testwatch.Metrics(t, base)["flowdex_capture_packets_total"]["input=lo"]
		if marked && read == float64(packets) {
			break
		}
		if time.Now().After(deadline) {
			dump.Process.Signal(syscall.SIGINT) // its drops, if any, on stderr
			dump.Wait()
			t.Fatalf("timed out waiting for the marker in tcpdump's file (there: %v, %d packets) and as many packets read by flowdex (%v)\ntcpdump: %s",
				marked, packets, read, dumpErr.String())
		}
	}
	dump.Process.Signal(syscall.SIGINT)
	dump.Wait()
	terminate(t, fdx, fdxErr)
	if n, _ := pcapPackets(t, trace, mark); n != packets {
		t.Fatalf("tcpdump's file has %d packets at its end, %d when flowdex had read as many: traffic after the marker?", n, packets)
	}

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

// pcapPackets counts the complete packets of a pcap file that tcpdump may
// still be writing, and tells whether one of them holds marker.
func pcapPackets(t *testing.T, path, marker string) (n int, marked bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 24 {
		return 0, false // not created, or no header yet
	}
	var order binary.ByteOrder = binary.LittleEndian
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		t.Fatalf("%s is not a pcap file", path)
	}
	for off := 24; off+16 <= len(b); n++ {
		end := off + 16 + int(order.Uint32(b[off+8:]))
		if end > len(b) {
			break // being written
		}
		marked = marked || bytes.Contains(b[off+16:end], []byte(marker))
		off = end
	}
	return n, marked
}
