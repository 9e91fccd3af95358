//go:build unix

package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// spoolLockName is the file in a spool directory whose lock says which
// process sends that spool: two senders would collide on segment names and
// each replay the other's documents.
const spoolLockName = "flowdex.lock"

// lock takes the lock of dir for as long as the returned file is open,
// and writes this process's id in it; the error of a lock already taken names
// the process holding it.
func lock(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, spoolLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("spool: locking %s: %w", f.Name(), err)
		}
		buf := make([]byte, 32)
		k, _ := f.ReadAt(buf, 0)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(buf[:k])))
		switch {
		case perr != nil:
			return nil, fmt.Errorf("spool_dir %s is used by another flowdex process", dir)
		case pid == os.Getpid():
			return nil, fmt.Errorf("spool_dir %s is used by another output of this flowdex process", dir)
		}
		return nil, fmt.Errorf("spool_dir %s is used by another flowdex process (pid %d)", dir, pid)
	}
	// the id only serves the message of a second process: no error if it cannot be written
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}
