package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	customfile "github.com/flowdex/flowdex/aggregate/custom"
	"github.com/flowdex/flowdex/aggregate/flow"
)

// pmacctTests is where pmacct's own NetFlow v9/IPFIX regression cases are: beside
// the project, not in it (they are pmacct's, see their README).
const pmacctTests = "../../../shared/pmacct-tests"

// pmacctCase is one of pmacct's flow regression cases: the exporters' datagrams,
// nfacctd's configuration and what nfacctd produced from them.
type pmacctCase struct {
	dir   string
	pcaps []string
	// sampling overrides pmacct's sampling_map gives for the case, by exporter as
	// it appears in the pcap
	sampling map[string]int
}

var pmacctCases = []pmacctCase{
	{dir: "100-IPFIXv10-CISCO", pcaps: []string{"traffic-00.pcap"}},
	{dir: "101-NFv9-CISCO-cust_primitives", pcaps: []string{"traffic-00.pcap"}},
	// sampling-00.map: "id=1 ip=192.168.100.1/32", the exporter's address in the harness
	{dir: "102-NFv9-CISCO-f2rd-pretag-sampling-reload", pcaps: []string{"traffic-00.pcap"}, sampling: map[string]int{"10.10.0.33": 1}},
	{dir: "103-IPFIXv10-CISCO-pretag-JSON_encoding", pcaps: []string{"traffic-00.pcap"}},
	{dir: "104-IPFIXv10-IPv6-CISCO-sampling_option", pcaps: []string{"traffic-00.pcap"}},
	{dir: "110-IPFIXv10-NFv9-multiple-sources", pcaps: []string{"traffic-00.pcap", "traffic-01.pcap", "traffic-02.pcap"}},
	{dir: "111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources", pcaps: []string{"traffic-00.pcap", "traffic-01.pcap"}},
	{dir: "112-IPFIXv10-CISCO-options-map-reassignment", pcaps: []string{"traffic-00.pcap"}},
}

var (
	aggregateRE = regexp.MustCompile(`(?m)^aggregate(?:\[[^\]]*\])?:\s*(.*)$`)
	reproRE     = regexp.MustCompile(`src_ip:\s*(\S+)\s*\n\s*repro_ip:\s*(\S+)`)
)

// readCase returns the case's aggregate list, whether nfacctd renormalised, and
// the peer_ip_src each pcap exporter has in the expected output.
func readCase(t *testing.T, c pmacctCase) (aggregate []string, renormalize bool, peers map[string]string) {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join(pmacctTests, c.dir, "nfacctd-00.conf"))
	if err != nil {
		t.Fatalf("pmacct's regression cases are missing (%v): they are expected in %s", err, pmacctTests)
	}
	m := aggregateRE.FindSubmatch(conf)
	if m == nil {
		t.Fatalf("%s: no aggregate", c.dir)
	}
	for _, p := range strings.Split(string(m[1]), ",") {
		aggregate = append(aggregate, strings.TrimSpace(p))
	}
	renormalize = regexp.MustCompile(`(?m)^nfacctd_renormalize:\s*true`).Match(conf)
	// the harness replays each exporter from an address of its docker network:
	// the repro_ip when it is one, else 172.21.1.101 or fd25::101 (the README)
	peers = map[string]string{}
	for i := range c.pcaps {
		yml, err := os.ReadFile(filepath.Join(pmacctTests, c.dir, fmt.Sprintf("traffic-reproducer-%02d.yml", i)))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range reproRE.FindAllSubmatch(yml, -1) {
			src, repro := string(m[1]), string(m[2])
			switch {
			case strings.HasPrefix(repro, "172.21.1.") || strings.HasPrefix(repro, "fd25::"):
				peers[src] = repro
			case strings.Contains(src, ":"):
				peers[src] = "fd25::101"
			default:
				peers[src] = "172.21.1.101"
			}
		}
	}
	return aggregate, renormalize, peers
}

// supported splits an aggregate list into what flowdex aggregates on and the
// rest (BGP/MPLS/custom primitives, labels: not flowdex's yet).
func supported(aggregate []string) (ours, others []string) {
	for _, p := range aggregate {
		if _, err := flow.ParseAggregate([]string{p}); err == nil {
			ours = append(ours, p)
		} else {
			others = append(others, p)
		}
	}
	return ours, others
}

// aggregateSums groups records on keys (JSON names) and sums packets and bytes;
// tcp_flags arrays are united, as pmacct ORs them.
func aggregateSums(t *testing.T, path string, keys []string, peers map[string]string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type sums struct {
		packets, bytes float64
		flags          map[string]bool
	}
	groups := map[string]*sums{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// pmacct's Avro output (the regression cases' Kafka plugin) nests
		// the custom primitives; its JSON, and flowdex's, do not
		if cp, ok := m["custom_primitives"].(map[string]any); ok {
			maps.Copy(m, cp)
		}
		if p, ok := m["peer_ip_src"].(string); ok && peers != nil {
			if mapped, ok := peers[p]; ok {
				m["peer_ip_src"] = mapped
			}
		}
		k := map[string]any{}
		for _, key := range keys {
			k[key] = m[key]
		}
		b, _ := json.Marshal(k)
		s := groups[string(b)]
		if s == nil {
			s = &sums{flags: map[string]bool{}}
			groups[string(b)] = s
		}
		pk, _ := m["packets"].(float64)
		by, _ := m["bytes"].(float64)
		s.packets += pk
		s.bytes += by
		if fl, ok := m["tcp_flags"].([]any); ok {
			for _, x := range fl {
				s.flags[x.(string)] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, s := range groups {
		flags := slices.Sorted(func(yield func(string) bool) {
			for f := range s.flags {
				if !yield(f) {
					return
				}
			}
		})
		out[k] = fmt.Sprintf("packets %.0f bytes %.0f flags %v", s.packets, s.bytes, flags)
	}
	return out
}

// rdFromMaps are the regression cases whose route distinguishers nfacctd
// takes from what flowdex does not read.
var rdFromMaps = map[string]string{
	"102-NFv9-CISCO-f2rd-pretag-sampling-reload":  "flow_to_rd_map",
	"112-IPFIXv10-CISCO-options-map-reassignment": "option data mapping VRF ids to route distinguishers",
}

// labelsElsewhere are the regression cases whose labels flowdex cannot
// reproduce from the case's files.
var labelsElsewhere = map[string]string{
	"102-NFv9-CISCO-f2rd-pretag-sampling-reload": "its map names exporter 192.168.100.1, its output labels records of peer_ip_src 172.21.1.101",
}

// Each of pmacct's flow regression cases, replayed into flowdex: on the primitives
// of the case that flowdex has (its custom primitives and its pre_tag_map's labels
// included), the records and their packet and byte sums are nfacctd's. The others
// (MPLS label stacks, BGP, forwarding status, VRF names) are left out of both sides
// before the comparison.
func TestPmacctRegressionCases(t *testing.T) {
	for _, c := range pmacctCases {
		t.Run(c.dir, func(t *testing.T) {
			aggregate, renormalize, peers := readCase(t, c)
			conf0, _ := os.ReadFile(filepath.Join(pmacctTests, c.dir, "nfacctd-00.conf"))
			var top, pipelineExtra, inputExtra string
			if regexp.MustCompile(`(?m)^aggregate_primitives:`).Match(conf0) {
				// the case's custom primitives, which flowdex defines as the
				// run will, so that they count as its primitives
				file, err := filepath.Abs(filepath.Join(pmacctTests, c.dir, "pmacct_mount", "custom-primitives-00.map"))
				if err != nil {
					t.Fatal(err)
				}
				fs, err := customfile.Load(file)
				if err != nil {
					t.Fatal(err)
				}
				var used []flow.CustomField
				for _, f := range fs {
					if slices.Contains(aggregate, f.Name) {
						used = append(used, f)
					}
				}
				if err := flow.DefineCustom(used); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = flow.DefineCustom(nil) })
				top = fmt.Sprintf("aggregate_primitives = %q\n", file)
			}
			ours, others := supported(aggregate)
			if why, ok := labelsElsewhere[c.dir]; ok {
				ours = slices.DeleteFunc(ours, func(p string) bool { return p == "label" })
				others = append(others, "label ("+why+")")
			} else if regexp.MustCompile(`(?m)^pre_tag_map:`).Match(conf0) {
				// the case's labels are pmacct master's maps of set_label=k%v,...
				// (pre_tag_label_encode_as_map): its first map, as flowdex's
				// its ip= are the addresses the case's reproducer sent from:
				// the captures' own, for the replay
				m, err := os.ReadFile(filepath.Join(pmacctTests, c.dir, "pmacct_mount", "pretag-00.map"))
				if err != nil {
					t.Fatal(err)
				}
				text := string(m)
				for src, repro := range peers {
					text = strings.ReplaceAll(text, "ip="+repro+"/", "ip="+src+"/")
				}
				inputExtra = fmt.Sprintf("pre_tag_map = %q\n", writeFile(t, t.TempDir(), "pretag.map", text))
				if regexp.MustCompile(`(?m)^pre_tag_label_encode_as_map:\s*true`).Match(conf0) {
					pipelineExtra = "pre_tag_label_encode_as_map = true\n"
				}
			}
			if why, ok := rdFromMaps[c.dir]; ok {
				// nfacctd takes the route distinguishers of this case from
				// what flowdex does not read
				ours = slices.DeleteFunc(ours, func(p string) bool { return p == "mpls_vpn_rd" })
				others = append(others, "mpls_vpn_rd ("+why+")")
			}
			t.Logf("compared on %v; not flowdex primitives: %v", ours, others)
			dir := t.TempDir()
			var conf strings.Builder
			conf.WriteString(top)
			for i, p := range c.pcaps {
				capture, err := filepath.Abs(filepath.Join(pmacctTests, c.dir, p)) // the configuration is elsewhere
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&conf, "[[input]]\nname = \"exporter%d\"\ntype = \"netflow\"\nreplay = %q\n%s", i, capture, inputExtra)
				for exporter, rate := range c.sampling {
					fmt.Fprintf(&conf, "[[input.sampling]]\nexporters = %q\nrate = %d\n", exporter, rate)
				}
			}
			fmt.Fprintf(&conf, `
[[pipeline]]
name = "nfacctd_kafka"
aggregate = %s
renormalize = %v
time_new = true
timestamps_since_epoch = true
timestamps_secs = true
tcpflags_encode_as_array = true
outputs = ["file"]
%s
[output.file]
type = "print"
file = "out.json"
`, tomlList(ours), renormalize, pipelineExtra)
			confPath := writeFile(t, dir, "flowdex.toml", conf.String())
			code, _, stderr := runCLI(t, "", "run", "-c", confPath)
			if code != 0 {
				t.Fatalf("flowdex run: exit %d\n%s", code, stderr)
			}
			var keys []string
			for _, p := range ours {
				a, _ := flow.ParseAggregate([]string{p})
				a.Set.Each(func(p flow.Primitive) {
					// timestamp_arrival is the harness's clock (pmacct's tests ignore it)
					if p != flow.TCPFlags && p != flow.Flows && p != flow.TimestampArrival {
						keys = append(keys, p.JSONKey())
					}
				})
			}
			got := aggregateSums(t, filepath.Join(dir, "out.json"), keys, peers)
			want := aggregateSums(t, filepath.Join(pmacctTests, c.dir, "output-flow-00.json"), keys, nil)
			compareSums(t, got, want)
		})
	}
}

func compareSums(t *testing.T, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+k+": "+w)
		} else if g != w {
			diffs = append(diffs, "differs "+k+":\n    got  "+g+"\n    want "+w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+k+": "+g)
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Errorf("%d of %d records differ from nfacctd's (%d got):\n%s", len(diffs), len(want), len(got), strings.Join(diffs, "\n"))
	}
}

func tomlList(xs []string) string {
	b, _ := json.Marshal(xs)
	return string(b)
}
