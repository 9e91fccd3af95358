package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// hostSets are the aggregations pmacctd and flowdex both run on one pcap.
var hostSets = []struct {
	name      string
	aggregate []string
	history   string
	filter    string
	networks  bool
}{
	{name: "five_tuple", aggregate: []string{"src_host", "dst_host", "src_port", "dst_port", "proto", "tcpflags"}},
	{name: "hosts", aggregate: []string{"src_host", "dst_host"}},
	{name: "l2", aggregate: []string{"src_mac", "dst_mac", "vlan", "cos", "etype"}},
	{name: "tos", aggregate: []string{"src_host", "dst_host", "proto", "tos"}},
	{name: "sum_host", aggregate: []string{"sum_host"}},
	{name: "history", aggregate: []string{"src_host", "dst_host", "proto"}, history: "1m"},
	// flowdex's aggregate_filter against pmacctd's pcap_filter: pmacctd 1.7.7
	// reading a pcap_savefile ignores aggregate_filter (every packet reached
	// a print plugin with "tcp" or "src net 192.0.2.0/24"); the capture
	// filter is the same BPF on the same packets. On a tagged frame IP
	// primitives match only after "vlan", in both.
	{name: "filter", aggregate: []string{"src_host", "dst_host", "proto"}, filter: "tcp or icmp or (vlan and icmp)"},
	{name: "networks", aggregate: []string{"src_net", "dst_net", "src_mask", "dst_mask", "src_as", "dst_as"}, networks: true},
}

// flowdex reading a pcap file gives pmacctd's records and sums, for every
// aggregation of hostSets: 5-tuple with OR-ed tcp flags, hosts, L2 with VLAN,
// CoS and ethertype, ToS, sum_host, 1-minute bins, an aggregate_filter, and
// net/mask/AS from a networks_file. The pcap has VLAN tags, IPv6, ICMP and GRE.
func TestPcapFileMatchesPmacctd(t *testing.T) {
	requireTools(t, "pmacctd")
	dir := t.TempDir()
	traffic, err := filepath.Abs(exportTraffic)
	if err != nil {
		t.Fatal(err)
	}
	networks, err := filepath.Abs("testdata/exporters/networks.lst")
	if err != nil {
		t.Fatal(err)
	}
	plain := pmacctRun{daemon: "pmacctd", savefile: traffic}
	withNets := pmacctRun{daemon: "pmacctd", savefile: traffic, networks: networks}
	filtered := pmacctRun{daemon: "pmacctd", savefile: traffic}
	var conf strings.Builder
	fmt.Fprintf(&conf, "[[input]]\ntype = \"pcap\"\nfile = %q\n", traffic)
	for _, s := range hostSets {
		p := pmacctPlugin{name: s.name, aggregate: s.aggregate, history: s.history,
			file: filepath.Join(dir, "pmacctd-"+s.name+".json")}
		switch {
		case s.filter != "":
			filtered.pcapFilter = s.filter
			filtered.plugins = append(filtered.plugins, p)
		case s.networks:
			withNets.plugins = append(withNets.plugins, p)
		default:
			plain.plugins = append(plain.plugins, p)
		}
		fmt.Fprintf(&conf, "[[pipeline]]\nname = %q\naggregate = %s\ntimestamps_utc = true\noutputs = [%q]\n", s.name, tomlStrings(s.aggregate), s.name)
		if s.history != "" {
			fmt.Fprintf(&conf, "history = %q\n", s.history)
		}
		if s.filter != "" {
			fmt.Fprintf(&conf, "filter = %q\n", s.filter)
		}
		if s.networks {
			fmt.Fprintf(&conf, "networks_file = %q\n", networks)
		}
		fmt.Fprintf(&conf, "[output.%s]\ntype = \"print\"\nfile = %q\n", s.name, filepath.Join(dir, "flowdex-"+s.name+".json"))
	}
	for _, r := range []pmacctRun{plain, withNets, filtered} {
		if err := runPmacct(context.Background(), dir, r); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, stderr := runCLI(t, "", "run", "-c", writeFile(t, dir, "flowdex.toml", conf.String())); code != 0 {
		t.Fatalf("flowdex run: exit %d\n%s", code, stderr)
	}
	for _, s := range hostSets {
		t.Run(s.name, func(t *testing.T) {
			want := loadSums(t, "pmacctd", filepath.Join(dir, "pmacctd-"+s.name+".json"))
			got := loadSums(t, "flowdex", filepath.Join(dir, "flowdex-"+s.name+".json"))
			if len(want) == 0 {
				t.Fatal("pmacctd wrote nothing")
			}
			if diffs := diffSums(got, want); len(diffs) > 0 {
				t.Errorf("%d of %d keys differ from pmacctd's:\n%s", len(diffs), len(want), strings.Join(diffs, "\n"))
			}
		})
	}
}
