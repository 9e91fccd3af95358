// Package enrich adds what the flow records do not carry to documents: GeoIP and
// AS data from MaxMind MMDB files, service names for ports, and interface names
// and descriptions from a (exporter, ifIndex) map.
//
// An Enricher works on documents, before the pipeline's transformations, so it
// serves pmacct JSON records and aggregated flows alike, and the
// transformations can rename or drop what it adds. Its tables sit behind an
// atomic pointer: Reload swaps in freshly read files while documents are being
// enriched, and keeps the previous tables when a file fails to load.
package enrich

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/flowdex/flowdex/aggregate/setting"

	"github.com/flowdex/flowdex/aggregate/document"
)

// DefaultServicesFile is where service names are read from when services are
// asked for without a file.
const DefaultServicesFile = "/etc/services"

// Configuration says which files an Enricher reads. Empty paths turn a kind of
// enrichment off.
type Configuration struct {
	GeoIPDatabase string `toml:"geoip_database,omitempty"` // a City or Country MMDB (GeoLite2-City, GeoIP2-Country, ...)
	ASNDatabase   string `toml:"asn_database,omitempty"`   // an ASN MMDB (GeoLite2-ASN)
	// Services names ports from ServicesFile, /etc/services when it is not
	// set.
	Services       bool   `toml:"services,omitempty"`
	ServicesFile   string `toml:"services_file,omitempty"`   // /etc/services format
	InterfacesFile string `toml:"interfaces_file,omitempty"` // CSV: exporter,ifindex,name[,description]
}

// Enabled reports whether c asks for any enrichment.
func (c Configuration) Enabled() bool {
	return c.GeoIPDatabase != "" || c.ASNDatabase != "" || c.Services || c.ServicesFile != "" || c.InterfacesFile != ""
}

// servicesFile is the services file to read, "" for none.
func (c Configuration) servicesFile() string {
	if c.ServicesFile == "" && c.Services {
		return DefaultServicesFile
	}
	return c.ServicesFile
}

// tables is one consistent load of every file.
type tables struct {
	geo      *geoDB
	asn      *asnDB
	services *Services
	ifaces   *Interfaces
}

// Loaded describes one file as last loaded, for the log.
type Loaded struct {
	Kind    string // geoip, asn, services or interfaces
	File    string
	Entries int       // networks (MMDB nodes), services or interfaces
	Built   time.Time // MMDB build time; zero for text files
	Type    string    // MMDB database type
}

// Stats are the Enricher's counters.
type Stats struct {
	Documents uint64 // documents enriched
	// per address looked up (source and destination)
	GeoLookups, GeoHits, GeoMisses uint64
	ASNLookups, ASNHits, ASNMisses uint64
	// per port and per interface looked up
	ServiceLookups, ServiceHits, ServiceMisses       uint64
	InterfaceLookups, InterfaceHits, InterfaceMisses uint64
	BadAddresses                                     uint64 // address fields that are not an address
	LookupErrors                                     uint64 // MMDB lookups that failed (a corrupt database)
	Reloads, ReloadErrors                            uint64
}

// Enricher adds fields to documents. It is safe for concurrent use.
type Enricher struct {
	c      Configuration
	tables atomic.Pointer[tables]

	loaded atomic.Pointer[[]Loaded]

	docs, badAddr, lookupErr    atomic.Uint64
	geoLookups, geoHits         atomic.Uint64
	asnLookups, asnHits         atomic.Uint64
	serviceLookups, serviceHits atomic.Uint64
	ifaceLookups, ifaceHits     atomic.Uint64
	reloads, reloadErrors       atomic.Uint64
}

// New reads every file c names. An error names the file at fault.
func New(c Configuration) (*Enricher, error) {
	e := &Enricher{c: c}
	t, loaded, err := load(c)
	if err != nil {
		return nil, err
	}
	e.tables.Store(t)
	e.loaded.Store(&loaded)
	return e, nil
}

// load reads every file of c; an error is a setting.KeyError naming the key
// of the file at fault.
func load(c Configuration) (*tables, []Loaded, error) {
	t := &tables{}
	var loaded []Loaded
	var err error
	if c.GeoIPDatabase != "" {
		if t.geo, err = openGeo(c.GeoIPDatabase); err != nil {
			return nil, nil, setting.Key("geoip_database", err)
		}
		loaded = append(loaded, t.geo.describe("geoip", c.GeoIPDatabase))
	}
	if c.ASNDatabase != "" {
		if t.asn, err = openASN(c.ASNDatabase); err != nil {
			return nil, nil, setting.Key("asn_database", err)
		}
		loaded = append(loaded, t.asn.describe("asn", c.ASNDatabase))
	}
	if file := c.servicesFile(); file != "" {
		if t.services, err = LoadServices(file); err != nil {
			key := "services_file"
			if c.ServicesFile == "" {
				key = "services"
			}
			return nil, nil, setting.Key(key, err)
		}
		loaded = append(loaded, Loaded{Kind: "services", File: file, Entries: t.services.Len()})
	}
	if c.InterfacesFile != "" {
		if t.ifaces, err = LoadInterfaces(c.InterfacesFile); err != nil {
			return nil, nil, setting.Key("interfaces_file", err)
		}
		loaded = append(loaded, Loaded{Kind: "interfaces", File: c.InterfacesFile, Entries: t.ifaces.Len()})
	}
	return t, loaded, nil
}

// Reload reads every file again and switches to them when all loaded; on an
// error the previous tables stay in use, and the error names the file.
func (e *Enricher) Reload() error {
	t, loaded, err := load(e.c)
	if err != nil {
		e.reloadErrors.Add(1)
		return err
	}
	e.tables.Store(t)
	e.loaded.Store(&loaded)
	e.reloads.Add(1)
	return nil
}

// Loaded describes the files in use.
func (e *Enricher) Loaded() []Loaded { return *e.loaded.Load() }

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	s := Stats{
		Documents:  e.docs.Load(),
		GeoLookups: e.geoLookups.Load(), GeoHits: e.geoHits.Load(),
		ASNLookups: e.asnLookups.Load(), ASNHits: e.asnHits.Load(),
		ServiceLookups: e.serviceLookups.Load(), ServiceHits: e.serviceHits.Load(),
		InterfaceLookups: e.ifaceLookups.Load(), InterfaceHits: e.ifaceHits.Load(),
		BadAddresses: e.badAddr.Load(), LookupErrors: e.lookupErr.Load(),
		Reloads: e.reloads.Load(), ReloadErrors: e.reloadErrors.Load(),
	}
	s.GeoMisses = s.GeoLookups - s.GeoHits
	s.ASNMisses = s.ASNLookups - s.ASNHits
	s.ServiceMisses = s.ServiceLookups - s.ServiceHits
	s.InterfaceMisses = s.InterfaceLookups - s.InterfaceHits
	return s
}

// side names the fields of one direction.
type side struct {
	ip, country, city, postal, lat, lon, location, as, asName, port, portName string
}

var (
	src = side{"ip_src", "country_ip_src", "city_ip_src", "pocode_ip_src", "lat_ip_src", "lon_ip_src",
		"location_ip_src", "as_src", "as_name_src", "port_src", "port_src_name"}
	dst = side{"ip_dst", "country_ip_dst", "city_ip_dst", "pocode_ip_dst", "lat_ip_dst", "lon_ip_dst",
		"location_ip_dst", "as_dst", "as_name_dst", "port_dst", "port_dst_name"}
)

// Enrich adds the fields its tables know to d. Only fields d has are looked
// up, a lookup that misses adds nothing, and an as_src/as_dst d has already
// (not 0) is kept.
func (e *Enricher) Enrich(d *document.Document) {
	t := e.tables.Load()
	e.docs.Add(1)
	var n counts
	if t.geo != nil || t.asn != nil {
		for _, s := range [2]*side{&src, &dst} {
			a, ok := e.addr(d, s.ip)
			if !ok {
				continue
			}
			if t.geo != nil {
				t.geo.enrich(d, a, s, &n)
			}
			if t.asn != nil {
				t.asn.enrich(d, a, s, &n)
			}
		}
	}
	if t.services != nil {
		if proto, ok := protocol(d); ok {
			for _, s := range [2]*side{&src, &dst} {
				if v, ok := d.Get(s.port); ok {
					if port, ok := v.AsInt(); ok {
						n.serviceLookups++
						if name := t.services.Lookup(proto, port); name != "" {
							n.serviceHits++
							d.SetString(s.portName, name)
						}
					}
				}
			}
		}
	}
	if t.ifaces != nil {
		t.ifaces.enrich(e, d, &n)
	}
	e.add(&n)
}

// counts are one document's lookups, added to the atomics once.
type counts struct {
	geoLookups, geoHits, asnLookups, asnHits             uint64
	serviceLookups, serviceHits, ifaceLookups, ifaceHits uint64
	lookupErrors                                         uint64
}

func (e *Enricher) add(n *counts) {
	for _, c := range [...]struct {
		a *atomic.Uint64
		n uint64
	}{
		{&e.geoLookups, n.geoLookups}, {&e.geoHits, n.geoHits}, {&e.asnLookups, n.asnLookups}, {&e.asnHits, n.asnHits},
		{&e.serviceLookups, n.serviceLookups}, {&e.serviceHits, n.serviceHits},
		{&e.ifaceLookups, n.ifaceLookups}, {&e.ifaceHits, n.ifaceHits}, {&e.lookupErr, n.lookupErrors},
	} {
		if c.n > 0 {
			c.a.Add(c.n)
		}
	}
}

// addr reads the address in field key. pmacct writes "" or an unspecified
// address when it has none: no lookup, and no complaint.
func (e *Enricher) addr(d *document.Document, key string) (netip.Addr, bool) {
	v, ok := d.Get(key)
	if !ok || v.Kind != document.String || len(v.Bytes) == 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(bytesString(v.Bytes))
	if err != nil {
		e.badAddr.Add(1)
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// bytesString views b as a string without copying, for parsers that do not
// keep their input (a per-document allocation otherwise).
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// IP protocol numbers that have service names.
const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

// protocol reads ip_proto: a name ("tcp", pmacct's default), a number
// (num_protos in JSON) or a number as a string (num_protos in flowdex's flows).
func protocol(d *document.Document) (uint8, bool) {
	v, ok := d.Get("ip_proto")
	if !ok {
		return 0, false
	}
	if v.Kind == document.String {
		switch string(v.Bytes) { // no allocation: the compiler compares in place
		case "tcp", "TCP":
			return protoTCP, true
		case "udp", "UDP":
			return protoUDP, true
		case "sctp", "SCTP":
			return protoSCTP, true
		}
		n, err := strconv.ParseUint(bytesString(v.Bytes), 10, 8)
		return uint8(n), err == nil
	}
	n, ok := v.AsInt()
	if !ok || n < 0 || n > 255 {
		return 0, false
	}
	return uint8(n), true
}

// errorf wraps err with the file it came from.
func errorf(file string, err error) error {
	var fe *FileError
	if errors.As(err, &fe) {
		return err
	}
	return &FileError{File: file, Err: err}
}

// FileError is a file that could not be loaded; Line is 0 when the error is
// not about one line.
type FileError struct {
	File string
	Line int
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }
