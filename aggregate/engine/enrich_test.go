package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/enrich"
	"github.com/flowdex/flowdex/aggregate/enrich/enrichtest"
)

// Enrichment files are loaded by New, and a bad one is reported at its key.
func TestEnrichmentConfig(t *testing.T) {
	dir := t.TempDir()
	enrichtest.WriteCity(t, filepath.Join(dir, "city.mmdb"), enrichtest.Geos)
	enrichtest.WriteASN(t, filepath.Join(dir, "asn.mmdb"), enrichtest.ASes)
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ifaces.csv", "192.0.2.1,1,ge-0/0/0\n")
	write("bad-ifaces.csv", "# ok\n192.0.2.1,1,ge-0/0/0\n192.0.2.1,x,ge-0/0/1\n")
	write("bad-services", "http 80/tcp\nhttps\n")
	const head = "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[[pipeline]]\n"
	path := filepath.Join(dir, "flowdex.toml")

	c, err := config.Parse(path, []byte(head+"geoip_database = \"city.mmdb\"\nasn_database = \"asn.mmdb\"\nservices = true\ninterfaces_file = \"ifaces.csv\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := enrich.Configuration{
		GeoIPDatabase: filepath.Join(dir, "city.mmdb"), ASNDatabase: filepath.Join(dir, "asn.mmdb"),
		Services: true, InterfacesFile: filepath.Join(dir, "ifaces.csv"),
	}
	if got := c.Pipelines[0].Configuration; got != want {
		t.Errorf("enrichment %+v, want %+v", got, want)
	}
	e, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if kinds := len(e.pipelines["pipeline1"].enricher.Loaded()); kinds != 4 {
		t.Errorf("%d enrichment files loaded, want 4", kinds)
	}

	for _, tc := range []struct{ name, src, want string }{
		{"missing database", "geoip_database = \"none.mmdb\"\n",
			path + ":5:1: pipeline#0.geoip_database: open " + filepath.Join(dir, "none.mmdb") + ": no such file or directory"},
		{"ASN database as geoip", "\n  geoip_database = \"asn.mmdb\"\n",
			path + ":6:3: pipeline#0.geoip_database: " + filepath.Join(dir, "asn.mmdb") + `: database type "GeoLite2-ASN" is an ASN database (expected a City or Country database; an ASN database goes in asn_database)`},
		{"text as asn database", "asn_database = \"ifaces.csv\"\n",
			path + ":5:1: pipeline#0.asn_database: " + filepath.Join(dir, "ifaces.csv") + ": not a MaxMind DB (MMDB) file: "},
		{"bad interfaces line", "interfaces_file = \"bad-ifaces.csv\"\n",
			path + ":5:1: pipeline#0.interfaces_file: " + filepath.Join(dir, "bad-ifaces.csv") + `:3: "x" is not an ifIndex (expected a number from 0 to 4294967295)`},
		{"bad services line", "services_file = \"bad-services\"\n",
			path + ":5:1: pipeline#0.services_file: " + filepath.Join(dir, "bad-services") + `:2: "https" has no port (expected "name port/protocol [aliases]", e.g. "http 80/tcp www")`},
		{"misspelt key", "geoip_databse = \"city.mmdb\"\n", path + `:5:1: pipeline#0.geoip_databse: unknown key (did you mean "geoip_database"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse(path, []byte(head+tc.src))
			if err == nil {
				_, err = New(c, Options{})
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a config.Error", err)
			}
			if got := err.Error(); len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
