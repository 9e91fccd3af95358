// Command harness runs flowdex beside the tools an operator would use
// instead, on the same generated inputs, on the same machine, in one run, and
// writes bench/RESULTS.md: medians and ranges of wall time, CPU time and peak
// RSS, throughput per CPU-second, and the ratio flowdex/peer. Every run's
// packet and byte sums are checked against what the input holds: a fast wrong
// answer is an error, not a result.
//
//	go run ./bench/harness [-runs 3] [-scale 1] [-only netflow9,ipfix,sflow,pcap,memory,ingest,live,kafka,bgp] [-bgp-peers 2,8] [-es URL] [-out bench/RESULTS.md]
//
// Peers: Debian's nfacctd, sfacctd and pmacctd (pcap_savefile, print plugin),
// and a goflow2 v2 decode-and-count loop (this command with -goflow2, the
// ceiling for generic decoding); Kafka's producer and consumer perf tests
// (the broker's ceiling) for the scale-out path through Kafka; nfacctd's
// bgp_daemon for full routing tables (bgp).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowdex/flowdex/bench/gen"
	"github.com/flowdex/flowdex/collector/datagram"
)

// aggregate is every scenario's aggregation, on both sides.
var aggregate = []string{"src_host", "dst_host", "src_port", "dst_port", "proto", "tos"}

type tool struct {
	name string
	// cmd makes the command for one run, writing its aggregates to out
	cmd func(dir, input, out string) (*exec.Cmd, error)
	// sums: the tool's output is checked against the input's totals;
	// count: the tool prints the number of records it decoded, checked too
	sums, count bool
}

type scenario struct {
	name, what, unit string
	input            func(dir string) (string, gen.Totals, error)
	flowdex          tool
	peers            []tool
}

type measured struct {
	tool string
	runs []usage
	err  error
}

func main() {
	runs := flag.Int("runs", 3, "runs of each tool")
	scale := flag.Float64("scale", 1, "input size factor (1: 2M NetFlow records, 1M sFlow samples, 5M packets)")
	only := flag.String("only", "", "comma-separated scenarios (default all)")
	out := flag.String("out", "bench/RESULTS.md", "results file")
	work := flag.String("work", filepath.Join(os.TempDir(), "flowdex-bench"), "directory for inputs and outputs")
	esURL := flag.String("es", "", "Elasticsearch for the ingest, live and kafka scenarios (default: es.sh start 8)")
	bgpPeers := flag.String("bgp-peers", "2,8", "bgp: the numbers of full-table peers, one case each")
	bgpDelay := flag.Duration("bgp-delay", 0, "bgp: the replay's delay per peer, past the load (default 15s times -scale)")
	goflow2 := flag.String("goflow2", "", "internal: decode this NetFlow/IPFIX pcap with goflow2 and print the record count")
	flag.Parse()
	if *goflow2 != "" {
		goflow2Loop(*goflow2)
		return
	}
	if err := os.MkdirAll(*work, 0o755); err != nil {
		log.Fatal(err)
	}
	wants := func(s string) bool { return *only == "" || slices.Contains(strings.Split(*only, ","), s) }
	// the servers start before the harness becomes a subreaper: they would be
	// reparented to it, and every run's reaping would wait for them
	if *esURL == "" && (wants("ingest") || wants("live") || wants("kafka")) {
		*esURL = startES(*work)
	}
	var brokers string
	if wants("kafka") {
		b, err := startKafka(*work)
		if err != nil {
			log.Fatalf("kafka: %v", err)
		}
		brokers = b
		defer stopKafka()
	}
	if err := becomeSubreaper(); err != nil {
		log.Fatalf("harness: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	bin := filepath.Join(*work, "flowdex")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/flowdex").CombinedOutput(); err != nil {
		log.Fatalf("go build ./cmd/flowdex (run the harness from the repository root): %v\n%s", err, out)
	}
	scenarios := makeScenarios(bin, self, *scale)
	var results []result
	for _, sc := range scenarios {
		if !wants(sc.name) {
			continue
		}
		log.Printf("%s: generating the input", sc.name)
		dir := filepath.Join(*work, sc.name)
		os.MkdirAll(dir, 0o755)
		input, totals, err := sc.input(dir)
		if err != nil {
			log.Fatalf("%s: %v", sc.name, err)
		}
		res := result{sc: sc, totals: totals}
		for _, t := range append([]tool{sc.flowdex}, sc.peers...) {
			m := measured{tool: t.name}
			for i := range *runs {
				u, err := runTool(dir, input, t, totals)
				if err != nil {
					m.err = err
					log.Printf("%s/%s run %d: %v", sc.name, t.name, i+1, err)
					break
				}
				log.Printf("%s/%s run %d: wall %v cpu %v rss %d MiB", sc.name, t.name, i+1, u.Wall.Round(time.Millisecond), u.CPU.Round(time.Millisecond), u.MaxRSS>>20)
				m.runs = append(m.runs, u)
			}
			res.tools = append(res.tools, m)
		}
		results = append(results, res)
	}
	var mem *memoryResult
	if wants("memory") {
		m, err := measureMemory(bin, filepath.Join(*work, "memory"), *runs, n(*scale, 1_000_000))
		if err != nil {
			log.Printf("memory: %v", err)
		}
		mem = &m
	}
	var ing *ingestResult
	if wants("ingest") {
		r := measureIngest(bin, filepath.Join(*work, "ingest"), *esURL, *runs, n(*scale, 1_000_000))
		ing = &r
	}
	var live *liveResult
	if wants("live") {
		r := measureLive(bin, filepath.Join(*work, "live"), *esURL, *runs, n(*scale, 2_000_000))
		live = &r
	}
	var kafka *kafkaResult
	if wants("kafka") {
		r := measureKafka(bin, filepath.Join(*work, "kafka"), *esURL, brokers, *runs, n(*scale, 1_000_000))
		if r.err != nil {
			log.Printf("kafka: %v", r.err)
		}
		kafka = &r
	}
	var bgp *bgpResult
	if wants("bgp") {
		var peers []int
		for _, f := range strings.Split(*bgpPeers, ",") {
			var p int
			if _, err := fmt.Sscan(f, &p); err != nil || p < 1 || p > 200 {
				log.Fatalf("-bgp-peers %q: expected numbers from 1 to 200", *bgpPeers)
			}
			peers = append(peers, p)
		}
		if *bgpDelay == 0 {
			*bgpDelay = time.Duration(float64(15*time.Second) * *scale)
		}
		r := measureBGP(bin, filepath.Join(*work, "bgp"), *runs, peers, n(*scale, 1_000_000), n(*scale, 200_000), n(*scale, 2_000_000), *bgpDelay)
		if r.err != nil {
			log.Printf("bgp: %v", r.err)
		}
		bgp = &r
	}
	if err := writeResults(*out, results, mem, ing, live, kafka, bgp, *runs, *scale, *only); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", *out)
}

// runTool runs one tool once and checks its sums.
func runTool(dir, input string, t tool, want gen.Totals) (usage, error) {
	out := filepath.Join(dir, t.name+".json")
	os.Remove(out)
	cmd, err := t.cmd(dir, input, out)
	if err != nil {
		return usage{}, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	u, err := run(cmd)
	if err != nil {
		return u, fmt.Errorf("%v\n%s", err, tail(stderr.String()))
	}
	if t.count {
		var n int64
		if _, err := fmt.Sscan(stdout.String(), &n); err != nil || n != want.Records {
			return u, fmt.Errorf("decoded %q records; the input holds %d", strings.TrimSpace(stdout.String()), want.Records)
		}
	}
	if !t.sums {
		return u, nil
	}
	got, err := sumFile(out)
	if err != nil {
		return u, err
	}
	if got.Packets != want.Packets || got.Bytes != want.Bytes {
		return u, fmt.Errorf("wrong sums: %d packets, %d bytes; the input holds %d packets, %d bytes\n%s",
			got.Packets, got.Bytes, want.Packets, want.Bytes, tail(stderr.String()))
	}
	return u, nil
}

// sumFile adds up packets and bytes over a file of pmacct JSON records.
func sumFile(path string) (gen.Totals, error) {
	f, err := os.Open(path)
	if err != nil {
		return gen.Totals{}, err
	}
	defer f.Close()
	var t gen.Totals
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct{ Packets, Bytes int64 }
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		t.Records++
		t.Packets += r.Packets
		t.Bytes += r.Bytes
	}
	return t, sc.Err()
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// flowdexTool runs flowdex on the input (kind: netflow, sflow or pcap).
func flowdexTool(bin, kind string) tool {
	return tool{name: "flowdex", sums: true, cmd: func(dir, input, out string) (*exec.Cmd, error) {
		key := "replay"
		if kind == "pcap" {
			key = "file"
		}
		q, _ := json.Marshal(aggregate)
		conf := fmt.Sprintf("[log]\nlevel = \"warn\"\n[[input]]\ntype = %q\n%s = %q\n[[pipeline]]\naggregate = %s\n[output.out]\ntype = \"print\"\nfile = %q\n",
			kind, key, input, q, out)
		path := filepath.Join(dir, "flowdex.toml")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return exec.Command(bin, "run", "-c", path), nil
	}}
}

// pmacctTool runs a pmacct daemon on the input as a pcap_savefile, with one
// print plugin.
func pmacctTool(daemon string) tool {
	return tool{name: daemon, sums: true, cmd: func(dir, input, out string) (*exec.Cmd, error) {
		if _, err := exec.LookPath(daemon); err != nil {
			return nil, fmt.Errorf("%s is not installed (apt-get install pmacct)", daemon)
		}
		// large plugin pipe and buffer, as pmacct advises for throughput:
		// with the defaults the core waits on the plugin, and a 2M-record
		// replay takes 80 s of wall time for 3 s of CPU (a 4 MiB buffer lost
		// 41% of the flows, silently: the sums check caught it)
		conf := fmt.Sprintf("daemonize: false\npcap_savefile: %s\nplugins: print[out]\naggregate[out]: %s\nprint_output[out]: json\n"+
			"print_output_file[out]: %s\nprint_refresh_time: 86400\nprint_cache_entries: 99991\n"+
			"plugin_pipe_size: 268435456\nplugin_buffer_size: 1048576\n",
			input, strings.Join(aggregate, ", "), out)
		path := filepath.Join(dir, daemon+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return exec.Command(daemon, "-f", path), nil
	}}
}

// n scales an input size, to at least 1000.
func n(scale float64, x int) int { return max(1000, int(float64(x)*scale)) }

func makeScenarios(bin, self string, scale float64) []scenario {
	n := func(x int) int { return n(scale, x) }
	netflowInput := func(version int) func(string) (string, gen.Totals, error) {
		return func(dir string) (string, gen.Totals, error) {
			return write(dir, fmt.Sprintf("netflow%d-%d.pcap", version, n(2_000_000)), func(f *os.File) (gen.Totals, error) {
				return gen.WriteNetFlow(f, gen.NetFlow{Version: version, Records: n(2_000_000), Keys: 50_000, PerDatagram: 25, TemplateEvery: 20, Seed: 1})
			})
		}
	}
	goflowTool := tool{name: "goflow2-decode", count: true, cmd: func(dir, input, out string) (*exec.Cmd, error) {
		return exec.Command(self, "-goflow2", input), nil
	}}
	return []scenario{
		{name: "netflow9", what: "replay of a NetFlow v9 export over 50k 5-tuples, 25 records per datagram, the template every 20 datagrams",
			unit: "flows", input: netflowInput(9), flowdex: flowdexTool(bin, "netflow"),
			peers: []tool{pmacctTool("nfacctd"), goflowTool}},
		{name: "ipfix", what: "replay of an IPFIX export over 50k 5-tuples, 25 records per datagram, the template every 20 datagrams",
			unit: "flows", input: netflowInput(10), flowdex: flowdexTool(bin, "netflow"),
			peers: []tool{pmacctTool("nfacctd"), goflowTool}},
		{name: "sflow", what: "replay of an sFlow v5 export: flow samples with raw Ethernet/IPv4 headers over 50k 5-tuples, 8 per datagram",
			unit: "samples", flowdex: flowdexTool(bin, "sflow"), peers: []tool{pmacctTool("sfacctd")},
			input: func(dir string) (string, gen.Totals, error) {
				return write(dir, fmt.Sprintf("sflow-%d.pcap", n(1_000_000)), func(f *os.File) (gen.Totals, error) {
					return gen.WriteSFlow(f, gen.SFlow{Samples: n(1_000_000), Keys: 50_000, PerDatagram: 8, Rate: 1000, Seed: 2})
				})
			}},
		{name: "pcap", what: "a raw packet capture: Ethernet/IPv4 TCP and UDP packets (64-byte snapshots) over 50k 5-tuples",
			unit: "packets", flowdex: flowdexTool(bin, "pcap"), peers: []tool{pmacctTool("pmacctd")},
			input: func(dir string) (string, gen.Totals, error) {
				return write(dir, fmt.Sprintf("traffic-%d.pcap", n(5_000_000)), func(f *os.File) (gen.Totals, error) {
					return gen.WriteTraffic(f, gen.Traffic{Packets: n(5_000_000), Keys: 50_000, Seed: 3})
				})
			}},
	}
}

// write makes dir/name with fn unless it exists from an earlier run (the
// inputs are deterministic and their names carry their size); the totals are
// kept beside it.
func write(dir, name string, fn func(*os.File) (gen.Totals, error)) (string, gen.Totals, error) {
	path := filepath.Join(dir, name)
	meta := path + ".totals.json"
	var t gen.Totals
	if b, err := os.ReadFile(meta); err == nil && json.Unmarshal(b, &t) == nil {
		if _, err := os.Stat(path); err == nil {
			return path, t, nil
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return "", t, err
	}
	t, err = fn(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", t, err
	}
	b, _ := json.Marshal(t)
	return path, t, os.WriteFile(meta, b, 0o644)
}

// goflow2Loop decodes every datagram of a NetFlow v9/IPFIX pcap with
// goflow2's generic decoder and counts the data records: the work a
// goflow2-based collector does before converting and aggregating.
func goflow2Loop(path string) {
	ts := goflow.CreateTemplateSystem()
	records := 0
	_, err := datagram.Replay(context.Background(), path, 0, func(d *datagram.Datagram) {
		var p9 goflow.NFv9Packet
		var p10 goflow.IPFIXPacket
		if err := goflow.DecodeMessageVersion(bytes.NewBuffer(d.Payload), ts, &p9, &p10); err != nil {
			log.Fatalf("goflow2: %v", err)
		}
		for _, fs := range p9.FlowSets {
			if df, ok := fs.(goflow.DataFlowSet); ok {
				records += len(df.Records)
			}
		}
		for _, fs := range p10.FlowSets {
			if df, ok := fs.(goflow.DataFlowSet); ok {
				records += len(df.Records)
			}
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(records, "records", runtime.Version())
}

// startES starts es.sh's Elasticsearch 8 (if it is not running) and returns its URL.
func startES(work string) string {
	// the node keeps the descriptors es.sh was given: a pipe would never
	// close, so its output goes to a file
	esLog := filepath.Join(work, "es.sh.log")
	f, err := os.Create(esLog)
	if err != nil {
		log.Fatal(err)
	}
	start := exec.Command("sink/elasticsearch/estest/es.sh", "start", "8")
	start.Stdout, start.Stderr = f, f
	err = start.Run()
	f.Close()
	if err != nil {
		b, _ := os.ReadFile(esLog)
		log.Fatalf("es.sh start 8: %v\n%s", err, b)
	}
	out, err := exec.Command("sink/elasticsearch/estest/es.sh", "url", "8").Output()
	if err != nil {
		log.Fatalf("es.sh url 8: %v", err)
	}
	return strings.TrimSpace(string(out))
}
