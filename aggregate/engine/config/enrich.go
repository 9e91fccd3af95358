package config

import "github.com/flowdex/flowdex/aggregate/enrich"

// Enrichment returns what pipeline p enriches documents with, its files
// resolved against the configuration file.
func (p *Pipeline) Enrichment(c *Config) enrich.Configuration {
	e := enrich.Configuration{
		GeoIPDatabase:  c.Resolve(p.GeoIPDatabase),
		ASNDatabase:    c.Resolve(p.ASNDatabase),
		ServicesFile:   c.Resolve(p.ServicesFile),
		InterfacesFile: c.Resolve(p.InterfacesFile),
	}
	if p.Services && e.ServicesFile == "" {
		e.ServicesFile = enrich.DefaultServicesFile
	}
	return e
}

// checkEnrichment loads each file of pipeline i once, so that a missing or
// broken one is reported at its key.
func (c *Config) checkEnrichment(i int, fail failFunc) error {
	e := c.Pipelines[i].Enrichment(c)
	for _, f := range []struct {
		key string
		c   enrich.Configuration
	}{
		{"geoip_database", enrich.Configuration{GeoIPDatabase: e.GeoIPDatabase}},
		{"asn_database", enrich.Configuration{ASNDatabase: e.ASNDatabase}},
		{"services_file", enrich.Configuration{ServicesFile: e.ServicesFile}},
		{"interfaces_file", enrich.Configuration{InterfacesFile: e.InterfacesFile}},
	} {
		if !f.c.Enabled() {
			continue
		}
		key := f.key
		if key == "services_file" && c.Pipelines[i].ServicesFile == "" {
			key = "services" // /etc/services
		}
		if _, err := enrich.New(f.c); err != nil {
			return fail(at("pipeline", i, key), "%v", err)
		}
	}
	return nil
}
