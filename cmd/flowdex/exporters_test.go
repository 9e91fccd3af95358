package main

// Golden tests against real exporters and Debian's pmacct: softflowd and
// pmacctd's nfprobe and sfprobe plugins export a traffic pcap to a socket of
// the test, the datagrams are written into a pcap, and nfacctd or sfacctd
// (pcap_savefile) and flowdex (replay) aggregate that same pcap. Their records
// must be the same multiset of primitives -> packets, bytes (and tcp_flags).
//
// Known pmacct 1.7.7 bugs, named where they are worked around:
//   - nfacctd reads the NetFlow v9 header count as a number of FlowSets
//     (fixV9Counts): nfacctd gets the datagrams with raised counts, and a
//     subtest shows what it loses on the exporter's own datagrams;
//   - sfacctd zeroes packets and bytes when sampling_direction is aggregated:
//     no aggregate here has it;
//   - nfacctd and sfacctd match IPv6 addresses against networks_file on their
//     first 32 bits and take the first IPv6 entry's AS: networks.lst has a
//     single IPv6 prefix, a /32;
//   - sfacctd (1.7.7 to 1.7.9; fixed upstream by d1239c11) reads an IPv6
//     sampled header's traffic class as the low nibble of its first byte,
//     the class's top four bits: sfacctdTrafficClass.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

const (
	// exportTraffic is what the exporters see: see testdata/exporters/mkpcap.
	exportTraffic = "testdata/exporters/traffic.pcap"
	// pmacctTraffic is the smaller pcap of the pmacct samples: softflowd's
	// sampled NetFlow v9 export of it hits nfacctd's count bug.
	pmacctTraffic  = "../../collector/pmacct/testdata/traffic.pcap"
	exportNetworks = "testdata/exporters/networks.lst"
)

// exporterCase is one exporter configuration.
type exporterCase struct {
	name  string
	sflow bool // sFlow, to sfacctd; else NetFlow/IPFIX, to nfacctd
	// command starts the exporter, sending to 127.0.0.1:port; dir is for its files
	command func(dir string, port int) (*exec.Cmd, error)
	probes  int  // pmacctd: the probe plugins that must have started
	l2      bool // the export carries MACs and VLANs
	sampled bool // the export carries a sampling rate
	// countBug: some datagrams have a v9 count below their FlowSet count
	countBug bool
	// samplingMap, when set, is a rate for 127.0.0.1 given in the collectors'
	// configuration (nfacctd sampling_map, flowdex [[input.sampling]]), which
	// wins over what the export says
	samplingMap int
}

func softflowd(traffic string, args ...string) func(string, int) (*exec.Cmd, error) {
	return func(_ string, port int) (*exec.Cmd, error) {
		abs, err := filepath.Abs(traffic)
		if err != nil {
			return nil, err
		}
		// -a: flow and export times from the pcap, not the wall clock, so that
		// history bins are the data's; -d: foreground; -c none: no control
		// socket (with -r, softflowd 1.1.0 makes none, but a -c after -r brings
		// it back and softflowd then blocks in accept() after the export)
		a := append([]string{"-a", "-d", "-c", "none", "-r", abs, "-n", fmt.Sprintf("127.0.0.1:%d", port)}, args...)
		return exporterCommand("softflowd", a...), nil
	}
}

// probeDirections splits the traffic between two probes of one pmacctd: what
// the clients send is "in" on ifIndex 11, the rest "out" on ifIndex 22, each
// with its own engine (source id, sub-agent), so the export has two streams
// from one address and interfaces on both sides. pmacctd 1.7.7 gives probe
// plugins every packet whatever their aggregate_filter: the split is made by
// pre_tag_map and pre_tag_filter. "vlan and": BPF looks past a VLAN tag only
// after that keyword.
const (
	probeTags = `set_tag=1 filter='src net 192.0.2.0/24 or src net 2001:db8:0:1::/64 or (vlan and (src net 192.0.2.0/24 or src net 2001:db8:0:1::/64))'
set_tag=2
`
	probeDirections = `pre_tag_filter[in]: 1
pre_tag_filter[out]: 2
`
)

func nfprobe(version int, sampling int) func(string, int) (*exec.Cmd, error) {
	engines := "nfprobe_engine[in]: 1\nnfprobe_engine[out]: 2\n"
	if version == 5 {
		engines = "nfprobe_engine[in]: 0:1\nnfprobe_engine[out]: 0:2\n"
	}
	conf := fmt.Sprintf(`plugins: nfprobe[in], nfprobe[out]
nfprobe_version: %d
aggregate: src_mac, dst_mac, vlan, src_host, dst_host, src_port, dst_port, proto, tos, tcpflags
nfprobe_direction[in]: in
nfprobe_direction[out]: out
nfprobe_ifindex[in]: 11
nfprobe_ifindex[out]: 22
`, version) + engines + probeDirections
	return pmacctd(exportTraffic, probeTags, "nfprobe_receiver", conf, sampling)
}

func sfprobe(sampling int) func(string, int) (*exec.Cmd, error) {
	return sfprobeOn(exportTraffic, sampling)
}

// sfprobeOn is sfprobe on the trace traffic.
func sfprobeOn(traffic string, sampling int) func(string, int) (*exec.Cmd, error) {
	conf := `plugins: sfprobe[in], sfprobe[out]
sfprobe_agentip: 192.0.2.254
sfprobe_agentsubid[in]: 1
sfprobe_agentsubid[out]: 2
sfprobe_direction[in]: in
sfprobe_direction[out]: out
sfprobe_ifindex[in]: 11
sfprobe_ifindex[out]: 22
` + probeDirections
	return pmacctd(traffic, probeTags, "sfprobe_receiver", conf, sampling)
}

// pmacctd runs pmacctd on the trace traffic with probe plugins and the
// pre_tag_map tagMap; sampling, when
// set, is pmacctd_ext_sampling_rate: the probes export that rate (sampler
// options, sFlow sampling rate) for every packet, which keeps the export
// deterministic, unlike pmacct's own random sampling_rate.
func pmacctd(traffic, tagMap, receiverKey, conf string, sampling int) func(string, int) (*exec.Cmd, error) {
	return func(dir string, port int) (*exec.Cmd, error) {
		abs, err := filepath.Abs(traffic)
		if err != nil {
			return nil, err
		}
		tags := filepath.Join(dir, "pretag.map")
		if err := os.WriteFile(tags, []byte(tagMap), 0o644); err != nil {
			return nil, err
		}
		c := fmt.Sprintf("daemonize: false\npcap_savefile: %s\npre_tag_map: %s\n%s: 127.0.0.1:%d\n", abs, tags, receiverKey, port) + conf
		if sampling > 0 {
			c += fmt.Sprintf("pmacctd_ext_sampling_rate: %d\n", sampling)
		}
		path := filepath.Join(dir, "pmacctd.conf")
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			return nil, err
		}
		return exporterCommand("pmacctd", "-f", path), nil
	}
}

var exporterCases = []exporterCase{
	{name: "softflowd-v5", command: softflowd(exportTraffic, "-v", "5")},
	{name: "softflowd-v9", command: softflowd(exportTraffic, "-v", "9")},
	{name: "softflowd-v10", command: softflowd(exportTraffic, "-v", "10")},
	// -s N: softflowd 1.1.0 keeps one packet in N, deterministically, and says
	// so in the v5 header, v9 sampler options and IPFIX packet interval/space
	{name: "softflowd-v5-sampled", command: softflowd(exportTraffic, "-v", "5", "-s", "3"), sampled: true},
	{name: "softflowd-v9-sampled", command: softflowd(exportTraffic, "-v", "9", "-s", "3"), sampled: true},
	{name: "softflowd-v10-sampled", command: softflowd(exportTraffic, "-v", "10", "-s", "3"), sampled: true},
	// its one datagram has the templates, the sampler options and 5 records in 10 FlowSets
	{name: "softflowd-v9-sampled-small", command: softflowd(pmacctTraffic, "-v", "9", "-s", "3"), sampled: true, countBug: true},
	{name: "nfprobe-v5", command: nfprobe(5, 0), probes: 2},
	{name: "nfprobe-v9", command: nfprobe(9, 0), probes: 2, l2: true},
	{name: "nfprobe-v10", command: nfprobe(10, 0), probes: 2, l2: true},
	{name: "nfprobe-v9-sampled", command: nfprobe(9, 4), probes: 2, l2: true, sampled: true},
	{name: "nfprobe-v10-sampled", command: nfprobe(10, 4), probes: 2, l2: true, sampled: true},
	{name: "nfprobe-v9-sampling-map", command: nfprobe(9, 4), probes: 2, l2: true, sampled: true, samplingMap: 10},
	{name: "sfprobe-sampled", sflow: true, command: sfprobe(4), probes: 2, l2: true, sampled: true},
}

// aggregateSet is one aggregation both collectors run on an export.
type aggregateSet struct {
	name        string
	aggregate   []string
	history     bool // print_history 1m, bins by flow start (time_new false)
	networks    bool // networks_file
	renormalize bool
	secs        bool                    // timestamps_secs
	filter      string                  // aggregate_filter
	applies     func(exporterCase) bool // nil: every exporter
}

func netflowOnly(e exporterCase) bool { return !e.sflow }

var aggregateSets = []aggregateSet{
	{name: "five_tuple", aggregate: []string{"src_host", "dst_host", "src_port", "dst_port", "proto"}},
	{name: "hosts", aggregate: []string{"src_host", "dst_host"}},
	{name: "l2", aggregate: []string{"src_mac", "dst_mac", "vlan", "etype"}, applies: func(e exporterCase) bool { return e.l2 }},
	{name: "networks", aggregate: []string{"src_net", "dst_net", "src_mask", "dst_mask", "src_as", "dst_as"}, networks: true},
	// sFlow has no flow time: sfacctd bins by arrival, which is the wall
	// clock in a pcap_savefile run and the pcap time in flowdex's replay
	// NetFlow v5 is left out, for a pmacct inconsistency: nfacctd 1.7.7 bins a
	// v5 flow on unix_secs - SysUptime/1000 + First/1000 (each truncated apart,
	// no wrap: NF_time_msecs_handler) but reports timestamp_start as
	// unix_secs - (SysUptime-First)/1000; flowdex bins on the time it reports
	{name: "history", aggregate: []string{"src_host", "dst_host", "proto"}, history: true,
		applies: func(e exporterCase) bool { return !e.sflow && !strings.Contains(e.name, "-v5") }},
	{name: "renormalized", aggregate: []string{"src_host", "dst_host", "proto", "sampling_rate"}, renormalize: true, applies: func(e exporterCase) bool { return e.sampled }},
	{name: "sampling", aggregate: []string{"src_host", "dst_host", "sampling_rate"}},
	{name: "tcpflags", aggregate: []string{"src_host", "dst_host", "src_port", "dst_port", "proto", "tcpflags"}},
	{name: "tos", aggregate: []string{"src_host", "dst_host", "proto", "tos"}},
	// nfacctd and sfacctd match the BPF against a frame made up from the flow;
	// see taggedDifferently for the frames of flows with a VLAN
	{name: "filter", aggregate: []string{"vlan", "src_host", "dst_host", "proto"}, filter: "tcp or (src net 192.0.2.0/24 and udp)"},
	{name: "exporter", aggregate: []string{"peer_src_ip", "export_proto_version", "export_proto_sysid"}},
	{name: "ifaces", aggregate: []string{"in_iface", "out_iface", "src_host", "dst_host"}},
	{name: "timestamps", aggregate: []string{"src_host", "dst_host", "src_port", "dst_port", "proto", "timestamp_start", "timestamp_end"}, applies: netflowOnly},
	// timestamps cut to whole seconds before aggregating, as pmacct's handlers do
	{name: "timestamps_secs", aggregate: []string{"src_host", "dst_host", "proto", "timestamp_start"}, secs: true, applies: netflowOnly},
}

func (e exporterCase) sets() []aggregateSet {
	var out []aggregateSet
	for _, s := range aggregateSets {
		if s.applies == nil || s.applies(e) {
			out = append(out, s)
		}
	}
	return out
}

func (e exporterCase) collector() string {
	if e.sflow {
		return "sfacctd"
	}
	return "nfacctd"
}

func (e exporterCase) tools() []string {
	tool := "softflowd"
	if e.probes > 0 {
		tool = "pmacctd"
	}
	return []string{tool, e.collector()}
}

// requireTools skips the test when a program is missing, or fails it on CI.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	if missing := missingTools(names...); len(missing) > 0 {
		if ciRequired() {
			t.Fatalf("missing %s (CI=true: these tests must run; make deps installs them)", strings.Join(missing, ", "))
		}
		t.Skipf("missing %s (make deps installs it)", strings.Join(missing, ", "))
	}
}

// exportRun is an export and what both collectors made of it.
type exportRun struct {
	datagrams int
	short     []v9Shortfall // datagrams nfacctd would cut short
	dir       string
	pmacct    map[string]string // set name -> pmacct's output file
	flowdex   map[string]string // set name -> flowdex's output file
	// pmacct's five_tuple from the exporter's own datagrams, when they hit
	// the v9 count bug (pmacct above had them with counts raised)
	pmacctAsSent string
}

// capture runs the exporter and writes its datagrams into dir/export.pcap.
func (e exporterCase) capture(ctx context.Context, dir string) (export string, ds []exportDatagram, err error) {
	var log string
	// pmacctd too can lose a plugin on a savefile: run it again then
	for try := 1; ; try++ {
		if e.probes > 0 {
			pmacctSlots <- struct{}{}
		}
		ds, log, err = captureExport(ctx, func(port int) (*exec.Cmd, error) { return e.command(dir, port) }, netip.AddrPort{})
		if e.probes > 0 {
			<-pmacctSlots
		}
		if err != nil {
			return "", nil, fmt.Errorf("%v\n%s", err, tail(log, 30))
		}
		if started := strings.Count(log, "Exporting flows to"); started >= e.probes {
			break
		} else if try == 3 {
			return "", nil, fmt.Errorf("pmacctd started %d of %d probes, 3 times:\n%s", started, e.probes, tail(log, 30))
		}
	}
	export = filepath.Join(dir, "export.pcap")
	return export, ds, writeExportPcap(export, ds)
}

// export runs the exporter, then nfacctd or sfacctd and flowdex on its export.
func (e exporterCase) export(ctx context.Context, dir string) (*exportRun, error) {
	export, ds, err := e.capture(ctx, dir)
	if err != nil {
		return nil, err
	}
	r := &exportRun{datagrams: len(ds), dir: dir, pmacct: map[string]string{}, flowdex: map[string]string{}}
	forPmacct := export
	if !e.sflow {
		var fixed []exportDatagram
		fixed, r.short = fixV9Counts(ds)
		if len(r.short) > 0 {
			forPmacct = filepath.Join(dir, "export-v9-counts-raised.pcap")
			if err := writeExportPcap(forPmacct, fixed); err != nil {
				return nil, err
			}
		}
	}
	networks, err := filepath.Abs(exportNetworks)
	if err != nil {
		return nil, err
	}

	var samplingMap string
	if e.samplingMap > 0 {
		samplingMap = filepath.Join(dir, "sampling.map")
		if err := os.WriteFile(samplingMap, fmt.Appendf(nil, "id=%d ip=127.0.0.1\n", e.samplingMap), 0o644); err != nil {
			return nil, err
		}
	}
	plain := pmacctRun{daemon: e.collector(), savefile: forPmacct, networks: networks, samplingMap: samplingMap}
	renorm := pmacctRun{daemon: e.collector(), savefile: forPmacct, renormalize: true, samplingMap: samplingMap}
	var runs []pmacctRun
	for _, s := range e.sets() {
		p := pmacctPlugin{name: s.name, aggregate: s.aggregate, filter: s.filter, secs: s.secs, file: filepath.Join(dir, "pmacct-"+s.name+".json")}
		if s.history {
			p.history = "1m"
		}
		r.pmacct[s.name] = p.file
		r.flowdex[s.name] = filepath.Join(dir, "flowdex-"+s.name+".json")
		if s.renormalize {
			renorm.plugins = append(renorm.plugins, p)
		} else {
			plain.plugins = append(plain.plugins, p)
		}
	}
	runs = append(runs, plain)
	if len(renorm.plugins) > 0 {
		runs = append(runs, renorm)
	}
	if len(r.short) > 0 {
		r.pmacctAsSent = filepath.Join(dir, "pmacct-as-sent-five_tuple.json")
		runs = append(runs, pmacctRun{daemon: e.collector(), savefile: export, samplingMap: samplingMap, plugins: []pmacctPlugin{
			{name: "as_sent", aggregate: aggregateSets[0].aggregate, file: r.pmacctAsSent, mayBeEmpty: true},
		}})
	}

	errs := make([]error, len(runs)+1)
	var wg sync.WaitGroup
	for i, pr := range runs {
		wg.Go(func() { errs[i] = runPmacct(ctx, dir, pr) })
	}
	wg.Go(func() { errs[len(runs)] = e.runFlowdex(dir, export, networks, r.flowdex) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// flowdexConfig is a flowdex configuration that replays export into one
// pipeline per aggregate set, each printing to its file.
func (e exporterCase) flowdexConfig(input, networks string, files map[string]string) string {
	var b strings.Builder
	typ := "netflow"
	if e.sflow {
		typ = "sflow"
	}
	fmt.Fprintf(&b, "[[input]]\nname = \"export\"\ntype = %q\n%s\n", typ, input)
	if e.samplingMap > 0 {
		fmt.Fprintf(&b, "[[input.sampling]]\nexporters = \"127.0.0.1\"\nrate = %d\n", e.samplingMap)
	}
	for _, s := range e.sets() {
		// refresh: one purge at the end, as nfacctd's print_refresh_time 86400
		fmt.Fprintf(&b, "\n[[pipeline]]\nname = %q\naggregate = %s\ntimestamps_utc = true\nrefresh = \"24h\"\noutputs = [%q]\n", s.name, tomlStrings(s.aggregate), s.name)
		if s.secs {
			b.WriteString("timestamps_secs = true\n")
		}
		if s.history {
			b.WriteString("history = \"1m\"\n")
		}
		if s.renormalize {
			b.WriteString("renormalize = true\n")
		}
		if s.networks {
			fmt.Fprintf(&b, "networks_file = %q\n", networks)
		}
		if s.filter != "" {
			fmt.Fprintf(&b, "filter = %q\n", s.filter)
		}
		fmt.Fprintf(&b, "[output.%s]\ntype = \"print\"\nfile = %q\n", s.name, files[s.name])
	}
	return b.String()
}

func (e exporterCase) runFlowdex(dir, export, networks string, files map[string]string) error {
	conf := filepath.Join(dir, "flowdex.toml")
	if err := os.WriteFile(conf, []byte(e.flowdexConfig(fmt.Sprintf("replay = %q", export), networks, files)), 0o644); err != nil {
		return err
	}
	var out, errb strings.Builder
	if code := run([]string{"run", "-c", conf}, strings.NewReader(""), &out, &errb); code != 0 {
		return fmt.Errorf("flowdex run -c %s: exit %d\n%s%s", conf, code, out.String(), errb.String())
	}
	return nil
}

func tomlStrings(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func loadSums(t *testing.T, who, path string, keep ...string) recordSums {
	t.Helper()
	lines, err := readLines(path)
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	s, err := sumLines(lines, keep...)
	if err != nil {
		t.Fatalf("%s %s: %v", who, path, err)
	}
	return s
}

// Every exporter, every aggregate set: flowdex's records are pmacct's.
func TestExporterGolden(t *testing.T) {
	var tools []string
	for _, e := range exporterCases {
		tools = append(tools, e.tools()...)
	}
	requireTools(t, tools...)
	requireFaketime(t)
	ctx, cancel := context.WithCancel(context.Background())
	// The runs mostly wait (pmacct sleeps 2 s before reading a savefile), so
	// they all start now, pmacct daemons a few at a time (pmacctSlots), and
	// the subtests below wait for theirs.
	type result struct {
		r   *exportRun
		err error
	}
	results := make([]chan result, len(exporterCases))
	dirs := make([]string, len(exporterCases))
	for i := range exporterCases {
		results[i] = make(chan result, 1)
		dirs[i] = t.TempDir()
	}
	// registered after the temporary directories, so it runs before they go
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i, e := range exporterCases {
		wg.Go(func() {
			r, err := e.export(ctx, dirs[i])
			results[i] <- result{r, err}
		})
	}
	for i, e := range exporterCases {
		t.Run(e.name, func(t *testing.T) {
			res := <-results[i]
			if res.err != nil {
				t.Fatalf("%s: %v", e.name, res.err)
			}
			r := res.r
			t.Logf("%d datagrams; files in %s", r.datagrams, r.dir)
			for _, s := range e.sets() {
				t.Run(s.name, func(t *testing.T) {
					want := loadSums(t, e.collector(), r.pmacct[s.name])
					got := loadSums(t, "flowdex", r.flowdex[s.name])
					if len(want) == 0 {
						t.Fatalf("%s wrote no records: nothing to compare", e.collector())
					}
					if s.filter != "" && !e.sflow {
						want = taggedDifferently(t, want)
					}
					if e.sflow && slices.Contains(s.aggregate, "tos") {
						got = sfacctdTrafficClass(t, got)
					}
					if diffs := diffSums(got, want); len(diffs) > 0 {
						t.Errorf("%s %v: %d of %d keys differ from %s's (flowdex has %d):\n%s",
							s.name, s.aggregate, len(diffs), len(want), e.collector(), len(got), strings.Join(diffs, "\n"))
					}
					if diffs := diffRecords(got, want); len(diffs) > 0 {
						t.Errorf("%s %v: %d keys are not one record each as in %s's one purge:\n%s",
							s.name, s.aggregate, len(diffs), e.collector(), strings.Join(diffs, "\n"))
					}
				})
			}
			if !e.sflow {
				t.Run("nfacctd-v9-count-bug", func(t *testing.T) { checkCountBug(t, e, r) })
			}
		})
	}
}

// sfacctdTrafficClass turns flowdex's IPv6 tos (the traffic class, 0x28 for
// AF11 in traffic.pcap) into what sfacctd 1.7.7 reports for it (2: the low
// nibble of the header's first byte), so that the rest is compared; it fails
// unless exactly the keys of traffic.pcap's one marked IPv6 session change.
func sfacctdTrafficClass(t *testing.T, flowdex recordSums) recordSums {
	t.Helper()
	out, changed := recordSums{}, 0
	for k, c := range flowdex {
		var m map[string]any
		if err := json.Unmarshal([]byte(k), &m); err != nil {
			t.Fatal(err)
		}
		src, _ := m["ip_src"].(string)
		if tos, ok := m["tos"].(float64); ok && tos != 0 && strings.Contains(src, ":") {
			m["tos"] = int(tos) >> 4
			b, _ := json.Marshal(m)
			k = string(b)
			changed++
		}
		out[k] = c
	}
	if changed != 2 {
		t.Errorf("%d IPv6 keys with a traffic class, want 2 (the AF11 session, both ways)", changed)
	}
	return out
}

// taggedDifferently is what flowdex keeps of nfacctd's records on purpose
// (aggregate/filter's package documentation): its frame for a flow with a
// VLAN carries an 802.1Q tag, so an expression without "vlan" matches no IP
// field of it; nfacctd 1.7.7 tags only VLANs above 255 (it looks at the high
// byte of the VLAN field) and matches VLANs 1-255 as untagged, as the
// VLAN 10 and 20 flows here. sfacctd tags any VLAN, as flowdex does.
func taggedDifferently(t *testing.T, nfacctd recordSums) recordSums {
	t.Helper()
	kept := recordSums{}
	for k, c := range nfacctd {
		var key struct{ VLAN int }
		if err := json.Unmarshal([]byte(k), &key); err != nil {
			t.Fatal(err)
		}
		if key.VLAN == 0 || key.VLAN > 255 {
			kept[k] = c
		}
	}
	return kept
}

// checkCountBug: nfacctd 1.7.7 takes the NetFlow v9 header count for a
// FlowSet count. Where an exporter's datagrams have fewer records than
// FlowSets, nfacctd drops the FlowSets past the count, and flowdex, which
// reads to the end of the datagram, has more; what nfacctd did keep is the
// same in both.
func checkCountBug(t *testing.T, e exporterCase, r *exportRun) {
	for _, s := range r.short {
		t.Logf("exportDatagram %d: v9 count %d, %d FlowSets", s.index, s.count, s.flowSets)
	}
	if e.countBug != (len(r.short) > 0) {
		t.Fatalf("expected datagrams with a v9 count below their FlowSet count: %v, found %d", e.countBug, len(r.short))
	}
	if len(r.short) == 0 {
		return
	}
	asSent := loadSums(t, "nfacctd", r.pmacctAsSent)
	got := loadSums(t, "flowdex", r.flowdex["five_tuple"])
	gotPackets, _ := got.total()
	sentPackets, _ := asSent.total()
	if gotPackets <= sentPackets || len(got) <= len(asSent) {
		t.Errorf("nfacctd on the exporter's datagrams has %d keys, %d packets; flowdex %d keys, %d packets: flowdex should have more",
			len(asSent), sentPackets, len(got), gotPackets)
	}
	for k, w := range asSent {
		if g, ok := got[k]; !ok || !g.sameSums(w) {
			t.Errorf("nfacctd kept %s: %s; flowdex has %s", k, w, g)
		}
	}
}

// freeUDPPort returns a port that was free on 127.0.0.1 a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// The daemon, live: softflowd sends IPFIX through the test (which keeps a copy
// of every datagram) to flowdex listening on a UDP port; after SIGTERM the
// documents in Elasticsearch add up to what nfacctd and flowdex's replay make
// of the same datagrams.
func TestExporterLive(t *testing.T) {
	requireTools(t, "softflowd", "nfacctd")
	requireFaketime(t)
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) { exporterLive(t, srv.URL(t)) })
	}
}

// exporterLive is TestExporterLive against the Elasticsearch at url.
func exporterLive(t *testing.T, url string) {
	index := estest.Index(t, "flowdex-test-live")
	dir := t.TempDir()
	set := aggregateSets[0] // five_tuple
	port := freeUDPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q

[[input]]
name = "softflowd"
type = "netflow"
listen = ["127.0.0.1:%d"]

[[pipeline]]
name = %q
aggregate = %s
timestamps_utc = true
outputs = ["es"]

`, strings.TrimPrefix(base, "http://"), port, set.name, tomlStrings(set.aggregate))+esOutputTOML(url, index))
	cmd, stderr := startFlowdex(t, conf)
	testwatch.WaitFor(t, "flowdex to start", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "flowdex started") })

	e := exporterCase{name: "softflowd-v10-live", command: softflowd(exportTraffic, "-v", "10")}
	ds, log, err := captureExport(context.Background(), func(port int) (*exec.Cmd, error) { return e.command(dir, port) },
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	// SIGTERM closes the socket: flowdex must have read every datagram the
	// relay sent first (counted, not guessed with a second's sleep, which a
	// loaded machine can outlast)
	testwatch.WaitFor(t, "flowdex to read what the relay sent", 30*time.Second, func() bool {
		return testwatch.Metrics(t, base)["flowdex_input_received_datagrams_total"]["input=softflowd"] == float64(len(ds))
	})
	terminate(t, cmd, stderr)

	export := filepath.Join(dir, "export.pcap")
	if err := writeExportPcap(export, ds); err != nil {
		t.Fatal(err)
	}
	nf := filepath.Join(dir, "nfacctd.json")
	if err := runPmacct(context.Background(), dir, pmacctRun{daemon: "nfacctd", savefile: export,
		plugins: []pmacctPlugin{{name: set.name, aggregate: set.aggregate, file: nf}}}); err != nil {
		t.Fatal(err)
	}
	replay := filepath.Join(dir, "replay.json")
	rconf := writeFile(t, dir, "replay.toml", fmt.Sprintf(`
[[input]]
name = "replay"
type = "netflow"
replay = %q
[[pipeline]]
name = %q
aggregate = %s
timestamps_utc = true
outputs = ["file"]
[output.file]
type = "print"
file = %q
`, export, set.name, tomlStrings(set.aggregate), replay))
	if code, _, stderr := runCLI(t, "", "run", "-c", rconf); code != 0 {
		t.Fatalf("flowdex replay: exit %d\n%s", code, stderr)
	}

	var docs []map[string]any
	for _, d := range estest.Docs(t, url, index+"-*") {
		docs = append(docs, d.Source)
	}
	got, err := sumDocs(docs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatalf("nothing in Elasticsearch; flowdex said:\n%s", stderr.String())
	}
	packets, bytes := got.total()
	t.Logf("%d datagrams; %d documents in Elasticsearch, %d keys, %d packets, %d bytes", len(ds), len(docs), len(got), packets, bytes)
	for _, ref := range []struct{ who, path string }{{"nfacctd", nf}, {"flowdex replay", replay}} {
		want := loadSums(t, ref.who, ref.path)
		if diffs := diffSums(got, want); len(diffs) > 0 {
			t.Errorf("Elasticsearch against %s (%d datagrams): %d of %d keys differ:\n%s", ref.who, len(ds), len(diffs), len(want), strings.Join(diffs, "\n"))
		}
	}
}
