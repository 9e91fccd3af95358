package elasticsearch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/sink/spool"
)

// testBatch encodes n documents as the sink would.
func testBatch(t *testing.T, from, n int) *batch {
	t.Helper()
	s, err := New(DefaultConfiguration(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &batch{}
	var doc document.Document
	var e encoder
	for i := from; i < from+n; i++ {
		pmacctDoc(&doc, i)
		it := s.encode(&e, &doc, "id-"+strconv.Itoa(i), time.Unix(1704067200, 0))
		b.add(e.buf, it)
	}
	return b
}

// Records read back as the batches they were, oldest first, across segments
// and a reopen; a torn last record reads as corrupt; the cap is enforced.
func TestSpoolRecords(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		b := testBatch(t, i*10, 10)
		want = append(want, string(b.buf))
		if err := appendSpool(sp, b); err != nil {
			t.Fatal(err)
		}
	}
	if !sp.Active() || sp.Bytes() == 0 {
		t.Fatalf("active %v, %d bytes", sp.Active(), sp.Bytes())
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp, err = openSpool(dir, 1<<20) // a restart
	if err != nil {
		t.Fatal(err)
	}
	seq, ok := sp.Next()
	if !ok {
		t.Fatal("the reopened spool is empty")
	}
	var got []string
	b := &batch{}
	n, err := readSpool(sp, seq, 1, b, func(b *batch) error {
		got = append(got, string(b.buf))
		for i := range b.items {
			id := string(b.items[i].id(b.buf))
			if !strings.HasPrefix(id, `"id-`) || !strings.Contains(string(b.items[i].document(b.buf)), `"packets":7`) {
				t.Errorf("item %d: id %s document %s", i, id, b.items[i].document(b.buf))
			}
		}
		return nil
	})
	if err != nil || n != 4 || strings.Join(got, "") != strings.Join(want[1:], "") {
		t.Fatalf("read %d records (%v), want the 4 after the first, in order", n, err)
	}
	if err := sp.Remove(seq); err != nil {
		t.Fatal(err)
	}
	if _, ok := sp.Next(); ok || sp.Active() || sp.Bytes() != 0 {
		t.Errorf("after remove: active %v, %d bytes", sp.Active(), sp.Bytes())
	}

	// a torn write: the record is cut in the middle
	if err := appendSpool(sp, testBatch(t, 0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := appendSpool(sp, testBatch(t, 3, 3)); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	seq, _ = sp.Next()
	path := filepath.Join(dir, spool.SegmentName(seq))
	info, _ := os.Stat(path)
	if err := os.Truncate(path, info.Size()-10); err != nil {
		t.Fatal(err)
	}
	n, err = readSpool(sp, seq, 0, b, func(*batch) error { return nil })
	if n != 1 || !errors.Is(err, spool.ErrCorrupt) {
		t.Errorf("torn segment: %d records, %v; want 1 and a corrupt record", n, err)
	}

	small, err := openSpool(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := appendSpool(small, testBatch(t, 0, 5)); !errors.Is(err, spool.ErrFull) || !strings.Contains(err.Error(), "spool_max_bytes is 100") {
		t.Errorf("over the cap: %v", err)
	}
}

// waitSpoolEmpty waits until the drain has sent everything.
func waitSpoolEmpty(t *testing.T, s *Sink) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); s.Stats().SpoolBytes > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the spool still holds %d bytes", s.Stats().SpoolBytes)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeAndFlush writes n documents with ids and hands them to the workers
// now, without stopping the sink.
func writeAndFlush(t *testing.T, s *Sink, n int) {
	t.Helper()
	var doc document.Document
	for i := range n {
		pmacctDoc(&doc, i)
		if err := s.Write(context.Background(), &doc, "id-"+strconv.Itoa(i), recordTime(&doc, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	s.lock <- struct{}{}
	s.flushLocked()
	s.unlock()
}

// An outage longer than the retries: the requests go to the spool, later
// ones queue behind them, and everything is indexed once the server answers;
// nothing is dead-lettered.
func TestFakeOutageSpools(t *testing.T) {
	const n = 200
	f, srv := newFakeES(t, func(i int) string {
		if i < 30 {
			return "503"
		}
		return ""
	})
	cfg := fakeConfig(srv.URL)
	cfg.MaxRetries, cfg.Workers = 2, 1
	cfg.SpoolDir = t.TempDir()
	cfg.DeadLetterFile = filepath.Join(t.TempDir(), "dead.ndjson")
	s, _ := startSink(t, cfg)
	writeAndFlush(t, s, n)
	waitSpoolEmpty(t, s)
	// the replay succeeding clears the failure the outage left (Spooling
	// turns false only at the drain's next look at the spool: not checked)
	if h := s.Health(); h.LastError != "" || !h.Delivers() {
		t.Errorf("health after the spool drained: %+v", h)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Spooled == 0 || st.Replayed != st.Spooled || st.Indexed+st.Duplicates != n || st.DeadLettered != 0 || st.Failed != 0 {
		t.Errorf("stats %+v: want some spooled, all replayed, all %d indexed", st, n)
	}
	if f.count() != n {
		t.Errorf("the server holds %d documents, want %d", f.count(), n)
	}
}

// With a spool, an output delivers while Elasticsearch is away (the spool
// takes over) but not when requests are refused as a whole (403 here): those
// documents go to the dead-letter file, and health says so until a request
// succeeds.
func TestFakeHealthWithSpool(t *testing.T) {
	for _, tt := range []struct {
		action   string
		delivers bool
	}{{"503", true}, {"403", false}} {
		_, srv := newFakeES(t, func(int) string { return tt.action })
		cfg := fakeConfig(srv.URL)
		cfg.MaxRetries, cfg.Workers = 0, 1
		cfg.SpoolDir = t.TempDir()
		cfg.DeadLetterFile = filepath.Join(t.TempDir(), "dead.ndjson")
		s, _ := startSink(t, cfg)
		writeAndFlush(t, s, 5)
		deadline := time.Now().Add(10 * time.Second)
		for s.Health().LastError == "" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if h := s.Health(); h.LastError == "" || h.Delivers() != tt.delivers || h.DeadLettered == tt.delivers {
			t.Errorf("%s: health %+v, want delivers=%v", tt.action, h, tt.delivers)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); tt.delivers && (st.DeadLettered != 0 || st.Spooled != 5) || !tt.delivers && st.DeadLettered != 5 {
			t.Errorf("%s: stats %+v", tt.action, st)
		}
	}
}

// Stopping during an outage spools what is queued; the next start, with the
// same spool and the server back, indexes it. A sink started while the server
// is unreachable spools too and sets up the server when it comes.
func TestFakeSpoolAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	_, down := newFakeES(t, func(int) string { return "503" })
	cfg := fakeConfig(down.URL)
	cfg.MaxRetries, cfg.SpoolDir = 2, dir
	s, _ := startSink(t, cfg)
	writeDocs(t, s, 50, true) // writes and stops
	if st := s.Stats(); st.Spooled != 50 || st.SpoolDocs != 50 || st.SpoolBytes == 0 || st.DeadLettered+st.Failed != 0 {
		t.Fatalf("stats %+v: want 50 spooled", st)
	}

	// the next start: nothing listens on the port yet
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg.URLs = []string{"http://" + addr}
	s2, logs := startSink(t, cfg)
	if st := s2.Stats(); st.SpoolDocs != 50 {
		t.Errorf("the reopened spool holds %d documents, want 50", st.SpoolDocs)
	}
	if !strings.Contains(logs.String(), "not ready at start; spooling") {
		t.Errorf("no warning about the start without Elasticsearch:\n%s", logs)
	}
	var doc document.Document
	for i := 50; i < 80; i++ {
		pmacctDoc(&doc, i)
		if err := s2.Write(context.Background(), &doc, "id-"+strconv.Itoa(i), recordTime(&doc, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	// the server comes up on that port
	f := &fakeES{t: t, docs: map[string]json.RawMessage{}, script: func(int) string { return "" }, release: make(chan struct{})}
	up := httptest.NewUnstartedServer(f)
	if up.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	up.Start()
	defer up.Close()
	s2.lock <- struct{}{}
	s2.flushLocked()
	s2.unlock()
	waitSpoolEmpty(t, s2)
	if err := s2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.count() != 80 {
		t.Errorf("the server holds %d documents, want 80 (50 from the first run's spool)", f.count())
	}
	if st := s2.Stats(); st.DeadLettered+st.Failed != 0 || st.SpoolBytes != 0 {
		t.Errorf("stats %+v", st)
	}
}

// damagedSegment writes records A B C D (3, 7, 4 and 6 documents of one size)
// in one segment of dir and damages it as how says; it returns the spool that
// wrote them, the bodies of the records that must read back and the documents
// lost. (The spool's own damage tests are in package spool; this one is for
// the drain.)
func damagedSegment(t *testing.T, dir, how string) (sp *spool.Spool, want []string, lost int64) {
	t.Helper()
	sp, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	var offs []int64
	var off int64
	from := 110 // documents 110 to 249 all encode to the same length
	for _, n := range []int{3, 7, 4, 6} {
		b := testBatch(t, from, n)
		from += n
		if err := appendSpool(sp, b); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(b.buf))
		offs = append(offs, off)
		off += int64(spool.HeaderBytes + len(appendRecord(nil, b)) + 4)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, spool.SegmentName(1))
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) != off {
		t.Fatalf("segment of %d bytes (%v), want %d", len(data), err, off)
	}
	switch how {
	case "header": // B's magic and item count
		copy(data[offs[1]+2:], "\xff\xff\xff\xff\xff")
		want, lost = []string{bodies[0], bodies[2], bodies[3]}, 7
	case "body": // a byte of one of B's documents
		data[offs[2]-40] ^= 0x20
		want, lost = []string{bodies[0], bodies[2], bodies[3]}, 7
	case "truncated": // D cut short by a crash
		data = data[:offs[3]+100]
		want, lost = bodies[:3], 6
	default:
		t.Fatalf("unknown damage %q", how)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return sp, want, lost
}

// The drain sends the intact records of a damaged segment and counts the
// documents of the damaged one as lost.
func TestFakeSpoolDamaged(t *testing.T) {
	for _, how := range []string{"header", "body", "truncated"} {
		dir := t.TempDir()
		_, _, lost := damagedSegment(t, dir, how)
		f, srv := newFakeES(t, nil)
		cfg := fakeConfig(srv.URL)
		cfg.SpoolDir = dir
		s, logs := startSink(t, cfg)
		waitSpoolEmpty(t, s)
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := s.Stats()
		if st.SpoolLost != uint64(lost) || st.Indexed != 20-uint64(lost) || f.count() != 20-int(lost) {
			t.Errorf("%s: spool_lost %d, indexed %d, the server holds %d; want %d lost and the other %d indexed",
				how, st.SpoolLost, st.Indexed, f.count(), lost, 20-lost)
		}
		if !strings.Contains(logs.String(), "spool segment damaged") {
			t.Errorf("%s: nothing logged about the damage:\n%s", how, logs)
		}
	}
}

// A spool directory has one sender: a second sink of this process, or
// another process, is refused at Start with who holds it, and the directory
// is free again once the holder stops.
func TestSpoolLocked(t *testing.T) {
	_, srv := newFakeES(t, nil)
	cfg := fakeConfig(srv.URL)
	cfg.SpoolDir = t.TempDir()
	s1, _ := startSink(t, cfg)
	s2, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "spool_dir " + cfg.SpoolDir + " is used by another output of this flowdex process"
	if err := s2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a second sink on the spool: %v, want %q", err, want)
	}
	if err := s1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	s3, _ := startSink(t, cfg) // fails the test if the directory is still taken
	s3.Stop(context.Background())

	// another process
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolLockHolder$")
	cmd.Env = append(os.Environ(), "FLOWDEX_TEST_HOLD_SPOOL="+cfg.SpoolDir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close() // the holder exits at the end of its input
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "holding\n" {
		t.Fatalf("the holder said %q (%v)", line, err)
	}
	s4, _ := New(cfg, nil)
	want = fmt.Sprintf("spool_dir %s is used by another flowdex process (pid %d)", cfg.SpoolDir, cmd.Process.Pid)
	if err := s4.Start(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a sink on a spool another process holds: %v, want %q", err, want)
	}
}

// TestSpoolLockHolder holds the spool FLOWDEX_TEST_HOLD_SPOOL names until its
// standard input ends (for TestSpoolLocked).
func TestSpoolLockHolder(t *testing.T) {
	dir := os.Getenv("FLOWDEX_TEST_HOLD_SPOOL")
	if dir == "" {
		t.Skip("run by TestSpoolLocked")
	}
	sp, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
