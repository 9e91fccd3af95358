package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// natExport is what no exporter here sends, generated: carrier-grade NAT
// logging (NEL: IPFIX natEvent records with observationTimeMilliseconds, no
// counters), Cisco ASA's NSEL in NetFlow v9 (before 8.4: the 40001-40005
// elements; from 8.4: IANA's 225-228 and firewallEvent; initiator and
// responder octets, which are no counters to nfacctd), a NAT record with
// counters, and IPv6 traffic carrying a post-NAT IPv4 address, which nfacctd
// ignores.
func natExport() []exportDatagram {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) []byte { return nfU64(uint64(start.Add(d).UnixMilli())) }
	nel := &nfExporter{version: 10, src: netip.MustParseAddrPort("192.0.2.20:4739"), domain: 1}
	asa := &nfExporter{version: 9, src: netip.MustParseAddrPort("192.0.2.21:2055"), domain: 0}
	nelFields := []nfField{{8, 4, 0}, {12, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0},
		{225, 4, 0}, {226, 4, 0}, {227, 2, 0}, {228, 2, 0}, {230, 1, 0}, {323, 8, 0}}
	asaOld := []nfField{{8, 4, 0}, {12, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0},
		{40001, 4, 0}, {40002, 4, 0}, {40003, 2, 0}, {40004, 2, 0}, {40005, 1, 0}, {231, 4, 0}, {232, 4, 0}, {152, 8, 0}, {323, 8, 0}}
	asaNew := []nfField{{8, 4, 0}, {12, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0},
		{225, 4, 0}, {226, 4, 0}, {227, 2, 0}, {228, 2, 0}, {233, 1, 0}, {231, 4, 0}, {232, 4, 0}, {323, 8, 0}}
	natCounted := []nfField{{8, 4, 0}, {12, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0}, {225, 4, 0}, {227, 2, 0}, {1, 4, 0}, {2, 4, 0}, {152, 8, 0}, {153, 8, 0}}
	v6 := []nfField{{27, 16, 0}, {28, 16, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0}, {225, 4, 0}, {227, 2, 0}, {1, 4, 0}, {2, 4, 0}}
	for n := range 3 {
		at := start.Add(time.Duration(n) * time.Minute)
		var nelRecs, oldRecs, newRecs, countedRecs, v6Recs [][]byte
		for i := range 4 {
			sub := fmt.Sprintf("100.64.0.%d", 1+i%2) // subscribers behind the NAT
			pub := fmt.Sprintf("203.0.113.%d", 1+i%2)
			port := uint16(1024 + 100*n + i%2)
			ev := uint8(1 + i%2) // NAT44 session create, delete
			t := time.Duration(n)*time.Minute + time.Duration(i)*time.Second + 123*time.Millisecond
			nelRecs = append(nelRecs, nfRec(nfIP(sub), nfIP("198.51.100.80"), nfU16(40000+uint16(i)), nfU16(443), nfU8(6),
				nfIP(pub), nfIP("198.51.100.80"), nfU16(port), nfU16(443), nfU8(ev), ms(t)))
			oldRecs = append(oldRecs, nfRec(nfIP("10.1.0.5"), nfIP("198.51.100.53"), nfU16(5353), nfU16(53), nfU8(17),
				nfIP("203.0.113.9"), nfIP("198.51.100.53"), nfU16(port), nfU16(53), nfU8(ev), nfU32(100*uint32(i+1)), nfU32(300), ms(t), ms(t+time.Second)))
			newRecs = append(newRecs, nfRec(nfIP("10.1.0.6"), nfIP("198.51.100.25"), nfU16(2525), nfU16(25), nfU8(6),
				nfIP("203.0.113.10"), nfIP("198.51.100.25"), nfU16(port), nfU16(25), nfU8(ev), nfU32(1000), nfU32(2000), ms(t)))
			countedRecs = append(countedRecs, nfRec(nfIP("10.2.0.1"), nfIP("198.51.100.1"), nfU16(3000), nfU16(80), nfU8(6),
				nfIP("203.0.113.20"), nfU16(port), nfU32(1500), nfU32(3), ms(t), ms(t+2*time.Second)))
			v6Recs = append(v6Recs, nfRec(nfIP("2001:db8::1"), nfIP("2001:db8::2"), nfU16(4000), nfU16(443), nfU8(6),
				nfIP("203.0.113.30"), nfU16(port), nfU32(600), nfU32(2)))
		}
		nel.send(at, 1+len(nelRecs), nel.templateSet(300, nelFields...), nfSet(300, nelRecs...))
		asa.send(at, 5+4*len(oldRecs),
			asa.templateSet(256, asaOld...), asa.templateSet(257, asaNew...), asa.templateSet(258, natCounted...), asa.templateSet(259, v6...),
			nfSet(256, oldRecs...), nfSet(257, newRecs...), nfSet(258, countedRecs...), nfSet(259, v6Recs...))
	}
	return append(nel.out, asa.out...)
}

// NAT and firewall events, against nfacctd 1.7.7 on the same generated
// NEL and NSEL export: the same records, post-NAT addresses and ports,
// events, event times, and documents without counters where nfacctd writes
// none.
func TestNATEventsMatchNfacctd(t *testing.T) {
	dir, capture := nfacctdExport(t, natExport())
	// the map's nat_event: nfacctd 1.7.7 matches IE 230 only (flowdex the
	// nat_event primitive, from ASA's 40005 too): the NEL exporter's rules
	mapFile := writeFile(t, dir, "pretag.map", "set_tag=5 ip=192.0.2.20 nat_event=2\nset_tag=6 ip=192.0.2.20 nat_event=-2 src_net=100.64.0.1/32\nset_tag=7 ip=192.0.2.21 nat_event=-9\n")
	agg := []string{"tag", "peer_src_ip", "src_host", "dst_host", "src_port", "post_nat_src_host", "post_nat_dst_host",
		"post_nat_src_port", "post_nat_dst_port", "nat_event", "timestamp_start", "timestamp_end"}
	want, got := goldenRun(t, dir, pmacctRun{daemon: "nfacctd", savefile: capture, preTagMap: mapFile}, "",
		fmt.Sprintf("type = \"netflow\"\nreplay = %q\npre_tag_map = %q", capture, mapFile), "", agg, "packets", "bytes")
	if len(want) < 20 {
		t.Fatalf("nfacctd made %d records: the export tests too little", len(want))
	}
	compareSums(t, got, want)
	// each kind of record took part, as nfacctd writes it
	for _, k := range []string{
		// NEL: an event, without counters; its time from observationTimeMilliseconds, no end
		`{"bytes":null,"ip_dst":"198.51.100.80","ip_src":"100.64.0.1","nat_event":1,"packets":null,"peer_ip_src":"192.0.2.20","port_src":40000,"post_nat_ip_dst":"198.51.100.80","post_nat_ip_src":"203.0.113.1","post_nat_port_dst":443,"post_nat_port_src":1024,"tag":6,"timestamp_end":"0000-00-00 00:00:00.000000","timestamp_start":"2024-01-01 00:00:00.123000"}`,
		// NSEL before 8.4: Cisco's elements; initiator and responder octets are no counters
		`{"bytes":0,"ip_dst":"198.51.100.53","ip_src":"10.1.0.5","nat_event":1,"packets":0,"peer_ip_src":"192.0.2.21","port_src":5353,"post_nat_ip_dst":"198.51.100.53","post_nat_ip_src":"203.0.113.9","post_nat_port_dst":53,"post_nat_port_src":1024,"tag":7,"timestamp_end":"0000-00-00 00:00:00.000000","timestamp_start":"2024-01-01 00:00:00.123000"}`,
		// NSEL 8.4: firewallEvent is no nat_event
		`{"bytes":0,"ip_dst":"198.51.100.25","ip_src":"10.1.0.6","nat_event":0,"packets":0,"peer_ip_src":"192.0.2.21","port_src":2525,"post_nat_ip_dst":"198.51.100.25","post_nat_ip_src":"203.0.113.10","post_nat_port_dst":25,"post_nat_port_src":1024,"tag":7,"timestamp_end":"0000-00-00 00:00:00.000000","timestamp_start":"2024-01-01 00:00:00.123000"}`,
		// IPv6 traffic: its post-NAT IPv4 address is not read, the port is
		`{"bytes":1200,"ip_dst":"2001:db8::2","ip_src":"2001:db8::1","nat_event":0,"packets":4,"peer_ip_src":"192.0.2.21","port_src":4000,"post_nat_ip_dst":"","post_nat_ip_src":"","post_nat_port_dst":0,"post_nat_port_src":1024,"tag":7,"timestamp_end":"0000-00-00 00:00:00.000000","timestamp_start":"2024-01-01 00:00:00.000000"}`,
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("no record %s", k)
		}
	}
	tags := map[string]bool{}
	for k := range got {
		for _, tag := range []string{`"tag":5`, `"tag":6`, `"tag":7`} {
			if strings.Contains(k, tag) {
				tags[tag] = true
			}
		}
	}
	if len(tags) != 3 {
		t.Errorf("not every rule of the map matched: %v", tags)
	}
}

// cgnatQuery is the README's answer to "who had public address A, port P
// at time T": the latest session creation (nat_event 1) for A:P at or
// before T. (The README gives the same in Kibana's KQL.)
const cgnatQuery = `{
  "size": 1,
  "query": {"bool": {"filter": [
    {"term": {"post_nat_ip_src": "%s"}},
    {"term": {"post_nat_port_src": %d}},
    {"term": {"nat_event": 1}},
    {"range": {"timestamp_start": {"lte": "%s"}}}
  ]}},
  "sort": [{"timestamp_start": "desc"}]
}`

// NEL records indexed into Elasticsearch answer the CGNAT question with the
// README's query: the subscriber's address and port behind a public
// address and port at a time.
func TestCGNATLookup(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "cgnat")
	dir := t.TempDir()
	capture := filepath.Join(dir, "export.pcap")
	if err := writeExportPcap(capture, natExport()); err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
replay = %q

[[pipeline]]
aggregate = ["peer_src_ip", "src_host", "src_port", "post_nat_src_host", "post_nat_src_port", "nat_event", "timestamp_start"]
timestamps_utc = true
refresh = "24h"
outputs = ["es"]

[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m"
replicas = 0
`, capture, url, index))
	if code, _, stderr := runCLI(t, "", "run", "-c", conf); code != 0 {
		t.Fatalf("flowdex run: exit %d\n%s", code, stderr)
	}
	estest.Refresh(t, url, index+"-*")
	for _, tt := range []struct {
		addr    string
		port    int
		at      string
		sub     string
		subPort float64
	}{
		{"203.0.113.1", 1024, "2024-01-01T00:00:30Z", "100.64.0.1", 40002}, // the later of two creations that minute
		{"203.0.113.1", 1024, "2024-01-01T00:00:01Z", "100.64.0.1", 40000}, // the earlier
		{"203.0.113.1", 1124, "2024-01-01T00:05:00Z", "100.64.0.1", 40002}, // the next minute's port
		{"203.0.113.1", 1124, "2024-01-01T00:00:59Z", "", 0},               // not yet given out
	} {
		hits := estest.Search(t, url, index+"-*", fmt.Sprintf(cgnatQuery, tt.addr, tt.port, tt.at))
		var got string
		var gotPort float64
		if len(hits) > 0 {
			got, _ = hits[0]["ip_src"].(string)
			gotPort, _ = hits[0]["port_src"].(float64)
		}
		if got != tt.sub || gotPort != tt.subPort {
			t.Errorf("%s:%d at %s: %s:%v, want %s:%v (hits %v)", tt.addr, tt.port, tt.at, got, gotPort, tt.sub, tt.subPort, hits)
		}
	}
}
