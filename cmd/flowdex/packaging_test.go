package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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

// The Kibana saved objects (not imported into a real Kibana: none is available
// here) are well formed: one JSON object per line with a unique type/id, every
// reference resolves within the file, the data view covers the indices every
// shipped configuration writes, and each field the visualizations and the
// saved search use is one flowdex's index template maps.
func TestKibanaObjects(t *testing.T) {
	raw, err := os.ReadFile("../../configs/kibana/flowdex.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		ID         string
		Type       string
		Attributes map[string]any
		References []struct{ Name, Type, ID string }
	}
	var objects []object
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var o object
		if err := json.Unmarshal([]byte(line), &o); err != nil || o.ID == "" || o.Type == "" || o.Attributes == nil {
			t.Fatalf("line %d: %v: %.200s", i+1, err, line)
		}
		if seen[o.Type+"/"+o.ID] {
			t.Errorf("line %d: %s/%s twice", i+1, o.Type, o.ID)
		}
		seen[o.Type+"/"+o.ID] = true
		objects = append(objects, o)
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
		var used []string
		switch o.Type {
		case "index-pattern":
			patterns = strings.Split(o.Attributes["title"].(string), ",")
			used = append(used, o.Attributes["timeFieldName"].(string))
		case "search":
			for _, c := range o.Attributes["columns"].([]any) {
				used = append(used, c.(string))
			}
		case "visualization":
			var vs struct {
				Aggs []struct{ Params struct{ Field string } }
			}
			if err := json.Unmarshal([]byte(o.Attributes["visState"].(string)), &vs); err != nil || len(vs.Aggs) == 0 {
				t.Fatalf("%s: visState: %v", o.ID, err)
			}
			for _, a := range vs.Aggs {
				used = append(used, a.Params.Field)
			}
		case "dashboard":
			var panels []struct{ PanelRefName string }
			if err := json.Unmarshal([]byte(o.Attributes["panelsJSON"].(string)), &panels); err != nil || len(panels) != len(o.References) {
				t.Fatalf("dashboard panels: %v (%d panels, %d references)", err, len(panels), len(o.References))
			}
		}
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
