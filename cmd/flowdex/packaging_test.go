package main

import (
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
