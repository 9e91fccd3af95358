package main

// The clocks of the C programs the golden tests run. An exporter fed an old
// capture stamps its flows relative to its own clock: pmacctd's nfprobe starts
// sysUptime when it starts and takes First/Last from the capture, so what it
// exports depends on the day the test runs, and so does the collectors'
// reading of it (NetFlow v5/v9 uptimes are 32-bit milliseconds: flowdex reads
// the difference as signed, nfacctd as unsigned, and they agree only while
// the capture is less than 24.8 days older than the exporter's clock, modulo
// 49.7 days). Exporters therefore run with libfaketime's clock set to
// exportClock, an hour after the captures' first packet (2024-01-01 00:00:00
// UTC) and after their last one: the export is the same whatever the date.
// libfaketime reads an absolute time in the process's time zone, so exporters
// run with TZ=UTC: east of UTC+1 (Pacific/Kiritimati, Australia/Lord_Howe)
// the clock would otherwise start before the capture.
//
// FLOWDEX_TEST_CLOCK_SHIFT (a libfaketime offset such as "+25d" or "-49d")
// shifts the clocks of the other C programs (nfacctd, sfacctd, pmacctd's
// print runs), to check that no golden depends on the date: `make test-dates`
// runs them at +-25 and +-49 days.

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// exportClock is the time exporters start at (libfaketime's "@" form: the
// clock then runs from there), in UTC (exporterCommand sets TZ=UTC).
const exportClock = "@2024-01-01 01:00:00"

// libfaketime returns the path of libfaketime's preload library, "" when it
// is not installed.
func libfaketime() string {
	arch := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu",
		"arm": "arm-linux-gnueabihf", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu"}[runtime.GOARCH]
	for _, dir := range []string{"/usr/lib/" + arch + "/faketime", "/usr/lib/faketime", "/usr/local/lib/faketime"} {
		p := filepath.Join(dir, "libfaketime.so.1")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// requireFaketime skips the test when libfaketime is missing, or fails it on CI.
func requireFaketime(t *testing.T) {
	t.Helper()
	if libfaketime() != "" {
		return
	}
	if ciRequired() {
		t.Fatal("missing libfaketime (CI=true: these tests must run; make deps installs the faketime package)")
	}
	t.Skip("missing libfaketime (make deps installs the faketime package)")
}

// withClock makes cmd run with its clock at fake, a libfaketime FAKETIME
// value; "" leaves the clock alone.
func withClock(cmd *exec.Cmd, fake string) *exec.Cmd {
	lib := libfaketime()
	if fake == "" || lib == "" {
		return cmd
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env, "LD_PRELOAD="+lib, "FAKETIME="+fake,
		// forked plugins and writers keep the parent's clock instead of
		// starting again at an absolute FAKETIME
		"FAKETIME_DONT_RESET=1",
		// timers and sleeps stay on real time
		"FAKETIME_DONT_FAKE_MONOTONIC=1")
	return cmd
}

// exporterCommand is an exporter fed an old capture, its clock at exportClock
// UTC whatever the machine's time zone.
func exporterCommand(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	return withClock(cmd, exportClock)
}

// collectorCommand is nfacctd, sfacctd or pmacctd on a savefile, its clock
// shifted by FLOWDEX_TEST_CLOCK_SHIFT when set.
func collectorCommand(cmd *exec.Cmd) *exec.Cmd {
	return withClock(cmd, os.Getenv("FLOWDEX_TEST_CLOCK_SHIFT"))
}
