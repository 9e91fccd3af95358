package main

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// usage is what one run of a tool cost: wall time, CPU time of its whole
// process tree, and the largest resident set of any process in it.
type usage struct {
	Wall, CPU time.Duration
	MaxRSS    int64         // bytes
	Server    time.Duration // CPU of the Elasticsearch node meanwhile (ingest), 0 if unknown
}

// becomeSubreaper makes the processes a tool leaves behind (pmacct's
// plugins outlive its core) our children when their parent exits, so that
// their CPU time is counted when we reap them.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// run runs cmd to its end and every process it started to theirs.
func run(cmd *exec.Cmd) (usage, error) {
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return usage{}, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	return wait(cmd, start)
}

// wait waits for cmd, started at start, and reaps what it left running.
func wait(cmd *exec.Cmd, start time.Time) (usage, error) {
	err := cmd.Wait()
	var u usage
	if cmd.ProcessState != nil {
		add(&u, cmd.ProcessState.SysUsage().(*syscall.Rusage))
	}
	// reap what the tool left running (reparented to us)
	for {
		var ru syscall.Rusage
		var ws syscall.WaitStatus
		_, werr := syscall.Wait4(-1, &ws, 0, &ru)
		if errors.Is(werr, syscall.ECHILD) {
			break
		}
		if werr == nil {
			add(&u, &ru)
		}
	}
	u.Wall = time.Since(start)
	if err != nil {
		return u, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	return u, nil
}

// add counts one reaped process (its rusage includes the descendants it reaped).
func add(u *usage, ru *syscall.Rusage) {
	u.CPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	u.MaxRSS = max(u.MaxRSS, ru.Maxrss*1024) // Linux: KiB
}
