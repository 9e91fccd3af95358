package config

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/flowdex/flowdex/sink/elasticsearch"
)

// derive fills in what depends on the rest of the configuration (the
// components' own defaults are in place since decoding): names, which
// pipelines each input feeds and each pipeline writes to, the refresh of
// aggregating pipelines, and what the HTTP server serves. md says which
// tables the file had (nil for a configuration made in code).
func (c *Config) derive(md *toml.MetaData) {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if len(c.Outputs) == 0 {
		c.Outputs = map[string]Output{"stdout": newOutput("print")}
	}
	if len(c.Pipelines) == 0 {
		p := newPipeline()
		p.Name = "default"
		c.Pipelines = []Pipeline{p}
	}
	outputs := slices.Sorted(maps.Keys(c.Outputs))
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.Name == "" {
			p.Name = "pipeline" + strconv.Itoa(i+1)
		}
		if len(p.Outputs) == 0 {
			p.Outputs = outputs
		}
	}
	// pmacct records go to the first pipeline; flows to every pipeline that
	// takes no pmacct records (those are aggregated already)
	takesPmacct := map[string]bool{}
	for i, in := range c.Inputs {
		if in.Common().Name == "" {
			in.Common().Name = "input" + strconv.Itoa(i+1)
		}
		if p := RecordPipeline(in); p != nil {
			if *p == "" {
				*p = c.Pipelines[0].Name
			}
			takesPmacct[*p] = true
		}
	}
	for i := range c.Pipelines {
		if p := &c.Pipelines[i]; !takesPmacct[p.Name] && p.Refresh.Duration == 0 {
			p.Refresh.Duration = time.Minute // pmacct's print_refresh_time
		}
	}
	for _, in := range c.Inputs {
		if fi, ok := in.(FlowInput); ok && len(fi.Targets().Pipelines) == 0 {
			for _, p := range c.Pipelines {
				if !takesPmacct[p.Name] {
					fi.Targets().Pipelines = append(fi.Targets().Pipelines, p.Name)
				}
			}
		}
	}
	c.resolvePaths()
	if md != nil && md.IsDefined("http") && c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultHTTPListen
	}
	if c.HTTP.Listen != "" {
		if c.HTTP.AllowedHosts == nil {
			c.HTTP.AllowedHosts = []string{} // shown as such by the effective configuration
		}
		if c.HTTP.Web == nil {
			// the web view shows who talks to whom: on by itself only where
			// nobody but this host can reach it
			on := isLoopback(c.HTTP.Listen)
			c.HTTP.Web = &on
		}
		if *c.HTTP.Web && c.HTTP.WebOutput == "" {
			for _, name := range outputs {
				// the first by name whose indices the view can search
				if o, ok := c.Outputs[name].(*ElasticsearchOutput); ok && elasticsearch.Searchable(o.Index) == nil {
					c.HTTP.WebOutput = name // none: no web view
					break
				}
			}
		}
	}
}

// resolvePaths makes every path of the configuration relative to its file
// (a path given on a command line is the command's to resolve).
func (c *Config) resolvePaths() {
	r := c.Resolve
	c.AggregatePrimitives = r(c.AggregatePrimitives)
	if c.Log.File != "-" {
		c.Log.File = r(c.Log.File)
	}
	for _, in := range c.Inputs {
		switch in := in.(type) {
		case *PmacctInput:
			in.File = r(in.File)
		case *KafkaInput:
			in.DeadLetterFile = r(in.DeadLetterFile)
			in.CACert, in.PasswordFile = r(in.CACert), r(in.PasswordFile)
		case *NetFlowInput:
			in.Replay, in.TemplatesFile = r(in.Replay), r(in.TemplatesFile)
		case *SFlowInput:
			in.Replay = r(in.Replay)
		case *PcapInput:
			in.File = r(in.File)
		}
		if f, ok := in.(FlowInput); ok {
			f.Targets().PreTagMap = r(f.Targets().PreTagMap)
		}
	}
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if t := strings.TrimSpace(p.Transformations); t != "" && !strings.HasPrefix(t, "[") {
			p.Transformations = r(t)
		}
		p.NetworksFile = r(p.NetworksFile)
		p.GeoIPDatabase, p.ASNDatabase = r(p.GeoIPDatabase), r(p.ASNDatabase)
		p.ServicesFile, p.InterfacesFile = r(p.ServicesFile), r(p.InterfacesFile)
	}
	for _, o := range c.Outputs {
		switch o := o.(type) {
		case *PrintOutput:
			o.Path = r(o.Path)
		case *KafkaOutput:
			o.PasswordFile, o.CACert, o.SpoolDir = r(o.PasswordFile), r(o.CACert), r(o.SpoolDir)
		case *ElasticsearchOutput:
			o.PasswordFile, o.APIKeyFile, o.CACert = r(o.PasswordFile), r(o.APIKeyFile), r(o.CACert)
			o.IndexBodyFile, o.DeadLetterFile, o.SpoolDir = r(o.IndexBodyFile), r(o.DeadLetterFile), r(o.SpoolDir)
		}
	}
}
