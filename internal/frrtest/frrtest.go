// Package frrtest runs FRR's bgpd (Debian's frr, with its bmp module) for
// the tests of flowdex's BMP collector: a standalone bgpd (no zebra, no
// kernel routes) of the test's own configuration, on 127.0.0.3, stopped
// at the test's end.
package frrtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// Addr is bgpd's address: its BGP listening one. Its BMP sessions come
// from the address the kernel chooses for flowdex's.
const Addr = "127.0.0.3"

// bgpd is Debian's path of FRR's BGP daemon.
const bgpd = "/usr/lib/frr/bgpd"

// FRR is a running bgpd.
type FRR struct {
	*testwatch.Daemon
	Port int // bgpd's BGP port on Addr
	t    testing.TB
	dir  string
}

// Require skips the test when FRR is missing, or fails it on CI.
func Require(t testing.TB) {
	t.Helper()
	_, err := os.Stat(bgpd)
	if err == nil {
		_, err = exec.LookPath("vtysh")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("FRR's bgpd or vtysh (Debian's frr) is missing (CI=true: this test must run; make deps installs it)")
		}
		t.Skip("FRR's bgpd or vtysh (Debian's frr) is missing; make deps installs it")
	}
}

// Start runs bgpd with conf, a format whose %[1]s is a directory for its
// files, %[2]d flowdex's port and %[3]d a free port on Addr bgpd listens
// on for BGP.
func Start(t testing.TB, conf string, flowdexPort int) *FRR {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", Addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	path := filepath.Join(dir, "bgpd.conf")
	if err := os.WriteFile(path, fmt.Appendf(nil, conf, dir, flowdexPort, port), 0o644); err != nil {
		t.Fatal(err)
	}
	// -Z: no zebra; -l: listen on Addr only, and install nothing in the
	// kernel; -S: no change of user (the tests may run as root, which is
	// not in Debian's frrvty group)
	cmd := exec.Command(bgpd, "-f", path, "-Z", "-S", "-l", Addr, "-p", strconv.Itoa(port), "-M", "bmp",
		"-i", filepath.Join(dir, "bgpd.pid"), "--vty_socket", dir, "-P", "0")
	f := &FRR{Daemon: testwatch.StartDaemon(t, "bgpd", cmd, filepath.Join(dir, "bgpd.log")), Port: port, t: t, dir: dir}
	// up when its vty socket is: a configuration it refuses fails here
	f.WaitFor("bgpd's vty socket", func() bool {
		_, err := os.Stat(filepath.Join(dir, "bgpd.vty"))
		return err == nil
	})
	return f
}

// Ctl runs vtysh commands (each one -c) on bgpd.
func (f *FRR) Ctl(cmds ...string) string {
	f.t.Helper()
	args := []string{"--vty_socket", f.dir, "-d", "bgpd"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("vtysh", args...).CombinedOutput()
	if err != nil {
		f.t.Fatalf("vtysh %s: %v\n%s", strings.Join(cmds, "; "), err, out)
	}
	return string(out)
}
