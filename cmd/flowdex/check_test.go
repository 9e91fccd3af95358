package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every configuration shipped in configs/ is valid as it stands.
func TestCheckShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs: %v", err)
	}
	t.Setenv("FLOWDEX_ES_PASSWORD", "secret")
	for _, f := range files {
		code, stdout, stderr := runCLI(t, "", "check", "-c", f)
		if code != 0 {
			t.Errorf("%s: exit %d\n%s", f, code, stderr)
			continue
		}
		if !strings.Contains(stdout, "configuration is valid") || !strings.Contains(stdout, "[[input]]") {
			t.Errorf("%s: effective configuration not printed:\n%s", f, stdout)
		}
		if strings.Contains(stdout, "secret") {
			t.Errorf("%s: a secret was printed", f)
		}
		// read back, the effective configuration is valid and the same
		effective := filepath.Join(t.TempDir(), "effective.toml")
		if err := os.WriteFile(effective, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		code, again, stderr := runCLI(t, "", "check", "-c", effective)
		if code != 0 {
			t.Errorf("%s: its effective configuration read back: exit %d\n%s", f, code, stderr)
			continue
		}
		_, first, _ := strings.Cut(stdout, "\n")
		_, second, _ := strings.Cut(again, "\n")
		if first != second {
			t.Errorf("%s: its effective configuration read back differs:\n%s\nthen:\n%s", f, first, second)
		}
	}
}

func TestCheckReportsPositions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, content string
		args                []string
		want                string
	}{
		{"toml", "flowdex.toml", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n\n[output.es]\ntype = \"elasticsearch\"\nflush_intervall = \"5s\"\n",
			[]string{"-c"}, `flowdex.toml:7:1: output.es.flush_intervall: unknown key (did you mean "flush_interval"?)`},
		{"index pattern", "index.toml", "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\nindex = \"Flows-%Y\"\n",
			[]string{"-c"}, `must be lowercase`},
		{"p2es trailing comma", "plugin.conf", "{\n  \"ES_IndexName\": \"x\",\n}\n",
			[]string{"--p2es-config"}, "plugin.conf:2:22: invalid JSON: trailing comma"},
		{"p2es index", "index.conf", `{"ES_IndexName": "Flows-%Y", "ES_URL": "http://localhost:9200"}`,
			[]string{"--p2es-config"}, `index.conf:1:18: ES_IndexName: "Flows-%Y": renders as`},
		{"transformation", "bad.conf", `{"ES_IndexName": "x", "Transformations": [{"Conditions": [{"a": 1, "__op__": "~"}], "Actions": []}]}`,
			[]string{"--p2es-config"}, `transformation #1: Conditions[0]: unknown operator "~"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(t, "", append([]string{"check"}, append(tt.args, path)...)...)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q", code, stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Fatalf("stderr %q does not say %q", stderr, tt.want)
			}
		})
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, stdout, _ := runCLI(t, "", "version"); code != 0 || !strings.HasPrefix(stdout, "flowdex ") {
		t.Fatalf("version: %d %q", code, stdout)
	}
	if code, _, stderr := runCLI(t, "", "frobnicate"); code != exitUsage || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "ingest", "-h"); code != exitOK || !strings.Contains(stderr, "-p2es-config") {
		t.Fatalf("ingest -h: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "ingest", "plugin1"); code != exitUsage || !strings.Contains(stderr, `unexpected argument "plugin1"`) {
		t.Fatalf("stray argument: %d %q", code, stderr)
	}
}

// With no configuration, run reads pmacct JSON on standard input and prints it in
// pmacct's format: the stdout sink when no output is configured.
func TestRunDefaultPrintsPmacctFormat(t *testing.T) {
	in, err := os.ReadFile(samples + "print-markers.json")
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, string(in), "run")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(in)), "\n") {
		if !strings.Contains(l, `"purge_init"`) && !strings.Contains(l, `"purge_close"`) {
			want = append(want, l)
		}
	}
	if got := strings.TrimSpace(stdout); got != strings.Join(want, "\n") {
		t.Fatalf("run printed\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestCheckHidesURLPasswords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.toml")
	os.WriteFile(path, []byte("[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\nurls = [\"http://flowdex:s3cret@127.0.0.1:9200\"]\n"), 0o644)
	code, stdout, stderr := runCLI(t, "", "check", "-c", path)
	if code != 0 || strings.Contains(stdout, "s3cret") || !strings.Contains(stdout, "flowdex:") {
		t.Fatalf("exit %d, stdout:\n%s%s", code, stdout, stderr)
	}
}

// Paths given on the command line are relative to where the command runs, not to
// the configuration file.
func TestIngestInputRelativeToWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "f.toml"), []byte("[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.out]\ntype = \"print\"\nfile = \"out.json\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"ip_src": "192.0.2.1", "packets": 1, "bytes": 60}`+"\n"), 0o644)
	t.Chdir(dir)
	code, stdout, stderr := runCLI(t, "", "ingest", "-c", "etc/f.toml", "--input", "data.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	// the configuration's own relative paths stay relative to it
	if out, err := os.ReadFile(filepath.Join(dir, "etc", "out.json")); err != nil || !strings.Contains(string(out), "192.0.2.1") {
		t.Fatalf("output file: %q %v", out, err)
	}
}

func TestCheckP2ESShowsTransformations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugin1.conf")
	os.WriteFile(path, []byte(`{"ES_IndexName": "x", "Transformations": [{"Conditions": [{"a": 1}], "Actions": [{"Type": "DelField", "Name": "b"}]}]}`), 0o644)
	code, stdout, stderr := runCLI(t, "", "check", "--p2es-config", path)
	if code != 0 || !strings.Contains(stdout, `DelField`) {
		t.Fatalf("exit %d, stdout:\n%s%s", code, stdout, stderr)
	}
}
