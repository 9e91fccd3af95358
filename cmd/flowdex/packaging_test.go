package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// The shipped systemd unit passes systemd's own checks (no unknown key, an
// executable that exists, valid values), runs `flowdex run` on the
// configuration path its install notes name, and its state directory is where
// the shipped configurations keep templates and spools.
func TestSystemdUnit(t *testing.T) {
	requireTools(t, "systemd-analyze")
	unit, err := os.ReadFile("../../configs/flowdex.service")
	if err != nil {
		t.Fatal(err)
	}
	const bin, conf = "/usr/local/bin/flowdex", "/etc/flowdex/flowdex.toml"
	if !strings.Contains(string(unit), "ExecStart="+bin+" run -c "+conf+"\n") {
		t.Fatalf("ExecStart is not %s run -c %s", bin, conf)
	}
	if !strings.Contains(string(unit), "StateDirectory=flowdex\n") {
		t.Fatal("no StateDirectory=flowdex")
	}
	// the binary under test stands in for the installed one
	dir := t.TempDir()
	path := filepath.Join(dir, "flowdex.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), bin, flowdexBinary(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// what flowdex writes: under ProtectSystem=strict, only the state directory is writable
	state := regexp.MustCompile(`(?m)^\s*(?:templates_file|dead_letter_file|spool_dir)\s*=\s*"(/[^"]*)"`)
	files, _ := filepath.Glob("../../configs/*.toml")
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range state.FindAllStringSubmatch(string(b), -1) {
			checked++
			if !strings.HasPrefix(m[1], "/var/lib/flowdex/") {
				t.Errorf("%s writes %s, outside the unit's StateDirectory /var/lib/flowdex", f, m[1])
			}
		}
	}
	if checked == 0 {
		t.Error("no templates_file, dead_letter_file or spool_dir in the shipped configs: the regexp is wrong")
	}
}

// kibanaObject is one saved object of configs/kibana/flowdex.ndjson.
type kibanaObject struct {
	ID         string
	Type       string
	Attributes map[string]any
	References []struct{ Name, Type, ID string }
}

// kibanaObjects reads the saved objects, one JSON object per line.
func kibanaObjects(t *testing.T) []kibanaObject {
	t.Helper()
	raw, err := os.ReadFile("../../configs/kibana/flowdex.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var objects []kibanaObject
	for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var o kibanaObject
		if err := json.Unmarshal([]byte(line), &o); err != nil || o.ID == "" || o.Type == "" || o.Attributes == nil {
			t.Fatalf("line %d: %v: %.200s", i+1, err, line)
		}
		objects = append(objects, o)
	}
	return objects
}

// fields returns the fields an object uses, and whether Kibana aggregates
// on them (visualizations, the data view's time field) or only shows them.
func (o kibanaObject) fields(t *testing.T) (fields []string, aggregated bool) {
	t.Helper()
	switch o.Type {
	case "index-pattern":
		return []string{o.Attributes["timeFieldName"].(string)}, true
	case "search":
		for _, c := range o.Attributes["columns"].([]any) {
			fields = append(fields, c.(string))
		}
		return fields, false
	case "visualization":
		var vs struct {
			Aggs []struct{ Params struct{ Field string } }
		}
		if err := json.Unmarshal([]byte(o.Attributes["visState"].(string)), &vs); err != nil || len(vs.Aggs) == 0 {
			t.Fatalf("%s: visState: %v", o.ID, err)
		}
		for _, a := range vs.Aggs {
			fields = append(fields, a.Params.Field)
		}
		return fields, true
	}
	return nil, false
}

// The Kibana saved objects (not imported into a real Kibana: none is available
// here) are well formed: one JSON object per line with a unique type/id, every
// reference resolves within the file, the data view covers the indices every
// shipped configuration writes, and each field the visualizations and the
// saved search use is one flowdex's index template maps.
func TestKibanaObjects(t *testing.T) {
	objects := kibanaObjects(t)
	seen := map[string]bool{}
	for _, o := range objects {
		if seen[o.Type+"/"+o.ID] {
			t.Errorf("%s/%s twice", o.Type, o.ID)
		}
		seen[o.Type+"/"+o.ID] = true
	}
	var template struct {
		Template struct {
			Mappings struct{ Properties map[string]any }
		}
	}
	b, err := os.ReadFile("../../sink/elasticsearch/testdata/template.json")
	if err != nil || json.Unmarshal(b, &template) != nil || len(template.Template.Mappings.Properties) == 0 {
		t.Fatalf("template: %v", err)
	}
	mapped := template.Template.Mappings.Properties
	var patterns []string
	fields := 0
	for _, o := range objects {
		for _, r := range o.References {
			if !seen[r.Type+"/"+r.ID] {
				t.Errorf("%s/%s: reference %s to %s/%s, which is not in the file", o.Type, o.ID, r.Name, r.Type, r.ID)
			}
		}
		switch o.Type {
		case "index-pattern":
			patterns = strings.Split(o.Attributes["title"].(string), ",")
		case "dashboard":
			var panels []struct{ PanelRefName string }
			if err := json.Unmarshal([]byte(o.Attributes["panelsJSON"].(string)), &panels); err != nil || len(panels) != len(o.References) {
				t.Fatalf("dashboard panels: %v (%d panels, %d references)", err, len(panels), len(o.References))
			}
		}
		used, _ := o.fields(t)
		for _, f := range used {
			fields++
			if _, ok := mapped[f]; !ok {
				t.Errorf("%s/%s uses field %q, which the template does not map", o.Type, o.ID, f)
			}
		}
	}
	if fields < 10 {
		t.Errorf("only %d fields checked", fields)
	}
	files, _ := filepath.Glob("../../configs/*.toml")
	index := regexp.MustCompile(`(?m)^index\s*=\s*"([^"%]*)%`)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range index.FindAllStringSubmatch(string(b), -1) {
			covered := false
			for _, p := range patterns {
				covered = covered || strings.HasPrefix(m[1], strings.TrimSuffix(p, "*"))
			}
			if !covered {
				t.Errorf("%s writes %s..., which the data view %v does not cover", f, m[1], patterns)
			}
		}
	}
}

// What Elasticsearch makes of flowdex's template, as Kibana would ask it
// (_field_caps over the data view's pattern, after flowdex ingest indexed
// pmacct records): every field the saved objects use exists with one type,
// and those Kibana aggregates on are aggregatable.
func TestKibanaFieldsInElasticsearch(t *testing.T) {
	url := estest.URL(t)
	index := estest.Index(t, "flowdex-test-kibana") // matches the data view's flowdex-*
	dir := t.TempDir()
	input, _ := filepath.Abs("../../collector/pmacct/testdata/out/print-default.json")
	cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q

`, input)+esOutputTOML(url, index))
	if code, stdout, stderr := runCLI(t, "", "ingest", "-c", cfg); code != exitOK {
		t.Fatalf("ingest: exit %d\n%s%s", code, stdout, stderr)
	}
	aggregated := map[string]bool{}
	for _, o := range kibanaObjects(t) {
		fields, agg := o.fields(t)
		for _, f := range fields {
			aggregated[f] = aggregated[f] || agg
		}
	}
	res, err := http.Get(url + "/" + index + "-*/_field_caps?fields=" + strings.Join(slices.Sorted(maps.Keys(aggregated)), ","))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var caps struct {
		Fields map[string]map[string]struct{ Searchable, Aggregatable bool }
	}
	if err := json.NewDecoder(res.Body).Decode(&caps); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("_field_caps: HTTP %d: %v", res.StatusCode, err)
	}
	for f, agg := range aggregated {
		types := caps.Fields[f]
		if len(types) != 1 {
			t.Errorf("field %s: types %v, want exactly one", f, types)
			continue
		}
		for typ, c := range types {
			if !c.Searchable || agg && !c.Aggregatable {
				t.Errorf("field %s (%s): searchable %v, aggregatable %v; Kibana aggregates on it: %v", f, typ, c.Searchable, c.Aggregatable, agg)
			}
		}
	}
	if len(aggregated) < 8 {
		t.Errorf("only %d fields checked", len(aggregated))
	}
}
