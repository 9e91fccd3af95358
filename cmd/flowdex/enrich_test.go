package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/enrich/enrichtest"
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// enrichmentFiles writes the test MMDBs, a services file and an interfaces
// file to dir.
func enrichmentFiles(t *testing.T, dir string, geos []enrichtest.Geo, ases []enrichtest.AS) {
	t.Helper()
	enrichtest.WriteCity(t, filepath.Join(dir, "city.mmdb"), geos)
	enrichtest.WriteASN(t, filepath.Join(dir, "asn.mmdb"), ases)
	writeFile(t, dir, "services", "http 80/tcp www\nhttps 443/tcp\ndomain 53/udp\n")
	writeFile(t, dir, "interfaces.csv", "# exporter,ifindex,name,description\n192.0.2.1,3,xe-0/0/1,\"transit: AS64500, 10G\"\n192.0.2.1,0,fxp0,management\n")
}

const enrichmentKeys = `geoip_database = "city.mmdb"
asn_database = "asn.mmdb"
services_file = "services"
interfaces_file = "interfaces.csv"
`

// getJSON GETs url and decodes the answer.
func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// fieldTypes returns the mapping type of each field of every index matching pattern.
func fieldTypes(t *testing.T, url, pattern string, fields ...string) map[string]string {
	t.Helper()
	var m map[string]struct {
		Mappings struct {
			Properties map[string]struct {
				Type string `json:"type"`
			} `json:"properties"`
		} `json:"mappings"`
	}
	getJSON(t, url+"/"+pattern+"/_mapping", &m)
	types := map[string]string{}
	for _, idx := range m {
		for _, f := range fields {
			if p, ok := idx.Mappings.Properties[f]; ok {
				types[f] = p.Type
			}
		}
	}
	return types
}

// pmacct JSON records through a pipeline with every enrichment and a
// transformation that uses what the enrichment added (so it ran first): the
// documents in Elasticsearch carry country, city, postal code, coordinates, AS
// number and name, service and interface names; location_ip_src is mapped as a
// geo_point, and a geo_distance query around London finds the London flows.
func TestEnrichIngest(t *testing.T) {
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) {
			url := srv.URL(t)
			index := estest.Index(t, "flowdex-test-enrich")
			dir := t.TempDir()
			enrichmentFiles(t, dir, enrichtest.Geos, enrichtest.ASes)
			rec := func(src, dst string, asSrc, port, iface int) string {
				return fmt.Sprintf(`{"event_type": "purge", "peer_ip_src": "192.0.2.1", "iface_in": %d, "ip_src": "%s", "ip_dst": "%s", "as_src": %d, "as_dst": 0, `+
					`"port_src": 51000, "port_dst": %d, "ip_proto": "tcp", "stamp_inserted": "2026-11-24 08:00:00", "packets": 1, "bytes": 60}`, iface, src, dst, asSrc, port)
			}
			input := writeFile(t, dir, "plugin.json", strings.Join([]string{
				rec("81.2.69.160", "2a01:4f8:c17:1::2", 0, 443, 3), // London -> Nuremberg
				rec("81.2.69.161", "10.0.0.1", 65001, 80, 7),       // London (AS from the record) -> private
				rec("89.160.20.112", "216.160.83.56", 0, 8443, 0),  // Linköping -> US (country only)
				rec("10.9.9.9", "192.168.1.1", 0, 22, 3),           // nothing to find
			}, "\n")+"\n")
			cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
timezone = "UTC"
[[pipeline]]
%s
transformations = '''[{"Conditions": [{"country_ip_src": "GB"}], "Actions": [{"Type": "AddField", "Name": "uk", "Value": "from $city_ip_src"}]}]'''
outputs = ["es"]
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d"
replicas = 0
`, input, enrichmentKeys, url, index))
			code, stdout, stderr := runCLI(t, "", "ingest", "-c", cfg)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			docs := estest.Docs(t, url, index+"-*")
			if len(docs) != 4 {
				t.Fatalf("%d documents, want 4", len(docs))
			}
			bySrc := map[string]map[string]any{}
			for _, d := range docs {
				bySrc[d.Source["ip_src"].(string)] = d.Source
			}
			check := func(src string, want map[string]any, absent ...string) {
				t.Helper()
				d := bySrc[src]
				for k, v := range want {
					if got, _ := json.Marshal(d[k]); string(got) != toJSON(v) {
						t.Errorf("%s: %s = %s, want %s", src, k, got, toJSON(v))
					}
				}
				for _, k := range absent {
					if v, ok := d[k]; ok {
						t.Errorf("%s: %s = %v, want none", src, k, v)
					}
				}
			}
			check("81.2.69.160", map[string]any{
				"country_ip_src": "GB", "city_ip_src": "London", "pocode_ip_src": "EC1A", "lat_ip_src": 51.5142, "lon_ip_src": -0.0931,
				"location_ip_src": map[string]any{"lat": 51.5142, "lon": -0.0931}, "as_src": 20712, "as_name_src": "Andrews & Arnold Ltd",
				"country_ip_dst": "DE", "city_ip_dst": "Nuremberg", "location_ip_dst": map[string]any{"lat": 49.4478, "lon": 11.0683},
				"as_dst": 24940, "as_name_dst": "Hetzner Online GmbH",
				"port_dst_name": "https", "iface_in_name": "xe-0/0/1", "iface_in_desc": "transit: AS64500, 10G", "uk": "from London",
			}, "pocode_ip_dst", "port_src_name", "iface_out_name")
			check("81.2.69.161", map[string]any{"city_ip_src": "London", "as_src": 65001, "as_dst": 0, "port_dst_name": "http", "uk": "from London"},
				"as_name_src", "country_ip_dst", "location_ip_dst", "iface_in_name")
			check("89.160.20.112", map[string]any{"city_ip_src": "Linköping", "as_src": 29518, "country_ip_dst": "US",
				"iface_in_name": "fxp0", "iface_in_desc": "management"},
				"city_ip_dst", "location_ip_dst", "port_dst_name", "uk", "as_name_dst")
			check("10.9.9.9", map[string]any{"as_src": 0, "as_dst": 0, "iface_in_name": "xe-0/0/1"},
				"country_ip_src", "location_ip_src", "lat_ip_src", "as_name_src", "country_ip_dst", "port_dst_name")

			types := fieldTypes(t, url, index+"-*", "location_ip_src", "location_ip_dst", "lat_ip_src", "country_ip_src", "city_ip_dst", "as_name_src")
			for f, want := range map[string]string{"location_ip_src": "geo_point", "location_ip_dst": "geo_point", "lat_ip_src": "double",
				"country_ip_src": "keyword", "city_ip_dst": "keyword", "as_name_src": "keyword"} {
				if types[f] != want {
					t.Errorf("%s mapped as %q, want %s", f, types[f], want)
				}
			}
			near := func(field string, lat, lon float64) []string {
				var srcs []string
				for _, d := range estest.Search(t, url, index+"-*", fmt.Sprintf(
					`{"query": {"geo_distance": {"distance": "50km", %q: {"lat": %g, "lon": %g}}}}`, field, lat, lon)) {
					srcs = append(srcs, d["ip_src"].(string))
				}
				return srcs
			}
			// central London and Nuremberg; Linköping is 1400 km from London
			if got := strings.Join(sorted(near("location_ip_src", 51.5074, -0.1278)), ","); got != "81.2.69.160,81.2.69.161" {
				t.Errorf("flows from within 50 km of London: %s", got)
			}
			if got := strings.Join(near("location_ip_dst", 49.45, 11.08), ","); got != "81.2.69.160" {
				t.Errorf("flows to within 50 km of Nuremberg: %s", got)
			}
		})
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// The daemon reloads its enrichment files on SIGHUP, keeps running, and later
// documents carry the new values; a reload that fails keeps the files in use.
func TestEnrichReloadOnSIGHUP(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "flowdex-test-enrich-hup")
	dir := t.TempDir()
	enrichmentFiles(t, dir, enrichtest.Geos, enrichtest.ASes)
	printFile := filepath.Join(dir, "plugin1.json")
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q
[[input]]
type = "pmacct"
file = "plugin1.json"
follow = true
poll = "50ms"
timezone = "UTC"
[[pipeline]]
%s
outputs = ["es"]
`, strings.TrimPrefix(base, "http://"), enrichmentKeys)+esOutputTOML(url, index))
	cmd, stderr := startFlowdex(t, cfg)
	testwatch.WaitFor(t, "flowdex to start", 20*time.Second, func() bool { return strings.Contains(stderr.String(), "enrichment loaded") })

	n := 0
	purge := func(minute int) {
		t.Helper()
		n++
		rec := fmt.Sprintf(`{"event_type": "purge", "peer_ip_src": "192.0.2.1", "iface_in": 3, "ip_src": "81.2.69.160", "stamp_inserted": "2026-11-24 08:%02d:00", "packets": 1, "bytes": 60}`, minute)
		if err := os.WriteFile(printFile, []byte(rec+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		testwatch.WaitFor(t, fmt.Sprintf("purge %d in Elasticsearch", n), 20*time.Second, func() bool { return estest.Count(t, url, index+"-*") == n })
	}
	hangup := func(what string) {
		t.Helper()
		before := strings.Count(stderr.String(), what)
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testwatch.WaitFor(t, what, 20*time.Second, func() bool { return strings.Count(stderr.String(), what) > before })
	}
	purge(1)

	// an operator's update: the network moved to Paris, the interface was renamed
	enrichtest.WriteCity(t, filepath.Join(dir, "city.mmdb"),
		append([]enrichtest.Geo{{Network: "81.2.69.0/24", Country: "FR", City: "Paris", Lat: 48.8566, Lon: 2.3522}}, enrichtest.Geos[1:]...))
	writeFile(t, dir, "interfaces.csv", "192.0.2.1,3,et-0/0/0,upgraded\n")
	hangup("enrichment reloaded")
	purge(2)

	writeFile(t, dir, "interfaces.csv", "192.0.2.1,3,et-0/0/0\n192.0.2.1,three,et-0/0/1\n")
	hangup("enrichment reload failed")
	purge(3)
	// the same counts on /metrics: three documents looked up, one city each
	m := testwatch.Metrics(t, base)
	for _, c := range []struct {
		labels string
		want   float64
	}{{"kind=geoip,pipeline=pipeline1,result=hit", 3}, {"kind=interface,pipeline=pipeline1,result=hit", 3}} {
		if got := m["flowdex_enrich_lookups_total"][c.labels]; got != c.want {
			t.Errorf("flowdex_enrich_lookups_total{%s} = %v, want %v", c.labels, got, c.want)
		}
	}
	if r := m["flowdex_enrich_reloads_total"]; r["pipeline=pipeline1,result=ok"] != 1 || r["pipeline=pipeline1,result=failed"] != 1 {
		t.Errorf("flowdex_enrich_reloads_total %v, want 1 ok and 1 failed", r)
	}
	terminate(t, cmd, stderr) // SIGHUP did not end it: it stops on SIGTERM, with exit 0

	want := map[string]string{"08:01": "GB London xe-0/0/1", "08:02": "FR Paris et-0/0/0", "08:03": "FR Paris et-0/0/0"}
	for _, d := range estest.Docs(t, url, index+"-*") {
		stamp := d.Source["stamp_inserted"].(string)[11:16]
		got := fmt.Sprint(d.Source["country_ip_src"], " ", d.Source["city_ip_src"], " ", d.Source["iface_in_name"])
		if got != want[stamp] {
			t.Errorf("document of %s: %s, want %s", stamp, got, want[stamp])
		}
	}
	log := stderr.String()
	for _, s := range []string{
		"interfaces.csv:2: \\\"three\\\" is not an ifIndex", // the failed reload names file and line
		"built=2026-11-01T12:00:00",                         // the MMDB's build time
		"reloads=1 reload_errors=1",
	} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %s:\n%s", s, log)
		}
	}
}

// Aggregated flows are enriched too: a NetFlow v9 export replayed into a
// flow pipeline gives documents with the geo, AS, service and interface fields
// of their addresses, ports and interfaces.
func TestEnrichFlows(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "flowdex-test-enrich-flows")
	dir := t.TempDir()
	// the export's documentation addresses
	enrichmentFiles(t, dir,
		[]enrichtest.Geo{{Network: "192.0.2.0/24", Country: "JP", City: "Tokyo", Lat: 35.6895, Lon: 139.6917},
			{Network: "203.0.113.0/24", Country: "AU", City: "Sydney", Lat: -33.8688, Lon: 151.2093}},
		[]enrichtest.AS{{Network: "192.0.2.0/24", Number: 64500, Org: "Example Origin"}})
	export, err := filepath.Abs("../../collector/netflow/testdata/softflowd-v9.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "netflow"
replay = %q
[[pipeline]]
aggregate = ["src_host", "dst_host", "proto", "src_port", "dst_port", "peer_src_ip", "in_iface", "src_as"]
num_protos = true
%s
outputs = ["es"]
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s"
replicas = 0
`, export, enrichmentKeys, url, index))
	code, stdout, stderr := runCLI(t, "", "run", "-c", cfg)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	docs := estest.Docs(t, url, index)
	found := 0
	for _, d := range docs {
		s := d.Source
		if s["ip_src"] != "192.0.2.10" || s["ip_dst"] != "203.0.113.53" {
			continue
		}
		found++
		var fields []string
		for _, k := range []string{"country_ip_src", "city_ip_src", "location_ip_src", "as_src", "as_name_src",
			"country_ip_dst", "location_ip_dst", "as_dst", "ip_proto", "port_dst_name", "iface_in_name"} {
			fields = append(fields, fmt.Sprint(s[k]))
		}
		got := strings.Join(fields, "|")
		// ip_proto is "17" (num_protos); no as_dst: not aggregated, and not in the ASN database
		const want = "JP|Tokyo|map[lat:35.6895 lon:139.6917]|64500|Example Origin|AU|map[lat:-33.8688 lon:151.2093]|<nil>|17|domain|fxp0"
		if got != want {
			t.Errorf("flow 192.0.2.10 -> 203.0.113.53:\n got %s\nwant %s", got, want)
		}
	}
	if found == 0 {
		t.Fatalf("no flow from 192.0.2.10 to 203.0.113.53 among %d documents", len(docs))
	}
	if types := fieldTypes(t, url, index, "location_ip_dst"); types["location_ip_dst"] != "geo_point" {
		t.Errorf("location_ip_dst mapped as %q", types["location_ip_dst"])
	}
}

// flowdex check loads the enrichment files: it shows the keys of a good
// configuration and reports a broken file at its key, with the file's line.
func TestEnrichCheck(t *testing.T) {
	dir := t.TempDir()
	enrichmentFiles(t, dir, enrichtest.Geos, enrichtest.ASes)
	conf := "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[[pipeline]]\n" + enrichmentKeys + "outputs = [\"p\"]\n[output.p]\ntype = \"print\"\n"
	cfg := writeFile(t, dir, "flowdex.toml", conf)
	code, stdout, stderr := runCLI(t, "", "check", "-c", cfg)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	// paths as run uses them: relative to the configuration's directory
	for _, k := range strings.Split(strings.TrimSpace(enrichmentKeys), "\n") {
		key, file, _ := strings.Cut(k, " = ")
		if k := fmt.Sprintf("%s = %q", key, filepath.Join(dir, strings.Trim(file, `"`))); !strings.Contains(stdout, k) {
			t.Errorf("check does not show %s:\n%s", k, stdout)
		}
	}
	writeFile(t, dir, "interfaces.csv", "# exporter,ifindex,name\n192.0.2.1,3,xe-0/0/1,a,b\n")
	code, _, stderr = runCLI(t, "", "check", "-c", cfg)
	want := cfg + ":8:1: pipeline#0.interfaces_file: " + filepath.Join(dir, "interfaces.csv") + ":2: 5 fields (expected exporter,ifindex,name[,description]"
	if code == 0 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr:\n%s\nwant %s", code, stderr, want)
	}
}
