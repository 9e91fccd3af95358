package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/setting"
)

// payload is a record of n entries of 40 bytes, from entry from on.
func payload(from, n int) []byte {
	var b []byte
	for i := from; i < from+n; i++ {
		b = append(b, "entry"+strconv.Itoa(10000+i)+strings.Repeat(".", 30)...)
	}
	return b
}

func appendPayload(t *testing.T, sp *Spool, from, n int) []byte {
	t.Helper()
	p := payload(from, n)
	if err := sp.Append(n, func(dst []byte) []byte { return append(dst, p...) }); err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll reads segment seq after skip records.
func readAll(sp *Spool, seq uint64, skip int) ([]string, int, error) {
	var got []string
	n, err := sp.Read(seq, skip, func(p []byte, _ int) error {
		got = append(got, string(p))
		return nil
	})
	return got, n, err
}

// Records read back as they were, oldest first, across a reopen; the cap is
// enforced; a record its reader cannot decode is skipped and counted lost.
func TestSpoolAppendRead(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(dir, 1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		want = append(want, string(appendPayload(t, sp, i*10, i+1)))
	}
	if !sp.Active() || sp.Entries() != 15 {
		t.Fatalf("active %v, %d entries", sp.Active(), sp.Entries())
	}
	sp.Close()
	if sp, err = Open(dir, 1<<20, Options{}); err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if sp.Entries() != 15 {
		t.Errorf("reopened: %d entries, want 15", sp.Entries())
	}
	seq, ok := sp.Next()
	if !ok {
		t.Fatal("the reopened spool is empty")
	}
	got, n, err := readAll(sp, seq, 2)
	if err != nil || n != 3 || strings.Join(got, "|") != strings.Join(want[2:], "|") {
		t.Fatalf("read %d records (%v), want the 3 after the first 2, in order", n, err)
	}
	// the second record cannot be decoded by its reader: lost, counted
	n, err = sp.Read(seq, 0, func(p []byte, _ int) error {
		if string(p) == want[1] {
			return ErrBadRecord
		}
		return nil
	})
	var d *Damage
	if n != 4 || !errors.As(err, &d) || d.Lost != 2 {
		t.Errorf("a bad record: %d read, %v; want 4 and 2 entries lost", n, err)
	}
	if err := sp.Remove(seq); err != nil {
		t.Fatal(err)
	}
	if _, ok := sp.Next(); ok || sp.Active() || sp.Bytes() != 0 || sp.Entries() != 0 {
		t.Errorf("after remove: active %v, %d bytes", sp.Active(), sp.Bytes())
	}
	small, err := Open(t.TempDir(), 100, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if err := small.Append(5, func(dst []byte) []byte { return append(dst, payload(0, 5)...) }); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "spool_max_bytes is 100") {
		t.Errorf("over the cap: %v", err)
	}
}

// A full disk: the spool says so (ENOSPC), and the record is not left torn.
// The disk is a 64 KiB tmpfs (root only).
func TestSpoolDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	sp, err := Open(filepath.Join(dir, "spool"), 1<<30, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var appendErr error
	n := 0
	for ; n < 1000; n++ {
		p := payload(n*20, 20)
		if appendErr = sp.Append(20, func(dst []byte) []byte { return append(dst, p...) }); appendErr != nil {
			break
		}
	}
	if appendErr == nil || !strings.Contains(appendErr.Error(), "disk full") || !errors.Is(appendErr, syscall.ENOSPC) {
		t.Fatalf("after %d records: %v, want a disk-full error", n, appendErr)
	}
	sp.Close()
	read := 0
	for seq, ok := sp.Next(); ok; seq, ok = sp.Next() {
		_, k, err := readAll(sp, seq, 0)
		if err != nil {
			t.Fatalf("segment %d after the failed write: %v", seq, err)
		}
		read += k
		sp.Remove(seq)
	}
	if read != n {
		t.Errorf("%d records read back, %d were written", read, n)
	}
}

// damagedSegment writes records A B C D (3, 7, 4 and 6 entries of 40 bytes
// after items of 4 bytes) in one segment of dir and damages it as how says;
// it returns the spool that wrote them, the payloads that must read back and
// the entries lost.
func damagedSegment(t *testing.T, dir, how string) (sp *Spool, want []string, lost int64) {
	t.Helper()
	opt := Options{ItemBytes: 4}
	sp, err := Open(dir, 1<<20, opt)
	if err != nil {
		t.Fatal(err)
	}
	var payloads []string
	var offs []int64
	var off int64
	from := 0
	for _, n := range []int{3, 7, 4, 6} {
		p := append(bytes.Repeat([]byte("item"), n), payload(from, n)...)
		from += n
		if err := sp.Append(n, func(dst []byte) []byte { return append(dst, p...) }); err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, string(p))
		offs = append(offs, off)
		off += int64(HeaderBytes + len(p) + 4)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SegmentName(1))
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) != off {
		t.Fatalf("segment of %d bytes (%v), want %d", len(data), err, off)
	}
	switch how {
	case "header": // B's magic and entry count
		copy(data[offs[1]+2:], "\xff\xff\xff\xff\xff")
		want, lost = []string{payloads[0], payloads[2], payloads[3]}, 7
	case "body": // a byte of one of B's entries
		data[offs[2]-10] ^= 0x20
		want, lost = []string{payloads[0], payloads[2], payloads[3]}, 7
	case "truncated": // D cut short by a crash
		data = data[:offs[3]+50]
		want, lost = payloads[:3], 6
	default:
		t.Fatalf("unknown damage %q", how)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return sp, want, lost
}

// A damaged record loses its own entries only: the records after it are
// read, and the entries lost are counted, whether the damage happened while
// the spool was open (the count of what was appended) or before it was
// opened (its header, when readable, names them; when not, they are estimated
// from the bytes).
func TestSpoolDamagedRecord(t *testing.T) {
	for _, how := range []string{"header", "body", "truncated"} {
		for _, reopen := range []bool{false, true} {
			dir := t.TempDir()
			sp, want, lost := damagedSegment(t, dir, how) // damaged while open: the appends counted
			if reopen {                                   // damaged before the spool was opened
				var err error
				if sp, err = Open(dir, 1<<20, Options{ItemBytes: 4}); err != nil {
					t.Fatal(err)
				}
			}
			got, n, err := readAll(sp, 1, 0)
			var d *Damage
			if !errors.As(err, &d) || !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s, reopen %v: %v, want a damaged segment", how, reopen, err)
				sp.Close()
				continue
			}
			if n != len(want) || strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s, reopen %v: %d records read, want %d intact ones in order", how, reopen, n, len(want))
			}
			if d.Lost != lost {
				t.Errorf("%s, reopen %v: %d entries lost, want %d (%v)", how, reopen, d.Lost, lost, d)
			}
			if wantEst := reopen && how == "header"; (d.Estimated > 0) != wantEst {
				t.Errorf("%s, reopen %v: %d estimated (%v)", how, reopen, d.Estimated, d)
			}
			// skipping goes by intact records, as a drain resumes
			if _, n, err := readAll(sp, 1, 1); n != len(want)-1 || !errors.As(err, &d) || d.Lost != lost {
				t.Errorf("%s, reopen %v: after skipping one, %d records and %v", how, reopen, n, err)
			}
			sp.Close()
		}
	}
}

// CheckLimits names each setting that is not positive, and passes the
// defaults.
func TestCheckLimits(t *testing.T) {
	if errs := CheckLimits(1<<30, setting.Duration{Duration: 30 * time.Second}); len(errs) != 0 {
		t.Fatalf("defaults refused: %v", errs)
	}
	errs := CheckLimits(0, setting.Duration{})
	var keys []string
	for _, err := range errs {
		var ke *setting.KeyError
		if !errors.As(err, &ke) {
			t.Fatalf("%v is not a KeyError", err)
		}
		keys = append(keys, ke.Key)
	}
	if strings.Join(keys, ",") != "spool_max_bytes,spool_after" {
		t.Errorf("errors at %v, want spool_max_bytes and spool_after", keys)
	}
}
