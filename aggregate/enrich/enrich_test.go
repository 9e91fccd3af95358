package enrich

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/enrich/enrichtest"
)

// testFiles writes the test databases and text files to a temporary directory.
func testFiles(t testing.TB) Configuration {
	t.Helper()
	dir := t.TempDir()
	c := Configuration{
		GeoIPDatabase:  filepath.Join(dir, "city.mmdb"),
		ASNDatabase:    filepath.Join(dir, "asn.mmdb"),
		ServicesFile:   filepath.Join(dir, "services"),
		InterfacesFile: filepath.Join(dir, "interfaces.csv"),
	}
	enrichtest.WriteCity(t, c.GeoIPDatabase, enrichtest.Geos)
	enrichtest.WriteASN(t, c.ASNDatabase, enrichtest.ASes)
	writeText(t, c.ServicesFile, `# test services
http		80/tcp		www		# WorldWideWeb HTTP
domain		53/tcp				# Domain Name Server
domain		53/udp
https		443/tcp
https		443/udp
www-alt		80/tcp		# a second name for 80/tcp: the first wins
diameter	3868/sctp
ddp-only	7/ddp
`)
	writeText(t, c.InterfacesFile, `# exporter, ifindex, name, description
192.0.2.1, 3, xe-0/0/1, "transit: AS64500, 10G"
192.0.2.1, 4, xe-0/0/2
2001:db8::1, 3, Ethernet3, peering
*, 1, lo0, loopback (any exporter)
`)
	return c
}

func writeText(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// enrichJSON enriches a pmacct JSON record and returns the document decoded.
func enrichJSON(t testing.TB, e *Enricher, record string) map[string]any {
	t.Helper()
	var d document.Document
	if err := document.NewDecoder().Decode([]byte(record), &d); err != nil {
		t.Fatal(err)
	}
	e.Enrich(&d)
	var m map[string]any
	if err := json.Unmarshal(d.AppendJSON(nil, document.Compact), &m); err != nil {
		t.Fatalf("enriched document is not JSON: %v\n%s", err, d.AppendJSON(nil, document.Compact))
	}
	return m
}

// added returns the fields of got that are not in the record.
func added(t testing.TB, record string, got map[string]any) map[string]any {
	t.Helper()
	var in map[string]any
	if err := json.Unmarshal([]byte(record), &in); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range got {
		if old, ok := in[k]; !ok || !reflect.DeepEqual(old, v) {
			out[k] = v
		}
	}
	return out
}

func TestEnrich(t *testing.T) {
	e, err := New(testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	london := map[string]any{"country_ip_src": "GB", "city_ip_src": "London", "pocode_ip_src": "EC1A",
		"lat_ip_src": 51.5142, "lon_ip_src": -0.0931, "location_ip_src": map[string]any{"lat": 51.5142, "lon": -0.0931},
		"as_src": 20712.0, "as_name_src": "Andrews & Arnold Ltd"}
	for _, tc := range []struct {
		name, record string
		want         map[string]any // the fields the enricher adds or changes
	}{
		{"v4 source", `{"ip_src": "81.2.69.160", "packets": 1}`, london},
		{"v4 both, UTF-8 city, no postal code", `{"ip_src": "81.2.69.160", "ip_dst": "89.160.20.112"}`, merge(london, map[string]any{
			"country_ip_dst": "SE", "city_ip_dst": "Linköping", "lat_ip_dst": 58.4167, "lon_ip_dst": 15.6167,
			"location_ip_dst": map[string]any{"lat": 58.4167, "lon": 15.6167}, "as_dst": 29518.0, "as_name_dst": "Bredband2 AB"})},
		{"v6 destination", `{"ip_dst": "2a01:4f8:c17:1::2"}`, map[string]any{
			"country_ip_dst": "DE", "city_ip_dst": "Nuremberg", "lat_ip_dst": 49.4478, "lon_ip_dst": 11.0683,
			"location_ip_dst": map[string]any{"lat": 49.4478, "lon": 11.0683}, "as_dst": 24940.0, "as_name_dst": "Hetzner Online GmbH"}},
		{"v4-mapped v6", `{"ip_src": "::ffff:81.2.69.160"}`, london},
		{"country only, no AS", `{"ip_src": "216.160.83.56"}`, map[string]any{"country_ip_src": "US"}},
		{"private and unknown addresses miss", `{"ip_src": "10.1.2.3", "ip_dst": "8.8.8.8"}`, map[string]any{}},
		{"pmacct's empty and unspecified addresses", `{"ip_src": "", "ip_dst": "0.0.0.0"}`, map[string]any{}},
		{"not an address", `{"ip_src": "not-an-ip"}`, map[string]any{}},
		{"existing as_src kept, its name not guessed", `{"ip_src": "81.2.69.160", "as_src": 65001}`,
			without(london, "as_src", "as_name_src")},
		{"existing as_src equal to the database's gets its name", `{"ip_src": "81.2.69.160", "as_src": 20712}`,
			without(london, "as_src")},
		{"as_src 0 is no AS", `{"ip_src": "81.2.69.160", "as_src": 0}`, london},
		{"no address fields, no geo", `{"as_src": 0, "packets": 3}`, map[string]any{}},
		{"tcp by name", `{"ip_proto": "tcp", "port_src": 443, "port_dst": 80}`,
			map[string]any{"port_src_name": "https", "port_dst_name": "http"}},
		{"udp by number (num_protos)", `{"ip_proto": 17, "port_src": 53, "port_dst": 40000}`,
			map[string]any{"port_src_name": "domain"}},
		{"number as a string (flowdex num_protos)", `{"ip_proto": "6", "port_dst": 443}`, map[string]any{"port_dst_name": "https"}},
		{"sctp", `{"ip_proto": "sctp", "port_dst": 3868}`, map[string]any{"port_dst_name": "diameter"}},
		{"icmp has no services", `{"ip_proto": "icmp", "port_src": 80, "port_dst": 0}`, map[string]any{}},
		{"no ip_proto, no service", `{"port_dst": 80}`, map[string]any{}},
		{"interfaces of an exporter", `{"peer_ip_src": "192.0.2.1", "iface_in": 3, "iface_out": 4}`, map[string]any{
			"iface_in_name": "xe-0/0/1", "iface_in_desc": "transit: AS64500, 10G", "iface_out_name": "xe-0/0/2"}},
		{"v6 exporter, wildcard entry", `{"peer_ip_src": "2001:db8::1", "iface_in": 3, "iface_out": 1}`, map[string]any{
			"iface_in_name": "Ethernet3", "iface_in_desc": "peering", "iface_out_name": "lo0", "iface_out_desc": "loopback (any exporter)"}},
		{"another exporter's ifIndex misses", `{"peer_ip_src": "192.0.2.2", "iface_in": 3}`, map[string]any{}},
		{"no exporter: wildcard only", `{"iface_in": 1, "iface_out": 3}`, map[string]any{"iface_in_name": "lo0", "iface_in_desc": "loopback (any exporter)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := added(t, tc.record, enrichJSON(t, e, tc.record))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s\n got %v\nwant %v", tc.record, got, tc.want)
			}
		})
	}
	s := e.Stats()
	// addresses: v4 source 1, v4 both 2, v6 1, mapped 1, country only 1,
	// private/unknown 2 (both miss), the three as_src cases 3
	if s.GeoLookups != 11 || s.GeoHits != 9 || s.GeoMisses != 2 {
		t.Errorf("geo lookups %d hits %d misses %d, want 11, 9, 2", s.GeoLookups, s.GeoHits, s.GeoMisses)
	}
	if s.ASNHits != 8 || s.ASNMisses != 3 { // and the country-only network has no AS
		t.Errorf("asn hits %d misses %d, want 8, 3", s.ASNHits, s.ASNMisses)
	}
	if s.BadAddresses != 1 {
		t.Errorf("bad addresses %d, want 1", s.BadAddresses)
	}
	// icmp: no lookup; port 40000: a miss
	if s.ServiceLookups != 6 || s.ServiceHits != 5 {
		t.Errorf("service lookups %d hits %d, want 6, 5", s.ServiceLookups, s.ServiceHits)
	}
	if s.InterfaceLookups != 7 || s.InterfaceHits != 5 {
		t.Errorf("interface lookups %d hits %d, want 7, 5", s.InterfaceLookups, s.InterfaceHits)
	}
}

func merge(a, b map[string]any) map[string]any {
	m := map[string]any{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func without(a map[string]any, keys ...string) map[string]any {
	m := merge(a, nil)
	for _, k := range keys {
		delete(m, k)
	}
	return m
}

// Only the files configured are used.
func TestEnrichPartial(t *testing.T) {
	c := testFiles(t)
	e, err := New(Configuration{ASNDatabase: c.ASNDatabase})
	if err != nil {
		t.Fatal(err)
	}
	rec := `{"ip_src": "81.2.69.160", "ip_proto": "tcp", "port_src": 80, "iface_in": 1}`
	got := added(t, rec, enrichJSON(t, e, rec))
	want := map[string]any{"as_src": 20712.0, "as_name_src": "Andrews & Arnold Ltd"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestBadFiles(t *testing.T) {
	good := testFiles(t)
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		writeText(t, p, text)
		return p
	}
	for _, tc := range []struct {
		name string
		c    Configuration
		want string
	}{
		{"missing geoip", Configuration{GeoIPDatabase: filepath.Join(dir, "none.mmdb")}, "none.mmdb: no such file"},
		{"geoip not an mmdb", Configuration{GeoIPDatabase: file("text.mmdb", "hello\n")}, "text.mmdb: not a MaxMind DB (MMDB) file"},
		{"asn database as geoip", Configuration{GeoIPDatabase: good.ASNDatabase}, `asn.mmdb: database type "GeoLite2-ASN" is an ASN database`},
		{"city database as asn", Configuration{ASNDatabase: good.GeoIPDatabase}, `city.mmdb: database type "GeoLite2-City" is a City or Country database`},
		{"services without port", Configuration{ServicesFile: file("s1", "# c\nhttp 80/tcp\nbroken\n")}, `s1:3: "broken" has no port`},
		{"services bad port", Configuration{ServicesFile: file("s2", "http 80/tcp\n\nx 99999/tcp\n")}, `s2:3: "99999/tcp" is not a port/protocol`},
		{"interfaces bad address", Configuration{InterfacesFile: file("i1", "# c\n\n192.0.2.300,1,x\n")}, `i1:3: "192.0.2.300" is not an address`},
		{"interfaces bad ifindex", Configuration{InterfacesFile: file("i2", "192.0.2.1,1,a\n192.0.2.1,-1,b\n")}, `i2:2: "-1" is not an ifIndex`},
		{"interfaces field count", Configuration{InterfacesFile: file("i3", "192.0.2.1,1\n")}, `i3:1: 2 fields (expected exporter,ifindex,name[,description]`},
		{"interfaces duplicate", Configuration{InterfacesFile: file("i4", "192.0.2.1,1,a\n#\n192.0.2.1,1,b\n")}, `i4:3: exporter 192.0.2.1 ifIndex 1 listed twice`},
		{"interfaces bad quoting", Configuration{InterfacesFile: file("i5", "192.0.2.1,1,a\n192.0.2.1,2,\"b\n")}, `i5:2: extraneous or missing " in quoted-field`},
		{"interfaces empty", Configuration{InterfacesFile: file("i6", "192.0.2.1,1,,\n")}, `i6:1: no name and no description`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// A reload switches to the new files; a failed one keeps the previous tables
// and is counted.
func TestReload(t *testing.T) {
	c := testFiles(t)
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	rec := `{"ip_src": "81.2.69.160", "peer_ip_src": "192.0.2.1", "iface_in": 3}`
	check := func(city, iface string) {
		t.Helper()
		m := enrichJSON(t, e, rec)
		if m["city_ip_src"] != city || m["iface_in_name"] != iface {
			t.Fatalf("city %v iface %v, want %s, %s", m["city_ip_src"], m["iface_in_name"], city, iface)
		}
	}
	check("London", "xe-0/0/1")

	geos := append([]enrichtest.Geo{{Network: "81.2.69.0/24", Country: "FR", City: "Paris", Lat: 48.8566, Lon: 2.3522}}, enrichtest.Geos[1:]...)
	enrichtest.WriteCity(t, c.GeoIPDatabase, geos)
	writeText(t, c.InterfacesFile, "192.0.2.1,3,et-0/0/0\n")
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	check("Paris", "et-0/0/0")

	writeText(t, c.InterfacesFile, "192.0.2.1,3,et-0/0/0\nbroken line\n")
	err = e.Reload()
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != c.InterfacesFile || fe.Line != 2 {
		t.Fatalf("reload error %v, want one at %s:2", err, c.InterfacesFile)
	}
	check("Paris", "et-0/0/0")
	if s := e.Stats(); s.Reloads != 1 || s.ReloadErrors != 1 {
		t.Errorf("reloads %d, errors %d; want 1 and 1", s.Reloads, s.ReloadErrors)
	}
	var kinds []string
	for _, l := range e.Loaded() {
		kinds = append(kinds, l.Kind)
		if (l.Kind == "geoip" || l.Kind == "asn") && (!l.Built.Equal(enrichtest.Built) || l.Entries == 0) {
			t.Errorf("%s: built %v, %d entries; want %v and some", l.Kind, l.Built, l.Entries, enrichtest.Built)
		}
	}
	if strings.Join(kinds, ",") != "geoip,asn,services,interfaces" {
		t.Errorf("loaded %v", kinds)
	}
}

// Reloads while documents are enriched: run with -race.
func TestReloadConcurrent(t *testing.T) {
	e, err := New(testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if err := e.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	rec := `{"ip_src": "81.2.69.160", "ip_proto": "tcp", "port_dst": 80, "iface_in": 1}`
	for {
		select {
		case <-done:
			return
		default:
		}
		if m := enrichJSON(t, e, rec); m["city_ip_src"] != "London" || m["port_dst_name"] != "http" {
			t.Fatalf("got %v", m)
		}
	}
}

// The system's /etc/services names the common ports.
func TestSystemServices(t *testing.T) {
	s, err := LoadServices(DefaultServicesFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Lookup(protoTCP, 22); got != "ssh" {
		t.Errorf("22/tcp is %q, want ssh", got)
	}
	if got := s.Lookup(protoUDP, 53); got != "domain" {
		t.Errorf("53/udp is %q, want domain", got)
	}
}

func BenchmarkEnrich(b *testing.B) {
	e, err := New(testFiles(b))
	if err != nil {
		b.Fatal(err)
	}
	rec := []byte(`{"peer_ip_src": "192.0.2.1", "iface_in": 3, "iface_out": 4, "ip_src": "81.2.69.160", "ip_dst": "2a01:4f8:c17:1::2", ` +
		`"port_src": 443, "port_dst": 51234, "ip_proto": "tcp", "as_src": 0, "as_dst": 0, "packets": 10, "bytes": 4000}`)
	var base, d document.Document
	if err := document.NewDecoder().Decode(rec, &base); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d.CopyFrom(&base) // a fresh record each time, as documents come
		e.Enrich(&d)
	}
	if v, _ := d.Get("city_ip_dst"); string(v.Bytes) != "Nuremberg" {
		b.Fatalf("not enriched: %s", d.AppendJSON(nil, document.Compact))
	}
}
