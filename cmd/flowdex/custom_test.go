package main

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// customPrimitives defines one custom primitive of each semantics, of
// IANA elements and of an enterprise's, of fixed and variable length.
const customPrimitives = `! flowdex and nfacctd 1.7.7, the same file
name=vrf_in	field_type=234	len=4	semantics=u_int
name=flow_id	field_type=148	len=8	semantics=u_int
name=icmp6	field_type=139	len=2	semantics=hex
name=nat_src	field_type=225	len=4	semantics=ip
name=nat_src6	field_type=281	len=16	semantics=ip
name=sta_mac	field_type=365	len=6	semantics=mac
name=app_name	field_type=96	len=8	semantics=str
name=blob	field_type=500	len=3	semantics=raw
name=fw_ext	field_type=9:12235	len=2	semantics=hex
name=user	field_type=9:12236	len=vlen	semantics=str
`

// customExport is a NetFlow v9 exporter and an IPFIX one sending records
// with every element of customPrimitives (the IPFIX one only has the
// enterprise's), values repeating so that records aggregate.
func customExport() []exportDatagram {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	common := []nfField{{8, 4, 0}, {12, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0}, {1, 4, 0}, {2, 4, 0},
		{234, 4, 0}, {148, 8, 0}, {139, 2, 0}, {225, 4, 0}, {281, 16, 0}, {365, 6, 0}, {96, 8, 0}, {500, 3, 0}}
	record := func(i int) []byte {
		return nfRec(nfIP(fmt.Sprintf("10.0.0.%d", i%3+1)), nfIP("198.51.100.1"), nfU16(uint16(40000+i%2)), nfU16(443), nfU8(6),
			nfU32(uint32(100*(i+1))), nfU32(uint32(i+1)),
			nfU32(uint32(i%2)), nfU64(uint64(1)<<40|uint64(i%3)), nfU16(uint16(0x8000+i%2)), nfIP(fmt.Sprintf("203.0.113.%d", 7+i%2)),
			nfIP(fmt.Sprintf("2001:db8::%x", 0xa+i%2)), []byte{2, 0, 0, 0, 0, byte(i % 3)}, []byte([...]string{"http\x00\x00\x00\x00", "dns-long", "ssh\x00\x00\x00\x00\x00"}[i%3]),
			[]byte{0, byte(i % 2), 0xff})
	}
	v9 := &nfExporter{version: 9, src: netip.MustParseAddrPort("192.0.2.10:50000"), domain: 1}
	ipfix := &nfExporter{version: 10, src: netip.MustParseAddrPort("192.0.2.11:50001"), domain: 2}
	ipfixFields := append(append([]nfField{}, common...), nfField{12235, 2, 9}, nfField{12236, varLen, 9})
	for n := range 4 {
		at := start.Add(time.Duration(n) * 10 * time.Second)
		var v9recs, ipfixRecs [][]byte
		for i := range 6 {
			v9recs = append(v9recs, record(n*6+i))
			ipfixRecs = append(ipfixRecs, nfRec(record(n*6+i), nfU16(uint16(0xbee0+i%2)), nfVar([]byte([...]string{"alice", "bob", "carol-the-admin"}[i%3]))))
		}
		v9.send(at, 1+len(v9recs), v9.templateSet(256, common...), nfSet(256, v9recs...))
		ipfix.send(at, 1+len(ipfixRecs), ipfix.templateSet(300, ipfixFields...), nfSet(300, ipfixRecs...))
	}
	return append(v9.out, ipfix.out...)
}

// primitiveNames are the names an aggregate_primitives file defines.
func primitiveNames(file string) []string {
	var names []string
	for _, line := range strings.Split(file, "\n") {
		if name, ok := strings.CutPrefix(line, "name="); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	return names
}

// customGolden makes what a golden of customExport needs: nfacctd, the
// export's capture and customPrimitives, in dir.
func customGolden(t *testing.T) (dir, capture, primitives string) {
	t.Helper()
	requireTools(t, "nfacctd")
	requireFaketime(t)
	dir = t.TempDir()
	capture = filepath.Join(dir, "export.pcap")
	if err := writeExportPcap(capture, customExport()); err != nil {
		t.Fatal(err)
	}
	return dir, capture, writeFile(t, dir, "primitives.lst", customPrimitives)
}

// Custom primitives from aggregate_primitives, against nfacctd 1.7.7 with
// the same file on the same export: the same records, values and sums.
func TestCustomPrimitivesMatchNfacctd(t *testing.T) {
	dir, capture, primitives := customGolden(t)
	agg := append([]string{"peer_src_ip", "src_host", "src_port"}, primitiveNames(customPrimitives)...)
	want, got := goldenRun(t, dir, pmacctRun{daemon: "nfacctd", savefile: capture, primitives: primitives},
		fmt.Sprintf("aggregate_primitives = %q", primitives), fmt.Sprintf("type = \"netflow\"\nreplay = %q", capture), "", agg)
	if len(want) < 12 {
		t.Fatalf("nfacctd made %d records: the export tests too little", len(want))
	}
	// nfacctd 1.7.7 bug: a fixed-length str whose bytes are all text (no
	// zero byte) is written with the next primitive's text after it
	// ("dns-long" then blob's "00-01-FF": "dns-long00-01-FF"); flowdex
	// writes the field's 8 bytes
	runOn := regexp.MustCompile(`"app_name":"dns-long[^"]+"`)
	fixed := map[string]string{}
	for k, v := range want {
		fixed[runOn.ReplaceAllString(k, `"app_name":"dns-long"`)] = v
	}
	if len(fixed) != len(want) || maps.Equal(fixed, want) {
		t.Errorf("nfacctd's run-on strings: the bug (or the export) changed")
	}
	compareSums(t, got, fixed)
}
