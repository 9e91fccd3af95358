package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
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
	requireTools(t, "nfacctd")
	requireFaketime(t)
	dir := t.TempDir()
	capture := filepath.Join(dir, "export.pcap")
	if err := writeExportPcap(capture, natExport()); err != nil {
		t.Fatal(err)
	}
	agg := []string{"peer_src_ip", "src_host", "dst_host", "src_port", "post_nat_src_host", "post_nat_dst_host",
		"post_nat_src_port", "post_nat_dst_port", "nat_event", "timestamp_start", "timestamp_end"}
	want, got := goldenRun(t, dir, pmacctRun{daemon: "nfacctd", savefile: capture}, "",
		fmt.Sprintf("type = \"netflow\"\nreplay = %q", capture), agg, "packets", "bytes")
	if len(want) < 20 {
		t.Fatalf("nfacctd made %d records: the export tests too little", len(want))
	}
	compareSums(t, got, want)
	// each kind of record took part, as nfacctd writes it
	for _, k := range []string{
		// NEL: an event, without counters; its time from observationTimeMilliseconds, no end
		`{"bytes":null,"ip_dst":"198.51.100.80","ip_src":"100.64.0.1","nat_event":1,"packets":null,"peer_ip_src":"192.0.2.20","port_src":40000,"post_nat_ip_dst":"198.51.100.80","post_nat_ip_src":"203.0.113.1","post_nat_port_dst":443,"post_nat_port_src":1024,"timestamp_end":"0000-00-00 00:00:00.000000","timestamp_start":"2024-01-01 00:00:00.123000"}`,
		// NSEL before 8.4: Cisco's elements; initiator and responder octets are no counters
		`{"bytes":0,"ip_dst":"198.51.100.53","ip_src":"10.1.0.5","nat_event":1,"packets":0,"peer_ip_src":"192.0.2.21","port_src":5353,"post_nat_ip_dst":"198.51.100.53","post_nat_ip_src":"203.0.113.9","post_nat_port_dst":53,"post_nat_port_src":1024,"timestamp_end":"0000-00-00 00:00:00.000000","timestamp_start":"2024-01-01 00:00:00.123000"}`,
		// NSEL 8.4: firewallEvent is no nat_event
		`{"bytes":0,"ip_dst":"198.51.100.25","ip_src":"10.1.0.6","nat_event":0,"packets":0,"peer_ip_src":"192.0.2.21","port_src":2525,"post_nat_ip_dst":"198.51.100.25","post_nat_ip_src":"203.0.113.10","post_nat_port_dst":25,"post_nat_port_src":1024,"timestamp_end":"0000-00-00 00:00:00.000000","timestamp_start":"2024-01-01 00:00:00.123000"}`,
		// IPv6 traffic: its post-NAT IPv4 address is not read, the port is
		`{"bytes":1200,"ip_dst":"2001:db8::2","ip_src":"2001:db8::1","nat_event":0,"packets":4,"peer_ip_src":"192.0.2.21","port_src":4000,"post_nat_ip_dst":"","post_nat_ip_src":"","post_nat_port_dst":0,"post_nat_port_src":1024,"timestamp_end":"0000-00-00 00:00:00.000000","timestamp_start":"2024-01-01 00:00:00.000000"}`,
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("no record %s", k)
		}
	}
}
