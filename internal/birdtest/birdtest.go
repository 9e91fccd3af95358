// Package birdtest runs BIRD 2 for the tests that peer with flowdex's BGP
// listener: a daemon of the test's own configuration, stopped at its end.
package birdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// Bird is a running BIRD.
type Bird struct {
	*testwatch.Daemon
	t    testing.TB
	sock string
}

// Require skips the test when BIRD is missing, or fails it on CI.
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bird (Debian's bird2) is missing (CI=true: this test must run; make deps installs it)")
		}
		t.Skip("bird (Debian's bird2) is missing; make deps installs it")
	}
}

// Start runs BIRD with conf, a format whose %[1]s is a directory for its
// log, %[2]d flowdex's port and %[3]d a free port on 127.0.0.2 for BIRD's
// own listening (its "local 127.0.0.2 port").
func Start(t testing.TB, conf string, flowdexPort int) *Bird {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	birdPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	path := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(path, fmt.Appendf(nil, conf, dir, flowdexPort, birdPort), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bird.ctl")
	cmd := exec.Command("bird", "-f", "-c", path, "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	b := &Bird{Daemon: testwatch.StartDaemon(t, "BIRD", cmd, filepath.Join(dir, "bird.log")), t: t, sock: sock}
	// up when its control socket is: a configuration it refuses fails here
	b.WaitFor("BIRD's control socket", func() bool {
		_, err := os.Stat(b.sock)
		return err == nil
	})
	return b
}

// Ctl runs a birdc command.
func (b *Bird) Ctl(args ...string) string {
	b.t.Helper()
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("birdc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
