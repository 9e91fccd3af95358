package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/routes/routestest"
	"github.com/flowdex/flowdex/bench/gen"
	"github.com/flowdex/flowdex/internal/testports"
)

// bgpAggregate is the bgp scenario's aggregation: the 5-tuple, the
// exporter, and every BGP primitive both collectors take from their
// peers' tables, for the destination and the source.
var bgpAggregate = []string{"peer_src_ip", "src_host", "dst_host", "src_port", "dst_port", "proto",
	"src_as", "dst_as", "peer_dst_as", "as_path", "std_comm", "ext_comm", "lrg_comm", "local_pref", "med",
	"src_as_path", "src_std_comm", "src_ext_comm", "src_lrg_comm", "src_local_pref", "src_med"}

// bgpExporters is how many exporters the flows come from; the agent map
// spreads them over the peers.
const bgpExporters = 8

// bgpUsage is one collector's run: loading the peers' tables, then
// aggregating the flows with every lookup.
type bgpUsage struct {
	Load, LoadCPU      time.Duration // from the first byte sent to the collector's CPU going quiet; its CPU meanwhile
	BaseRSS, LoadedRSS int64         // the process tree's resident memory before the sessions and after the load
	FlowCPU            time.Duration // CPU from the load's end to the exit: the replay of the flows
}

type bgpTool struct {
	name string
	runs []bgpUsage
	err  error
}

type bgpCase struct {
	peers int
	delay time.Duration
	tools []*bgpTool
	agree string // whether the collectors' records were the same
}

type bgpResult struct {
	n4, n6, sets int
	totals       gen.Totals
	cases        []*bgpCase
	err          error
}

// measureBGP loads generated full tables from 2 and then 8 speakers into
// flowdex and into nfacctd's bgp_daemon, and replays a NetFlow export
// looked up in them, in one run, the collectors taking turns.
func measureBGP(bin, dir string, runs int, peerCounts []int, n4, n6, records int, delayPerPeer time.Duration) bgpResult {
	res := bgpResult{n4: n4, n6: n6}
	os.MkdirAll(dir, 0o755)
	if _, err := exec.LookPath("nfacctd"); err != nil {
		res.err = fmt.Errorf("nfacctd is not installed (apt-get install pmacct)")
		return res
	}
	log.Printf("bgp: generating a table of %d IPv4 and %d IPv6 prefixes", n4, n6)
	tbl := routestest.Generate(7, n4, n6)
	res.sets = len(tbl.Attrs)
	flows, totals, err := write(dir, fmt.Sprintf("bgp-flows-%d.pcap", records), func(f *os.File) (gen.Totals, error) {
		return gen.WriteNetFlow(f, gen.NetFlow{Version: 9, Records: records, Keys: 50_000, PerDatagram: 25, TemplateEvery: 20, Seed: 5,
			Exporters: bgpExporters, Routed: true})
	})
	if err != nil {
		res.err = err
		return res
	}
	res.totals = totals
	var tables []*table
	for _, peers := range peerCounts {
		for len(tables) < peers {
			log.Printf("bgp: serializing speaker %d's table", len(tables)+1)
			t, err := makeTable(tbl, len(tables))
			if err != nil {
				res.err = err
				return res
			}
			tables = append(tables, t)
		}
		c := &bgpCase{peers: peers, delay: 5*time.Second + time.Duration(peers)*delayPerPeer,
			tools: []*bgpTool{{name: "flowdex"}, {name: "nfacctd"}}}
		res.cases = append(res.cases, c)
		var agents strings.Builder
		for k := range bgpExporters {
			fmt.Fprintf(&agents, "bgp_ip=%s ip=192.0.2.%d\n", speakerAddr(k%peers), k+1)
		}
		agentMap := filepath.Join(dir, fmt.Sprintf("agents-%d.map", peers))
		if err := os.WriteFile(agentMap, []byte(agents.String()), 0o644); err != nil {
			res.err = err
			return res
		}
		outputs := map[string]string{}
		for r := range runs {
			for j := range c.tools {
				t := c.tools[(j+r)%len(c.tools)] // who goes first alternates
				if t.err != nil {
					continue
				}
				out := filepath.Join(dir, fmt.Sprintf("%s-%d.json", t.name, peers))
				u, err := bgpRun(t.name, bin, dir, flows, agentMap, out, tables[:peers], c.delay, totals)
				if err != nil {
					t.err = err
					log.Printf("bgp/%d peers/%s run %d: %v", peers, t.name, r+1, err)
					continue
				}
				outputs[t.name] = out
				log.Printf("bgp/%d peers/%s run %d: load %v (cpu %v), rss %d -> %d MiB, flows cpu %v", peers, t.name, r+1,
					u.Load.Round(time.Millisecond), u.LoadCPU.Round(time.Millisecond), u.BaseRSS>>20, u.LoadedRSS>>20, u.FlowCPU.Round(time.Millisecond))
				t.runs = append(t.runs, u)
			}
		}
		if len(outputs) == 2 {
			c.agree = compareOutputs(outputs["flowdex"], outputs["nfacctd"])
			log.Printf("bgp/%d peers: %s", peers, c.agree)
		}
	}
	return res
}

// bgpRun runs one collector: it starts, its resident memory is taken, the
// speakers send their tables, the load ends when its CPU goes quiet
// (under 10% of a core for a second), and the replay, delayed past that,
// runs to its end.
func bgpRun(name, bin, dir, flows, agents, out string, tables []*table, delay time.Duration, want gen.Totals) (bgpUsage, error) {
	var u bgpUsage
	os.Remove(out)
	ports, err := testports.Free(1)
	if err != nil {
		return u, err
	}
	port := ports[0]
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	var cmd *exec.Cmd
	switch name {
	case "flowdex":
		q, _ := json.Marshal(bgpAggregate)
		conf := fmt.Sprintf(`[log]
level = "warn"
[bgp]
listen = %q
asn = %d
[[bgp.peer]]
prefix = "127.0.0.0/24"
asn = %d
[[input]]
type = "netflow"
replay = %q
replay_delay = "%ds"
bgp_agent_map = %q
[[pipeline]]
aggregate = %s
as_source = "bgp"
[output.out]
type = "print"
file = %q
`, listen, speakerAS, speakerAS, flows, int(delay.Seconds()), agents, q, out)
		path := filepath.Join(dir, "flowdex-bgp.toml")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return u, err
		}
		cmd = exec.Command(bin, "run", "-c", path)
	case "nfacctd":
		conf := fmt.Sprintf(`daemonize: false
pcap_savefile: %s
pcap_savefile_delay: %d
bgp_daemon: true
bgp_daemon_ip: 127.0.0.1
bgp_daemon_port: %d
bgp_daemon_max_peers: 16
bgp_agent_map: %s
nfacctd_as: bgp
bgp_src_as_path_type: bgp
bgp_src_std_comm_type: bgp
bgp_src_ext_comm_type: bgp
bgp_src_lrg_comm_type: bgp
bgp_src_local_pref_type: bgp
bgp_src_med_type: bgp
plugins: print[out]
aggregate[out]: %s
print_output[out]: json
print_output_file[out]: %s
print_refresh_time: 86400
print_cache_entries: 99991
plugin_pipe_size: 268435456
plugin_buffer_size: 1048576
`, flows, int(delay.Seconds()), port, agents, strings.Join(bgpAggregate, ", "), out)
		path := filepath.Join(dir, "nfacctd-bgp.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return u, err
		}
		cmd = exec.Command("nfacctd", "-f", path)
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return u, err
	}
	stop := make(chan struct{})
	defer close(stop)
	fail := func(err error) (bgpUsage, error) {
		cmd.Process.Kill()
		wait(cmd, start)
		return u, fmt.Errorf("%w\n%s", err, tail(stderr.String()))
	}
	time.Sleep(2 * time.Second)
	base, err := processTree(cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	u.BaseRSS = base.rss
	errs := make(chan error, len(tables))
	sent := make([]chan struct{}, len(tables))
	t0 := time.Now()
	for i, t := range tables {
		sent[i] = make(chan struct{})
		go func() { errs <- speak(t, listen, sent[i], stop) }()
	}
	for i := range tables {
		select {
		case <-sent[i]:
		case err := <-errs:
			return fail(fmt.Errorf("a speaker ended: %v", err))
		case <-time.After(delay):
			return fail(fmt.Errorf("the tables were not taken within the replay delay %v", delay))
		}
	}
	// quiet: five polls of 200 ms in a row under 20 ms of CPU each
	prev, quietSince, quiet := base, time.Time{}, 0
	for quiet < 5 {
		time.Sleep(200 * time.Millisecond)
		now, err := processTree(cmd.Process.Pid)
		if err != nil {
			return fail(err)
		}
		if now.cpu-prev.cpu < 20*time.Millisecond {
			if quiet == 0 {
				quietSince = time.Now().Add(-200 * time.Millisecond)
			}
			quiet++
		} else {
			quiet = 0
		}
		prev = now
		if time.Since(start) > delay-time.Second {
			return fail(fmt.Errorf("still loading %v after the start: the replay would begin; raise the delay", delay))
		}
	}
	u.Load, u.LoadCPU, u.LoadedRSS = quietSince.Sub(t0), prev.cpu-base.cpu, prev.rss
	total, err := wait(cmd, start)
	if err != nil && !(name == "nfacctd" && strings.Contains(stderr.String(), "Purging cache - END")) {
		// nfacctd 1.7.7 exits 1 when its plugin ends first ("connection
		// lost to 'out-print'"), its purge done: the sums below judge it
		return u, fmt.Errorf("%w\n%s", err, tail(stderr.String()))
	}
	u.FlowCPU = total.CPU - prev.cpu
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

// treeUsage is a process tree's CPU so far and resident memory now.
type treeUsage struct {
	cpu time.Duration
	rss int64
}

// processTree sums /proc's CPU and RSS over pid and its descendants.
func processTree(pid int) (treeUsage, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return treeUsage{}, err
	}
	type proc struct {
		ppid     int
		cpu, rss int64 // clock ticks, pages
	}
	procs := map[int]*proc{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		rss, _ := strconv.ParseInt(f[21], 10, 64)
		procs[p] = &proc{ppid: ppid, cpu: ut + st, rss: rss}
	}
	if procs[pid] == nil {
		return treeUsage{}, fmt.Errorf("process %d ended", pid)
	}
	var u treeUsage
	for p, pr := range procs {
		for q := p; q > 1; {
			if q == pid {
				u.cpu += time.Duration(pr.cpu) * 10 * time.Millisecond // USER_HZ 100
				u.rss += pr.rss * int64(os.Getpagesize())
				break
			}
			next, ok := procs[q]
			if !ok {
				break
			}
			q = next.ppid
		}
	}
	return u, nil
}

// compareOutputs says whether two files of pmacct JSON records hold the
// same records (packets and bytes by every other field).
func compareOutputs(a, b string) string {
	ma, err := recordsOf(a)
	if err != nil {
		return "not compared: " + err.Error()
	}
	mb, err := recordsOf(b)
	if err != nil {
		return "not compared: " + err.Error()
	}
	diff, example := 0, ""
	for k, v := range ma {
		if mb[k] != v {
			diff++
			if example == "" {
				example = fmt.Sprintf("flowdex %s: %v, nfacctd: %v", k, v, mb[k])
			}
		}
	}
	for k, v := range mb {
		if _, ok := ma[k]; !ok {
			diff++
			if example == "" {
				example = fmt.Sprintf("nfacctd %s: %v, not in flowdex's", k, v)
			}
		}
	}
	if diff == 0 {
		return fmt.Sprintf("the same %d records", len(ma))
	}
	return fmt.Sprintf("%d of %d records differ (e.g. %s)", diff, max(len(ma), len(mb)), example)
}

func recordsOf(path string) (map[string][2]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][2]int64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		p, _ := m["packets"].(float64)
		by, _ := m["bytes"].(float64)
		for _, k := range []string{"packets", "bytes", "flows", "stamp_inserted", "stamp_updated", "event_type", "writer_id"} {
			delete(m, k)
		}
		k, _ := json.Marshal(m) // keys sorted
		v := out[string(k)]
		out[string(k)] = [2]int64{v[0] + int64(p), v[1] + int64(by)}
	}
	return out, sc.Err()
}

func writeBGP(b *strings.Builder, r *bgpResult) {
	fmt.Fprintf(b, "\n## bgp\n\nFull routing tables beside flows. Each peer is a BGP speaker of the harness (GoBGP's packet package, iBGP from 127.0.0.10 and up) that sends a generated table of %d IPv4 and %d IPv6 prefixes (routestest: today's prefix length mix, %d attribute sets shared Zipf-wise, behind the speaker's own upstream AS and next hop, so that no set is shared between peers) in UPDATEs packed by attribute set, then End-of-RIB. The collector (flowdex's [bgp]; nfacctd 1.7.7's bgp_daemon) starts, its resident memory is read (the process tree's, from /proc), the speakers send; the load ends when the collector's CPU goes quiet (under 10%% of a core for a second); its memory is read again. Then the replay (delayed past the load: flowdex's replay_delay, nfacctd's pcap_savefile_delay) of a NetFlow v9 export of %d flows from %d exporters, mapped to the peers in turn by a bgp_agent_map, over 50k 5-tuples whose addresses spread over the IPv4 space; every record is looked up for its destination and its source. Aggregation: %s (nfacctd_as bgp, bgp_src_*_type bgp; flowdex as_source bgp). The flows' CPU is the collector's CPU from the load's end to its exit. Every run's packet and byte sums were checked; the two collectors' records of the last run are compared. The collectors take turns going first.\n\n",
		r.n4, r.n6, r.sets, r.totals.Records, bgpExporters, strings.Join(bgpAggregate, ", "))
	if r.err != nil && len(r.cases) == 0 {
		fmt.Fprintf(b, "failed: %s\n", oneLine(r.err.Error()))
		return
	}
	b.WriteString("| peers | collector | runs | load s median (min-max) | load CPU s | RSS MiB before, loaded | bytes per prefix per peer | flows CPU s median (min-max) | flows/CPU-s | flowdex / nfacctd |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.cases {
		prefixes := float64(c.peers * (r.n4 + r.n6))
		var fdxPer, fdxTP float64
		for i, t := range c.tools {
			if len(t.runs) == 0 {
				fmt.Fprintf(b, "| %d | %s | 0 | failed: %s | | | | | | |\n", c.peers, t.name, oneLine(fmt.Sprint(t.err)))
				continue
			}
			load := stats(mapRuns(t.runs, func(u bgpUsage) float64 { return u.Load.Seconds() }))
			loadCPU := stats(mapRuns(t.runs, func(u bgpUsage) float64 { return u.LoadCPU.Seconds() }))
			baseRSS := stats(mapRuns(t.runs, func(u bgpUsage) float64 { return float64(u.BaseRSS) / (1 << 20) }))
			rss := stats(mapRuns(t.runs, func(u bgpUsage) float64 { return float64(u.LoadedRSS) / (1 << 20) }))
			per := stats(mapRuns(t.runs, func(u bgpUsage) float64 { return float64(u.LoadedRSS-u.BaseRSS) / prefixes }))
			flowCPU := stats(mapRuns(t.runs, func(u bgpUsage) float64 { return u.FlowCPU.Seconds() }))
			tp := stats(mapRuns(t.runs, func(u bgpUsage) float64 { return float64(r.totals.Records) / u.FlowCPU.Seconds() }))
			ratio := ""
			if i == 0 {
				fdxPer, fdxTP = per.med, tp.med
			} else if tp.med > 0 && per.med > 0 {
				ratio = fmt.Sprintf("memory %.2fx, throughput %.2fx", fdxPer/per.med, fdxTP/tp.med)
			}
			note := ""
			if t.err != nil {
				note = " (then failed: " + oneLine(t.err.Error()) + ")"
			}
			fmt.Fprintf(b, "| %d | %s%s | %d | %.1f (%.1f-%.1f) | %.1f | %.0f, %.0f | %.0f (%.0f-%.0f) | %.2f (%.2f-%.2f) | %.0f | %s |\n",
				c.peers, t.name, note, len(t.runs), load.med, load.lo, load.hi, loadCPU.med, baseRSS.med, rss.med, per.med, per.lo, per.hi,
				flowCPU.med, flowCPU.lo, flowCPU.hi, tp.med, ratio)
		}
	}
	b.WriteString("\n")
	for _, c := range r.cases {
		if c.agree != "" {
			fmt.Fprintf(b, "- %d peers, records of flowdex and nfacctd: %s\n", c.peers, c.agree)
		}
	}
}
