package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/setting"
)

func TestWritesPmacctLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.json")
	lines := []string{
		`{"event_type": "purge", "ip_src": "192.0.2.1", "port_src": 80, "tcp_flags": ["ACK"], "packets": 1, "bytes": 60}`,
		`{"event_type": "purge", "ip_src": "2001:db8::1", "label": {"a": "b"}, "packets": 2, "bytes": 120}`,
	}
	s := New(Configuration{Path: path})
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dec := document.NewDecoder()
	var doc document.Document
	for _, l := range lines {
		if err := dec.Decode([]byte(l), &doc); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, &doc, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := lines[0] + "\n" + lines[1] + "\n"; string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if s.Written() != 2 {
		t.Fatalf("Written = %d", s.Written())
	}
}

func TestStartFailsOnBadPath(t *testing.T) {
	s := New(Configuration{Path: filepath.Join(t.TempDir(), "missing", "out.json")})
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded on a missing directory")
	}
}

// A line is in the file a FlushInterval after Write at most, and at once after
// Flush, without Stop.
func TestFlush(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "out.json")
		s := New(Configuration{Path: path, FlushInterval: setting.Duration{Duration: 50 * time.Millisecond}})
		ctx := context.Background()
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		var doc document.Document
		doc.AppendInt("packets", 1)
		if err := s.Write(ctx, &doc, ""); err != nil {
			t.Fatal(err)
		}
		if explicit {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _ := os.ReadFile(path)
			if string(got) == "{\"packets\": 1}\n" {
				break
			}
			if explicit || time.Now().After(deadline) {
				t.Fatalf("flush (explicit %v): file holds %q", explicit, got)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
