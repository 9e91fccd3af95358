package testwatch

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// Daemon is a program a test runs for its length (BIRD, FRR's bgpd):
// killed at the test's end, its output and its log file shown when the
// test failed.
type Daemon struct {
	t      testing.TB
	name   string
	exited chan struct{}
}

// StartDaemon starts cmd, called name in messages; logFile ("" for none)
// is shown beside its output when the test fails.
func StartDaemon(t testing.TB, name string, cmd *exec.Cmd, logFile string) *Daemon {
	t.Helper()
	var out Log
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{t: t, name: name, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-d.exited
		if t.Failed() {
			log, _ := os.ReadFile(logFile)
			t.Logf("%s:\n%s%s", name, out.String(), log)
		}
	})
	return d
}

// WaitFor polls cond for up to 30 seconds, while the daemon runs.
func (d *Daemon) WaitFor(what string, cond func() bool) {
	d.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		select {
		case <-d.exited:
			d.t.Fatalf("%s exited before %s", d.name, what)
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no %s after 30s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
