package enrich

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/flow"
)

// openMMDB reads a whole MMDB file into memory. Not mmap: a reload drops the
// old reader while lookups may still use it, and only the garbage collector
// knows when the last one is done; a heap buffer is freed then, an unmapped
// file would fault.
func openMMDB(path string) (*maxminddb.Reader, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // names the file already
	}
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, errorf(path, fmt.Errorf("not a MaxMind DB (MMDB) file: %w", err))
	}
	return r, nil
}

func describe(r *maxminddb.Reader, kind, file string) Loaded {
	return Loaded{Kind: kind, File: file, Entries: int(r.Metadata.NodeCount), Built: r.Metadata.BuildTime(), Type: r.Metadata.DatabaseType}
}

// geoRecord is the part of a City or Country database record flowdex uses;
// decoding into a struct skips everything else without allocating.
type geoRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

type geoDB struct{ r *maxminddb.Reader }

func openGeo(path string) (*geoDB, error) {
	r, err := openMMDB(path)
	if err != nil {
		return nil, err
	}
	if t := r.Metadata.DatabaseType; strings.Contains(strings.ToUpper(t), "ASN") {
		return nil, errorf(path, fmt.Errorf("database type %q is an ASN database (expected a City or Country database; an ASN database goes in asn_database)", t))
	}
	if err := probe(r, &geoRecord{}); err != nil {
		return nil, errorf(path, err)
	}
	return &geoDB{r}, nil
}

func (g *geoDB) describe(kind, file string) Loaded { return describe(g.r, kind, file) }

// probe decodes one record, so that a database whose records do not have
// the expected shape fails at load rather than at every lookup.
func probe(r *maxminddb.Reader, v any) error {
	var err error
	for _, a := range []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2001:4860::1"), netip.MustParseAddr("8.8.8.8")} {
		if r.Metadata.IPVersion == 4 && a.Is6() {
			continue
		}
		if err = r.Lookup(a).Decode(v); err != nil {
			return fmt.Errorf("reading a record: %w", err)
		}
	}
	return nil
}

// records are decoded into pooled structs: Decode takes an interface, and a
// struct on the stack would escape, an allocation per lookup.
var (
	geoRecords = sync.Pool{New: func() any { return new(geoRecord) }}
	asnRecords = sync.Pool{New: func() any { return new(asnRecord) }}
)

func (g *geoDB) enrich(d *document.Document, a netip.Addr, s *side, n *counts) {
	rec := geoRecords.Get().(*geoRecord)
	defer geoRecords.Put(rec)
	*rec = geoRecord{}
	rec.Location.Latitude, rec.Location.Longitude = math.NaN(), math.NaN()
	n.geoLookups++
	res := g.r.Lookup(a)
	if !res.Found() {
		if res.Err() != nil {
			n.lookupErrors++
		}
		return
	}
	if err := res.Decode(rec); err != nil {
		n.lookupErrors++
		return
	}
	n.geoHits++
	// a field the document has is pmacct's GeoIP primitive
	// (src_host_country...), aggregated on and written as pmacct writes it:
	// it stays
	has := func(key string) bool { _, ok := d.Get(key); return ok }
	if rec.Country.ISOCode != "" && !has(s.country) {
		d.SetString(s.country, rec.Country.ISOCode)
	}
	if rec.City.Names.EN != "" {
		d.SetString(s.city, rec.City.Names.EN)
	}
	if rec.Postal.Code != "" && !has(s.postal) {
		d.SetString(s.postal, rec.Postal.Code)
	}
	lat, lon := rec.Location.Latitude, rec.Location.Longitude
	if math.IsNaN(lat) || math.IsNaN(lon) {
		return
	}
	if !has(s.lat) {
		d.SetFloat(s.lat, lat)
		d.SetFloat(s.lon, lon)
	}
	// a geo_point as an object: Kibana maps and geo queries need one field
	var buf [64]byte
	b := append(buf[:0], `{"lat":`...)
	b = strconv.AppendFloat(b, lat, 'f', -1, 64)
	b = append(b, `,"lon":`...)
	b = strconv.AppendFloat(b, lon, 'f', -1, 64)
	b = append(b, '}')
	d.SetRaw(s.location, b)
}

// asnRecord is a GeoLite2-ASN record.
type asnRecord struct {
	Number       uint32 `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

type asnDB struct{ r *maxminddb.Reader }

func openASN(path string) (*asnDB, error) {
	r, err := openMMDB(path)
	if err != nil {
		return nil, err
	}
	if t := strings.ToUpper(r.Metadata.DatabaseType); strings.Contains(t, "CITY") || strings.Contains(t, "COUNTRY") {
		return nil, errorf(path, fmt.Errorf("database type %q is a City or Country database (expected an ASN database; a City or Country database goes in geoip_database)", r.Metadata.DatabaseType))
	}
	if err := probe(r, &asnRecord{}); err != nil {
		return nil, errorf(path, err)
	}
	return &asnDB{r}, nil
}

func (g *asnDB) describe(kind, file string) Loaded { return describe(g.r, kind, file) }

var errNoASN = errors.New("no AS number")

func (g *asnDB) lookup(a netip.Addr) (asnRecord, error) {
	p := asnRecords.Get().(*asnRecord)
	defer asnRecords.Put(p)
	*p = asnRecord{}
	rec, err := g.decode(a, p)
	return *rec, err
}

func (g *asnDB) decode(a netip.Addr, rec *asnRecord) (*asnRecord, error) {
	res := g.r.Lookup(a)
	if err := res.Err(); err != nil {
		return rec, err
	}
	if !res.Found() {
		return rec, errNoASN
	}
	if err := res.Decode(rec); err != nil {
		return rec, err
	}
	if rec.Number == 0 {
		return rec, errNoASN
	}
	return rec, nil
}

// enrich sets the AS number unless the document has one already (from the
// record or a networks_file), and the organisation when it names that AS.
func (g *asnDB) enrich(d *document.Document, a netip.Addr, s *side, n *counts) {
	n.asnLookups++
	rec, err := g.lookup(a)
	if err != nil && err != errNoASN {
		n.lookupErrors++
	}
	if err != nil {
		return
	}
	n.asnHits++
	if v, ok := d.Get(s.as); ok {
		if have, ok := v.AsInt(); ok && have != 0 {
			if have != int64(rec.Number) {
				return // another source's AS: the database's name is not its name
			}
		} else {
			d.SetInt(s.as, int64(rec.Number))
		}
	} else {
		d.SetInt(s.as, int64(rec.Number))
	}
	if rec.Organization != "" {
		d.SetString(s.asName, rec.Organization)
	}
}

// Locate gives the GeoIP primitives of a (src_host_country and the like)
// from the geoip_database, as pmacct's geoipv2_file does: the country's ISO
// code cut to 3 bytes, the postal code to 11, the location; zeros when a is
// not in the database (or there is none). Its lookups count as the
// enrichment's.
func (e *Enricher) Locate(a netip.Addr) flow.Location {
	var l flow.Location
	g := e.tables.Load().geo
	if g == nil {
		return l
	}
	rec := geoRecords.Get().(*geoRecord)
	defer geoRecords.Put(rec)
	*rec = geoRecord{}
	e.geoLookups.Add(1)
	res := g.r.Lookup(a)
	if !res.Found() {
		if res.Err() != nil {
			e.lookupErr.Add(1)
		}
		return l
	}
	if err := res.Decode(rec); err != nil {
		e.lookupErr.Add(1)
		return l
	}
	e.geoHits.Add(1)
	copy(l.Country[:], rec.Country.ISOCode)
	copy(l.Pocode[:], rec.Postal.Code)
	l.Coords = flow.Coords{Lat: rec.Location.Latitude, Lon: rec.Location.Longitude}
	return l
}

// Generation changes when the files are reloaded: what Locate said before
// may be stale.
func (e *Enricher) Generation() uint64 { return e.reloads.Load() }
