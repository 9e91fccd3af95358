package pmacct

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readGeneration reads what a generation returns until it ends.
func readGeneration(t *testing.T, g *Generation, done <-chan struct{}) string {
	t.Helper()
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(g)
		out <- string(b)
	}()
	select {
	case s := <-out:
		return s
	case <-done:
		t.Fatal("generation did not end")
	}
	return ""
}

// The follower reads a file as pmacct writes it, step by step: created late, a line
// finished later, appended to, then rewritten by the next purge.
func TestFollowerRewriteAndAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "print.json")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fl := &Follower{Path: path, Poll: 10 * time.Millisecond}
	readLine := func(r *bufio.Reader) string {
		t.Helper()
		line := make(chan string, 1)
		go func() {
			s, _ := r.ReadString('\n')
			line <- s
		}()
		select {
		case s := <-line:
			return s
		case <-ctx.Done():
			t.Fatal("no line")
		}
		return ""
	}

	// the file does not exist yet: Next waits for pmacct to create it
	time.AfterFunc(50*time.Millisecond, func() {
		os.WriteFile(path, []byte("{\"a\": 1}\n{\"a\": 2"), 0o644) // the second line is not finished yet
	})
	g1, err := fl.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r1 := bufio.NewReader(g1)
	if got := readLine(r1); got != "{\"a\": 1}\n" {
		t.Fatalf("line 1: %q", got)
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("}\n{\"a\": 3}\n") // pmacct finishes the line and appends
	f.Close()
	if got := readLine(r1) + readLine(r1); got != "{\"a\": 2}\n{\"a\": 3}\n" {
		t.Fatalf("lines 2 and 3: %q", got)
	}
	// the next purge rewrites the file with longer content: the generation ends
	os.WriteFile(path, []byte("{\"b\": 10}\n{\"b\": 20}\n{\"b\": 30}\n{\"b\": 40}\n"), 0o644)
	if got := readGeneration(t, g1, ctx.Done()); got != "" {
		t.Fatalf("first generation went on with %q", got)
	}
	g1.Close()
	g2, err := fl.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g2.Origin == g1.Origin {
		t.Fatalf("two purges with the same origin %s: their ids would collide", g2.Origin)
	}
	time.AfterFunc(100*time.Millisecond, func() { os.Remove(path) }) // the generation ends when the file goes away
	if got := readGeneration(t, g2, ctx.Done()); got != "{\"b\": 10}\n{\"b\": 20}\n{\"b\": 30}\n{\"b\": 40}\n" {
		t.Fatalf("second generation read %q", got)
	}
	g2.Close()
}

func TestFollowerStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "print.json")
	os.WriteFile(path, []byte("{\"a\": 1}\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	fl := &Follower{Path: path, Poll: 10 * time.Millisecond}
	g, err := fl.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	waitReadAhead(t, g, len("{\"a\": 1}\n"))
	cancel()
	deadline, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if got := readGeneration(t, g, deadline.Done()); got != "{\"a\": 1}\n" {
		t.Fatalf("read %q", got)
	}
	if _, err := fl.Next(ctx); err == nil {
		t.Fatal("Next after cancel should fail")
	}
}

// A consumer slower than pmacct loses nothing: the file is read as it grows, so
// a purge rewritten before the consumer got to it is still delivered whole.
func TestFollowerSlowConsumerLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "print.json")
	var a strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&a, "{\"purge\": \"A\", \"n\": %d, \"pad\": \"%0200d\"}\n", i, i)
	}
	if err := os.WriteFile(path, []byte(a.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fl := &Follower{Path: path, Poll: 10 * time.Millisecond}
	g, err := fl.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	first := make([]byte, 10)
	if _, err := io.ReadFull(g, first); err != nil {
		t.Fatal(err)
	}
	// the consumer is busy (Elasticsearch is slow) while the file is read ahead...
	waitReadAhead(t, g, a.Len()-len(first))
	// ...and pmacct writes the next purge over the file
	if err := os.WriteFile(path, []byte("{\"purge\": \"B\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rest := readGeneration(t, g, ctx.Done())
	if got := string(first) + rest; got != a.String() {
		t.Fatalf("read %d bytes of purge A, want %d", len(got), a.Len())
	}
	if g.Lost() != 0 {
		t.Fatalf("Lost = %d", g.Lost())
	}
}

// A last line pmacct never finished before rewriting the file is counted as lost.
func TestFollowerCountsUnfinishedLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "print.json")
	os.WriteFile(path, []byte("{\"a\": 1}\n{\"a\": 2, \"unfin"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fl := &Follower{Path: path, Poll: 10 * time.Millisecond}
	g, err := fl.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	waitReadAhead(t, g, len("{\"a\": 1}\n{\"a\": 2, \"unfin"))
	os.WriteFile(path, []byte("{\"b\": 1}\n"), 0o644)
	if got := readGeneration(t, g, ctx.Done()); got != "{\"a\": 1}\n" {
		t.Fatalf("read %q", got)
	}
	if g.Lost() != int64(len("{\"a\": 2, \"unfin")) {
		t.Fatalf("Lost = %d", g.Lost())
	}
}

// waitReadAhead waits until the generation holds n bytes its consumer has not taken.
func waitReadAhead(t *testing.T, g *Generation, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.r.mu.Lock()
		have := len(g.r.pending)
		g.r.mu.Unlock()
		if have >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read ahead %d bytes, want %d", have, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
