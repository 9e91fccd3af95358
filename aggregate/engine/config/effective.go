package config

import (
	"io"
	"net/url"

	"github.com/BurntSushi/toml"
)

// WriteEffective writes the configuration as run uses it, in TOML: every
// default in place, each input and output with the keys of its type only, a
// p2es file's transformations inline, passwords and API keys hidden. Read
// back, it is the same configuration.
func (c *Config) WriteEffective(w io.Writer) error {
	doc := struct {
		Log      Log               `toml:"log"`
		HTTP     *HTTP             `toml:"http,omitempty"` // none: no server
		Input    []Input           `toml:"input"`
		Pipeline []Pipeline        `toml:"pipeline"`
		Output   map[string]Output `toml:"output"`
	}{Log: c.Log, Input: c.Inputs, Output: map[string]Output{}}
	if c.HTTP.Listen != "" {
		doc.HTTP = &c.HTTP
	}
	for _, p := range c.Pipelines {
		if data, _, _, _ := p.TransformationsJSON(c); data != nil && p.Transformations == "" {
			p.Transformations = string(data)
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
			shown.URLs = make([]string, len(es.URLs))
			for i, u := range es.URLs {
				shown.URLs[i] = redactURL(u)
			}
			o = &shown
		}
		doc.Output[name] = o
	}
	return toml.NewEncoder(w).Encode(doc)
}

// redactURL hides a password given in a URL's user information.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}
