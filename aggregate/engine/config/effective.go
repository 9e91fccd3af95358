package config

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"slices"

	"github.com/BurntSushi/toml"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/sink/elasticsearch"
)

// WriteEffective writes the configuration as run uses it, in TOML: every
// default in place, each input and output with the keys of its type only, a
// p2es file's transformations inline (a relative LookupTableFile made
// absolute: p2es reads it from the working directory, the TOML from its own),
// passwords and API keys hidden. Read back from any directory, it is the same
// configuration, the secrets aside.
func (c *Config) WriteEffective(w io.Writer) error {
	doc := struct {
		AggregatePrimitives string            `toml:"aggregate_primitives,omitempty"`
		Log                 Log               `toml:"log"`
		HTTP                *HTTP             `toml:"http,omitempty"` // none: no server
		BGP                 *BGP              `toml:"bgp,omitempty"`
		BMP                 *BMP              `toml:"bmp,omitempty"`
		Input               []Input           `toml:"input"`
		Pipeline            []Pipeline        `toml:"pipeline"`
		Output              map[string]Output `toml:"output"`
	}{AggregatePrimitives: c.AggregatePrimitives, Log: c.Log, BMP: c.BMP, Output: map[string]Output{}}
	if c.BGP != nil {
		shown := *c.BGP
		shown.Peers = slices.Clone(c.BGP.Peers)
		for i := range shown.Peers {
			if shown.Peers[i].Password != "" {
				shown.Peers[i].Password = "********"
			}
		}
		doc.BGP = &shown
	}
	for _, in := range c.Inputs {
		if k, ok := in.(*KafkaInput); ok && k.Password != "" {
			shown := *k
			shown.Password = "********"
			in = &shown
		}
		doc.Input = append(doc.Input, in)
	}
	if c.HTTP.Listen != "" {
		doc.HTTP = &c.HTTP
	}
	for _, p := range c.Pipelines {
		if data, _, dir, _ := p.TransformationsJSON(c); data != nil && p.Transformations == "" {
			p.Transformations = string(absoluteLookupFiles(data, dir))
		}
		doc.Pipeline = append(doc.Pipeline, p)
	}
	for name, o := range c.Outputs {
		if es, ok := o.(*ElasticsearchOutput); ok {
			shown := *es
			if shown.Password != "" {
				shown.Password = "********"
			}
			if shown.APIKey != "" {
				shown.APIKey = "********"
			}
			if shown.MaxAge.Duration == 0 {
				shown.Interval = setting.Duration{} // without retention, not a key of its own
			}
			shown.URLs = make([]string, len(es.URLs))
			for i, u := range es.URLs {
				shown.URLs[i] = elasticsearch.RedactURL(u)
			}
			o = &shown
		}
		if k, ok := o.(*KafkaOutput); ok && k.Password != "" {
			shown := *k
			shown.Password = "********"
			o = &shown
		}
		doc.Output[name] = o
	}
	return toml.NewEncoder(w).Encode(doc)
}

// absoluteLookupFiles rewrites the relative LookupTableFile paths of
// transformations read from dir; the text is kept as written when there are
// none.
func absoluteLookupFiles(data []byte, dir string) []byte {
	var list []any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // numbers written back as read
	if d.Decode(&list) != nil {
		return data
	}
	changed := false
	for _, t := range list {
		t, _ := t.(map[string]any)
		actions, _ := t["Actions"].([]any)
		for _, a := range actions {
			a, _ := a.(map[string]any)
			if f, ok := a["LookupTableFile"].(string); ok && f != "" && !filepath.IsAbs(f) {
				if abs, err := filepath.Abs(filepath.Join(dir, f)); err == nil {
					a["LookupTableFile"], changed = abs, true
				}
			}
		}
	}
	if !changed {
		return data
	}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return data
	}
	return out
}
