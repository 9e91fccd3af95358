package elasticsearch

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
)

var update = flag.Bool("update", false, "rewrite testdata/template.json")

// TestTemplateGolden pins the template flowdex installs by default.
func TestTemplateGolden(t *testing.T) {
	s, err := New(DefaultConfiguration(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.TemplateName() != "flowdex" || s.TemplatePattern() != "flowdex-*" {
		t.Errorf("template %q for %q, want flowdex for flowdex-*", s.TemplateName(), s.TemplatePattern())
	}
	got := s.c.template
	const golden = "testdata/template.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("template differs from %s (go test -run TestTemplateGolden -update rewrites it):\n%s", golden, got)
	}
}

func TestTemplateSettings(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Index = "netflow-%Y%m%d"
	cfg.Shards, cfg.Replicas, cfg.RefreshInterval = 2, 0, "30s"
	cfg.TemplatePriority = 150
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		IndexPatterns []string `json:"index_patterns"`
		Priority      int      `json:"priority"`
		Template      struct {
			Settings map[string]map[string]any `json:"settings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(s.c.template, &body); err != nil {
		t.Fatal(err)
	}
	if s.TemplateName() != "flowdex-netflow" || len(body.IndexPatterns) != 1 || body.IndexPatterns[0] != "netflow-*" || body.Priority != 150 {
		t.Errorf("template %s: %s", s.TemplateName(), s.c.template)
	}
	idx := body.Template.Settings["index"]
	if idx["number_of_shards"] != 2.0 || idx["number_of_replicas"] != 0.0 || idx["refresh_interval"] != "30s" {
		t.Errorf("settings %v", idx)
	}
}

func TestIndexBodyTemplate(t *testing.T) {
	tests := []struct {
		file, want, err string
	}{
		{file: "testdata/p2es-new-index-template.json",
			want: `{"_meta":{"managed_by":"flowdex"},"index_patterns":["flows-*"],"template":{"mappings":{"properties":{"@timestamp":{"type":"date"},"bytes":{"type":"long"},"packets":{"type":"long"},"flows":{"type":"long"}}}}}`},
		{file: "testdata/body-with-settings.json",
			want: `{"_meta":{"managed_by":"flowdex"},"index_patterns":["flows-*"],"template":{"aliases":{"all-flows":{}},"mappings":{"dynamic_templates":[{"strings":{"match_mapping_type":"string","mapping":{"type":"keyword"}}}],"properties":{"@timestamp":{"type":"date"},"bytes":{"type":"long"},"packets":{"type":"long"},"flows":{"type":"long"},"ip_src":{"type":"ip"}}},"settings":{"index":{"number_of_shards":1,"number_of_replicas":0}}}}`},
		{file: "testdata/p2es-new-index-template-ES-6.x.json", err: `mappings has "_default_": this is an index template for Elasticsearch 5 or 6`},
		{file: "testdata/typed-mapping.json", err: `mappings has the mapping type "flow": this is an index template for Elasticsearch 5 or 6`},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := indexBodyTemplate(data, "flows-*", 0)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.file, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, got); err != nil {
			t.Fatal(err)
		}
		if compact.String() != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.file, compact.String(), tt.want)
		}
	}
	for _, bad := range []struct{ body, err string }{
		{`[]`, "not a JSON object"},
		{`{} {}`, "data after the JSON object"},
		{`{"index_patterns":["x"]}`, `unexpected key "index_patterns"`},
		{`{"mappings":[]}`, "mappings: not an object"},
		{`{"mappings":{"_all":{"enabled":false},"properties":{}}}`, `"_all"`},
		{`{"mappings":{"strange":1}}`, `unknown parameter "strange"`},
	} {
		if _, err := indexBodyTemplate([]byte(bad.body), "flows-*", 0); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("%s: error %v, want %q", bad.body, err, bad.err)
		}
	}
}

// Enrichment's fields that are pmacct's too (GeoIP) get the type the
// primitives table gives them, whichever mapping the template keeps.
func TestTemplateEnrichmentAgreesWithPrimitives(t *testing.T) {
	types := map[string]string{}
	for p := range flow.Primitives() {
		types[p.JSONKey()] = p.Info().Kind.ESType()
	}
	for typ, fields := range map[string][]string{"geo_point": geoPointFields, "double": doubleFields, "keyword": enrichKeywordFields} {
		for _, f := range fields {
			if pm, ok := types[f]; ok && pm != "" && pm != typ {
				t.Errorf("%s: enrichment maps it as %s, the primitives table as %s", f, typ, pm)
			}
		}
	}
	if types["lat_ip_src"] != "double" {
		t.Errorf("lat_ip_src is %q in the primitives table", types["lat_ip_src"])
	}
}
