package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// vpnExport is a NetFlow v9 and an IPFIX exporter with route
// distinguishers of every type (IE 90), VRF ids by direction (IE 234, 235,
// 61), pseudowire ids (IE 249) and flow directions of both lengths.
func vpnExport() []exportDatagram {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rds := [][]byte{
		nfRec(nfU16(0), nfU16(65000), nfU32(1)),        // 0:65000:1
		nfRec(nfU16(1), nfIP("192.0.2.1"), nfU16(100)), // 1:192.0.2.1:100
		nfRec(nfU16(2), nfU32(4200000000), nfU16(7)),   // 2:4200000000:7
		nfRec(nfU16(3), nfU32(1), nfU16(1)),            // unknown
		nfRec(nfU16(0), nfU16(0), nfU32(0)),            // none
	}
	v9 := &nfExporter{version: 9, src: netip.MustParseAddrPort("192.0.2.30:2055"), domain: 3}
	ipfix := &nfExporter{version: 10, src: netip.MustParseAddrPort("192.0.2.31:4739"), domain: 4}
	base := []nfField{{8, 4, 0}, {12, 4, 0}, {1, 4, 0}, {2, 4, 0}}
	withRD := append(append([]nfField{}, base...), nfField{90, 8, 0}, nfField{249, 4, 0}, nfField{61, 1, 0})
	withVRF := append(append([]nfField{}, base...), nfField{234, 4, 0}, nfField{235, 4, 0}, nfField{61, 1, 0}, nfField{90, 8, 0})
	ingressOnly := append(append([]nfField{}, base...), nfField{234, 4, 0}, nfField{61, 1, 0})
	wideDirection := append(append([]nfField{}, base...), nfField{61, 2, 0}, nfField{90, 8, 0})
	for n := range 2 {
		at := start.Add(time.Duration(n) * time.Minute)
		for _, e := range []*nfExporter{v9, ipfix} {
			var rdRecs, vrfRecs, inRecs, wideRecs [][]byte
			for i := range 10 {
				src := nfIP(fmt.Sprintf("10.3.0.%d", 1+i%3))
				counts := nfRec(nfIP("198.51.100.3"), nfU32(uint32(100*(i+1))), nfU32(uint32(i+1)))
				rdRecs = append(rdRecs, nfRec(src, counts, rds[i%len(rds)], nfU32(uint32(i%3)), nfU8(uint8(i%3))))
				vrfRecs = append(vrfRecs, nfRec(src, counts, nfU32(uint32(i%2)*5), nfU32(uint32(i%3)*6), nfU8(uint8(i%2)), rds[0]))
				inRecs = append(inRecs, nfRec(src, counts, nfU32(uint32(i%2)*9), nfU8(1)))
				wideRecs = append(wideRecs, nfRec(src, counts, nfU16(uint16(i%2)), rds[1]))
			}
			e.send(at, 4+4*len(rdRecs),
				e.templateSet(256, withRD...), e.templateSet(257, withVRF...), e.templateSet(258, ingressOnly...), e.templateSet(259, wideDirection...),
				nfSet(256, rdRecs...), nfSet(257, vrfRecs...), nfSet(258, inRecs...), nfSet(259, wideRecs...))
		}
	}
	return append(v9.out, ipfix.out...)
}

// mpls_vpn_rd, mpls_pw_id and sampling_direction against nfacctd 1.7.7 on
// the same export. peer_src_ip is aggregated on: without one of its BGP
// primitives, 1.7.7 crashes writing mpls_pw_id (each purge's writer
// segfaults, the file stays empty).
func TestVPNPrimitivesMatchNfacctd(t *testing.T) {
	dir, capture := nfacctdExport(t, vpnExport())
	// the map's direction (IE 61) and sample_type keys too
	mapFile := writeFile(t, dir, "pretag.map", "set_tag=1 direction=1\nset_tag=2 sample_type=-flow\nset_tag=3 sample_type=flow direction=-1\n")
	agg := []string{"tag", "peer_src_ip", "src_host", "mpls_vpn_rd", "mpls_pw_id", "sampling_direction"}
	want, got := goldenRun(t, dir, pmacctRun{daemon: "nfacctd", savefile: capture, preTagMap: mapFile}, "",
		fmt.Sprintf("type = \"netflow\"\nreplay = %q\npre_tag_map = %q", capture, mapFile), "", agg)
	if len(want) < 20 {
		t.Fatalf("nfacctd made %d records: the export tests too little", len(want))
	}
	compareSums(t, got, want)
	seen := map[string]bool{}
	for k := range got {
		for _, v := range []string{`"0:65000:1"`, `"1:192.0.2.1:100"`, `"2:4200000000:7"`, `"unknown"`, `"0:0:0"`, `"vrfid:5"`, `"vrfid:6"`, `"vrfid:9"`,
			`"sampling_direction":"i"`, `"sampling_direction":"e"`, `"sampling_direction":"u"`, `"mpls_pw_id":2`, `"tag":1}`, `"tag":3}`} {
			if strings.Contains(k, v) {
				seen[v] = true
			}
		}
	}
	if len(seen) != 14 {
		t.Errorf("the export lacks some case: saw %v", seen)
	}
}
