package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowdex/flowdex/aggregate/engine"
)

// openPTY returns a pseudo-terminal: what is written to tty is read from
// master.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, tty
}

// ingest of a file on a terminal ends with a line saying how many records
// it read and how much of the file; not on a terminal, it says nothing of
// the kind.
func TestIngestProgress(t *testing.T) {
	dir := t.TempDir()
	var in strings.Builder
	const records = 20000
	for i := range records {
		fmt.Fprintf(&in, `{"event_type": "purge", "ip_src": "192.0.2.%d", "port_src": %d, "packets": 1, "bytes": 60}`+"\n", i%250, i)
	}
	input := writeFile(t, dir, "plugin1.json", in.String())
	conf := writeFile(t, dir, "flowdex.toml", "[[input]]\ntype = \"pmacct\"\nfile = \"plugin1.json\"\n[output.p]\ntype = \"print\"\nfile = \"out.json\"\n")
	size := float64(len(in.String())) / (1 << 20)
	want := fmt.Sprintf("flowdex: %s records in ", thousands(records))

	master, tty := openPTY(t)
	cmd := exec.Command(flowdexBinary(t), "ingest", "-c", conf, "--input", input)
	cmd.Stderr = tty
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	seen := make(chan string, 1)
	go func() { b, _ := io.ReadAll(master); seen <- string(b) }() // EIO once the process is gone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ingest: %v\n%s", err, stdout.String())
	}
	var onTerminal string
	select {
	case onTerminal = <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal did not close")
	}
	master.Close()
	if !strings.Contains(onTerminal, want) || !strings.Contains(onTerminal, fmt.Sprintf(", %.1f MiB read", size)) {
		t.Errorf("the terminal shows no final progress line %q...%.1f MiB read:\n%q", want, size, onTerminal)
	}

	code, _, stderr := runCLI(t, "", "ingest", "-c", conf, "--input", input)
	if code != 0 || strings.Contains(stderr, "records in") || strings.Contains(stderr, "\r") {
		t.Errorf("not on a terminal: exit %d, a progress line in\n%s", code, stderr)
	}
}

func TestProgressLine(t *testing.T) {
	p := engine.Progress{Records: 1234567, Read: 256 << 20, Size: 1024 << 20}
	if got, want := progressLine(p, 10*time.Second, false), "flowdex: 1,234,567 records, 123,456/s, 256.0 MiB of 1024.0 MiB (25%), 0:30 left"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, want := progressLine(p, 10*time.Second, true), "flowdex: 1,234,567 records in 10s (123,456/s), 256.0 MiB read"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := progressLine(engine.Progress{Records: 999}, time.Hour+5*time.Second, false); got != "flowdex: 999 records, 0/s" {
		t.Errorf("standard input: %s", got)
	}
	if clock(3*time.Hour+2*time.Minute+1*time.Second) != "3:02:01" {
		t.Error(clock(3*time.Hour + 2*time.Minute + 1*time.Second))
	}
}
