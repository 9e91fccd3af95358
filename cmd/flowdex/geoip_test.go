package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/enrich/enrichtest"
)

// geoExport is a NetFlow v9 export between addresses of enrichtest's City
// database (full records, a country only, a location only) and others it
// does not have (private, IPv6 documentation, IPv4-mapped).
func geoExport() []exportDatagram {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	e := &nfExporter{version: 9, src: netip.MustParseAddrPort("192.0.2.40:2055"), domain: 5}
	v4 := []nfField{{8, 4, 0}, {12, 4, 0}, {7, 2, 0}, {4, 1, 0}, {1, 4, 0}, {2, 4, 0}}
	v6 := []nfField{{27, 16, 0}, {28, 16, 0}, {7, 2, 0}, {4, 1, 0}, {1, 4, 0}, {2, 4, 0}}
	pairs4 := [][2]string{{"81.2.69.10", "216.160.83.20"}, {"81.2.69.99", "216.160.83.21"}, {"89.160.20.5", "81.2.69.11"},
		{"10.0.0.1", "0.0.0.0"}, {"192.0.2.7", "89.160.20.9"}}
	pairs6 := [][2]string{{"2a01:4f8::1", "2001:db8:1::2"}, {"::ffff:81.2.69.10", "2a01:4f8:1::5"}}
	for n := range 2 {
		var r4, r6 [][]byte
		for i, p := range pairs4 {
			r4 = append(r4, nfRec(nfIP(p[0]), nfIP(p[1]), nfU16(uint16(1000+i)), nfU8(6), nfU32(uint32(100*(i+1))), nfU32(uint32(i+1))))
		}
		for i, p := range pairs6 {
			r6 = append(r6, nfRec(nfIP(p[0]), nfIP(p[1]), nfU16(uint16(2000+i)), nfU8(17), nfU32(uint32(60*(i+1))), nfU32(1)))
		}
		e.send(start.Add(time.Duration(n)*time.Minute), 2+len(r4)+len(r6),
			e.templateSet(256, v4...), e.templateSet(257, v6...), nfSet(256, r4...), nfSet(257, r6...))
	}
	return e.out
}

// The GeoIP primitives against nfacctd 1.7.7 with the same City database
// as geoipv2_file: the same countries, postal codes and coordinates, keyed
// as nfacctd keys them (records of one country merge without src_host).
func TestGeoIPMatchesNfacctd(t *testing.T) {
	dir, capture := nfacctdExport(t, geoExport())
	db := filepath.Join(dir, "city.mmdb")
	enrichtest.WriteCity(t, db, enrichtest.Geos)
	input := fmt.Sprintf("type = \"netflow\"\nreplay = %q", capture)
	for _, agg := range [][]string{
		{"src_host", "dst_host", "src_host_country", "dst_host_country", "src_host_pocode", "dst_host_pocode", "src_host_coords", "dst_host_coords"},
		{"src_host_country", "dst_host_country"},
		{"src_host_coords", "proto"},
	} {
		t.Run(fmt.Sprint(agg), func(t *testing.T) {
			dir := t.TempDir()
			want, got := goldenRun(t, dir, pmacctRun{daemon: "nfacctd", savefile: capture, geoipv2: db},
				"", input, fmt.Sprintf("geoip_database = %q", db), agg)
			if len(want) < 3 {
				t.Fatalf("nfacctd made %d records: the export tests too little", len(want))
			}
			compareSums(t, got, want)
			// numbers as nfacctd's jansson writes them, not only their values
			if agg[0] == "src_host_coords" {
				for _, f := range []string{"nfacctd.json", "flowdex.json"} {
					data, err := os.ReadFile(filepath.Join(dir, f))
					if err != nil || !strings.Contains(string(data), `"lat_ip_src": 51.514200000000002, "lon_ip_src": -0.093100000000000002`) ||
						!strings.Contains(string(data), `"lat_ip_src": 0.0, "lon_ip_src": 0.0`) {
						t.Errorf("%s: coordinates not as jansson writes them (%v):\n%s", f, err, data)
					}
				}
			}
		})
	}
}
