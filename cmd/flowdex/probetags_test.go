package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// probeTagMap tags pmacctd's packets for its probes to send: tag 1 or 2 by
// the client network, tag2 7 for TCP, label "probe".
const probeTagMap = `set_tag=1 filter='src net 192.0.2.0/24 or src net 2001:db8:0:1::/64 or (vlan and (src net 192.0.2.0/24 or src net 2001:db8:0:1::/64))' jeq=t2
set_tag=2 jeq=t2
set_tag2=7 filter='tcp or (vlan and tcp)' label=t2 jeq=lab
set_label=probe label=lab
`

// collectorTagMap is the collectors' own map: it tags UDP 99 and labels
// everything "coll", where the probes' tags compete with it.
const collectorTagMap = `set_tag=99 filter='udp or (vlan and udp)' jeq=lab
set_label=coll label=lab
`

// The tags and labels pmacct's own probes send, against nfacctd and
// sfacctd 1.7.7 with a map of their own: nfprobe's IPFIX elements win over
// the collector's map, sfprobe's sFlow record only where the map sets none.
func TestProbeTagsMatchPmacct(t *testing.T) {
	for _, tt := range []struct {
		name string
		seen []string // what shows who won
		e    exporterCase
	}{
		{"nfprobe", []string{`"label":"probe","tag":1,"tag2":7`, `"label":"probe","tag":2,"tag2":0`}, exporterCase{name: "nfprobe-tags", probes: 1, command: pmacctd(exportTraffic, probeTagMap, "nfprobe_receiver",
			"plugins: nfprobe\nnfprobe_version: 10\naggregate: src_host, dst_host, proto, tag, tag2, label\n", 0)}},
		{"sfprobe", []string{`"label":"coll","tag":99,"tag2":0`, `"label":"coll","tag":1,"tag2":7`, `"label":"coll","tag":2,"tag2":0`}, exporterCase{name: "sfprobe-tags", sflow: true, probes: 1, command: pmacctd(exportTraffic, probeTagMap, "sfprobe_receiver",
			"plugins: sfprobe\nsfprobe_agentip: 192.0.2.254\naggregate: tag, tag2\n", 0)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			requireTools(t, tt.e.tools()...)
			requireFaketime(t)
			dir := t.TempDir()
			export, _, err := tt.e.capture(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			mapFile := writeFile(t, dir, "collector.map", collectorTagMap)
			typ := "netflow"
			if tt.e.sflow {
				typ = "sflow"
			}
			want, got := pretagGolden(t, dir, tt.e.collector(), export, fmt.Sprintf("type = %q\nreplay = %q", typ, export), mapFile,
				[]string{"tag", "tag2", "label", "src_host", "proto"})
			compareSums(t, got, want)
			requireValues(t, aggregateSums(t, filepath.Join(dir, "flowdex.json"), []string{"tag", "tag2", "label"}, nil), tt.seen...)
		})
	}
}
