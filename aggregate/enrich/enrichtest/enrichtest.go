// Package enrichtest writes small MaxMind DB files for tests, so that no
// database is committed: a City database and an ASN database with the networks
// the tests name.
package enrichtest

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Geo is one network of a City database. A zero Lat and Lon leaves the
// location out; empty strings leave their record out.
type Geo struct {
	Network               string
	Country, City, Postal string
	Lat, Lon              float64
}

// AS is one network of an ASN database.
type AS struct {
	Network string
	Number  uint32
	Org     string
}

// Geos and ASes are the networks the tests use: public ranges, as in a real
// database, where private addresses miss.
var (
	Geos = []Geo{
		{Network: "81.2.69.0/24", Country: "GB", City: "London", Postal: "EC1A", Lat: 51.5142, Lon: -0.0931},
		{Network: "89.160.20.0/24", Country: "SE", City: "Linköping", Lat: 58.4167, Lon: 15.6167},
		{Network: "2a01:4f8::/32", Country: "DE", City: "Nuremberg", Lat: 49.4478, Lon: 11.0683},
		{Network: "216.160.83.0/24", Country: "US"}, // country only
	}
	ASes = []AS{
		{Network: "81.2.69.0/24", Number: 20712, Org: "Andrews & Arnold Ltd"},
		{Network: "89.160.20.0/24", Number: 29518, Org: "Bredband2 AB"},
		{Network: "2a01:4f8::/32", Number: 24940, Org: "Hetzner Online GmbH"},
	}
)

// Built is the build time written in the databases' metadata.
var Built = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// WriteCity writes a City database of geos to path.
func WriteCity(t testing.TB, path string, geos []Geo) {
	t.Helper()
	tree := newTree(t, "GeoLite2-City")
	for _, g := range geos {
		rec := mmdbtype.Map{}
		if g.Country != "" {
			rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(g.Country),
				"names": mmdbtype.Map{"en": mmdbtype.String(g.Country + " (name)")}}
		}
		if g.City != "" {
			rec["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(1), "names": mmdbtype.Map{
				"en": mmdbtype.String(g.City), "de": mmdbtype.String(g.City + " (de)")}}
		}
		if g.Postal != "" {
			rec["postal"] = mmdbtype.Map{"code": mmdbtype.String(g.Postal)}
		}
		if g.Lat != 0 || g.Lon != 0 {
			rec["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(g.Lat), "longitude": mmdbtype.Float64(g.Lon),
				"accuracy_radius": mmdbtype.Uint16(50), "time_zone": mmdbtype.String("Europe/London")}
		}
		insert(t, tree, g.Network, rec)
	}
	write(t, tree, path)
}

// WriteASN writes an ASN database of ases to path.
func WriteASN(t testing.TB, path string, ases []AS) {
	t.Helper()
	tree := newTree(t, "GeoLite2-ASN")
	for _, a := range ases {
		insert(t, tree, a.Network, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(a.Number),
			"autonomous_system_organization": mmdbtype.String(a.Org),
		})
	}
	write(t, tree, path)
}

func newTree(t testing.TB, dbType string) *mmdbwriter.Tree {
	// reserved networks allowed: tests may give documentation prefixes
	// (192.0.2.0/24); addresses of no network given still miss
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, BuildEpoch: Built.Unix(),
		IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func insert(t testing.TB, tree *mmdbwriter.Tree, network string, rec mmdbtype.Map) {
	t.Helper()
	_, n, err := net.ParseCIDR(network)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Insert(n, rec); err != nil {
		t.Fatalf("%s: %v", network, err)
	}
}

// write writes tree to path through a temporary file renamed into place, as
// an operator's update script would: a reload never sees half a file.
func write(t testing.TB, tree *mmdbwriter.Tree, path string) {
	t.Helper()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
