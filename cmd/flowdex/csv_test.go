package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// print_output: csv and formatted, against nfacctd 1.7.7 on the same
// export: the same header (pmacct's column names and order, a custom
// primitive's own name) and the same lines, value by value, column by
// column.
func TestCSVMatchesNfacctd(t *testing.T) {
	dir, capture, primitives := customGolden(t)
	agg := []string{"peer_src_ip", "src_host", "dst_host", "src_mask", "src_port", "dst_port", "tcpflags", "proto", "tos", "in_iface",
		"timestamp_start", "vrf_in", "nat_src", "flows"}
	for _, format := range []string{"csv", "formatted"} {
		t.Run(format, func(t *testing.T) { testPrintFormat(t, dir, capture, primitives, format, agg) })
	}
}

func testPrintFormat(t *testing.T, dir, capture, primitives, format string, agg []string) {
	csvFile := filepath.Join(dir, "nfacctd."+format)
	r := pmacctRun{daemon: "nfacctd", savefile: capture, primitives: primitives, extra: "print_output[p]: " + format + "\n",
		plugins: []pmacctPlugin{{name: "p", aggregate: agg, file: csvFile}}}
	if err := runPmacct(context.Background(), dir, r); err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, dir, "flowdex-"+format+".toml", fmt.Sprintf(`aggregate_primitives = %q

[[input]]
type = "netflow"
replay = %q

[[pipeline]]
aggregate = %s
refresh = "24h"
timestamps_utc = true
outputs = ["p"]

[output.p]
type = "print"
file = "flowdex.%s"
format = %[4]q
`, primitives, capture, tomlList(agg), format))
	if code, _, stderr := runCLI(t, "", "run", "-c", conf); code != 0 {
		t.Fatalf("flowdex run: exit %d\n%s", code, stderr)
	}
	lines := func(path string) (string, []string) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		l := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		rows := slices.Clone(l[1:])
		slices.Sort(rows) // pmacct writes in its cache's order
		return l[0], rows
	}
	wantHeader, want := lines(csvFile)
	gotHeader, got := lines(filepath.Join(dir, "flowdex."+format))
	if gotHeader != wantHeader {
		t.Errorf("header\n got %s\nwant %s", gotHeader, wantHeader)
	}
	if len(want) < 10 || !slices.Equal(got, want) {
		t.Errorf("%d lines, nfacctd %d:\n got %s\nwant %s", len(got), len(want), strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// cache_entries: a pipeline whose cache reaches it flushes at once, and
// nothing is lost: the documents sum to what an unbounded cache writes.
func TestCacheEntries(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "export.pcap")
	if err := writeExportPcap(capture, customExport()); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, entries := range []int{0, 3} {
		out := filepath.Join(dir, fmt.Sprintf("out-%d.json", entries))
		conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
replay = %q
replay_speed = 30

[[pipeline]]
aggregate = ["src_host", "src_port"]
refresh = "24h"
cache_entries = %d
outputs = ["p"]

[output.p]
type = "print"
file = %q
`, capture, entries, out))
		code, _, stderr := runCLI(t, "", "run", "-c", conf)
		if code != 0 {
			t.Fatalf("flowdex run: exit %d\n%s", code, stderr)
		}
		if got := strings.Count(stderr, "cache_entries reached"); entries > 0 && got == 0 {
			t.Errorf("cache_entries %d: no flush at once\n%s", entries, stderr)
		}
		sums[fmt.Sprint(entries)] = fmt.Sprint(aggregateSums(t, out, []string{"ip_src", "port_src"}, nil))
	}
	if sums["0"] != sums["3"] {
		t.Errorf("sums differ:\nunbounded %s\nbounded   %s", sums["0"], sums["3"])
	}
}
