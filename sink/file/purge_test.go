package file

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
)

func purgeDoc(peer string, tag int64, port int64, packets int64) *document.Document {
	var d document.Document
	d.AppendString("event_type", "purge")
	d.AppendInt("tag", tag)
	d.AppendString("label", "a;b")
	d.AppendString("peer_ip_src", peer)
	d.AppendInt("port_src", port)
	d.AppendString("stamp_inserted", "2024-01-01 10:05:00")
	d.AppendInt("packets", packets)
	d.AppendInt("bytes", packets*100)
	return &d
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The files of a purge: a file per time bin and exporter, csv with pmacct's
// header and no quotes, markers, rewritten or appended to at each purge.
func TestPurgeFiles(t *testing.T) {
	bin := time.Date(2024, 1, 1, 10, 5, 0, 0, time.UTC)
	for _, appendTo := range []bool{false, true} {
		dir := t.TempDir()
		cfg := DefaultConfiguration()
		cfg.Path = filepath.Join(dir, "%Y%m%d-%H%M", "$peer_src_ip-$tag.csv")
		cfg.Format, cfg.Separator, cfg.Markers, cfg.UTC, cfg.Name = "csv", ";", true, true, "p"
		cfg.Append = &appendTo
		cfg.LatestFile = filepath.Join(dir, "latest")
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		s := New(cfg)
		ctx := context.Background()
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for purge := 1; purge <= 2; purge++ {
			for _, d := range []*document.Document{purgeDoc("192.0.2.1", 1, 1000, int64(purge)), purgeDoc("2001:db8::1", 2, 1001, 5), purgeDoc("192.0.2.1", 1, 1002, 7)} {
				if err := s.WriteAt(ctx, d, "", bin); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		pid := "(" + strconv.Itoa(os.Getpid()) + ")"
		block := func(purge string) string {
			return "--START " + pid + "--\n" + "TAG;LABEL;PEER_SRC_IP;SRC_PORT;PACKETS;BYTES\n" +
				"1;a;b;192.0.2.1;1000;" + purge + ";" + purge + "00\n1;a;b;192.0.2.1;1002;7;700\n--END " + pid + "--\n"
		}
		want := block("2")
		if appendTo {
			want = block("1") + strings.Replace(block("2"), "TAG;LABEL;PEER_SRC_IP;SRC_PORT;PACKETS;BYTES\n", "", 1) // the header when the file is new only
		}
		if got := read(t, filepath.Join(dir, "20240101-1005", "192_0_2_1-1.csv")); got != want {
			t.Errorf("append %v:\n got %q\nwant %q", appendTo, got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "20240101-1005", "2001_db8__1-2.csv")); err != nil {
			t.Error(err)
		}
		if target, err := os.Readlink(cfg.LatestFile); err != nil || target != filepath.Join(dir, "20240101-1005", "2001_db8__1-2.csv") {
			t.Errorf("latest -> %q (%v)", target, err)
		}
	}
}

// JSON markers as pmacct's: purge_init, purge_close with the entries
// written so far in the purge, over its files.
func TestPurgeJSONMarkers(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfiguration()
	cfg.Path, cfg.Markers, cfg.Name = filepath.Join(dir, "$tag.json"), true, "p"
	s := New(cfg)
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*document.Document{purgeDoc("192.0.2.1", 1, 1, 1), purgeDoc("192.0.2.1", 2, 2, 1), purgeDoc("192.0.2.1", 1, 3, 1)} {
		if err := s.Write(ctx, d, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	w := `"writer_id": "p/` + strconv.Itoa(os.Getpid()) + `"`
	for file, close := range map[string]string{"1.json": `"purged_entries": 2, "total_entries": 3`, "2.json": `"purged_entries": 3, "total_entries": 3`} {
		lines := strings.Split(strings.TrimSpace(read(t, filepath.Join(dir, file))), "\n")
		if lines[0] != `{"event_type": "purge_init", `+w+`}` || !strings.HasPrefix(lines[len(lines)-1], `{"event_type": "purge_close", `+w+`, `+close+`, "duration": `) {
			t.Errorf("%s:\n%s", file, strings.Join(lines, "\n"))
		}
	}
}

// The trigger runs after each purge that wrote something, when its files
// are complete, without arguments.
func TestTrigger(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	script := filepath.Join(dir, "trigger.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$# $(wc -l < "+out+")\" >> "+filepath.Join(dir, "ran")+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfiguration()
	cfg.Path, cfg.TriggerExec = out, script
	s := New(cfg)
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Write(ctx, purgeDoc("192.0.2.1", 1, 1, 1), ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(ctx); err != nil { // an empty purge: no trigger
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(readOr(filepath.Join(dir, "ran")), "\n") < int(s.triggers) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readOr(filepath.Join(dir, "ran")); got != "0 1\n0 2\n" {
		t.Errorf("trigger runs (arguments, lines in the file): %q", got)
	}
}

func readOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func TestPurgeConfigErrors(t *testing.T) {
	no := false
	for _, tt := range []struct {
		cfg  Configuration
		want string
	}{
		{Configuration{Path: "x-%y.csv"}, `file: x-%y.csv: %y: pmacct's print_output_file takes %d %H %m %M %w %W %Y %s %S %z only`},
		{Configuration{Path: "x-$post_tag.csv"}, `file: x-$post_tag.csv: $post_tag: expected $peer_src_ip, $tag or $tag2 (pmacct's $post_tag, $post_tag2, $ref, $hst and $tzone are not supported yet)`},
		{Configuration{Path: "x.csv", Format: "xml"}, `format: "xml": expected json, csv or formatted`},
		{Configuration{Path: "x.csv", Format: "csv", Separator: "ab"}, `separator: "ab": expected one character, or \t or \s`},
		{Configuration{Path: "-", Append: &no}, `append: standard output is appended to (expected a file to rewrite)`},
		{Configuration{Path: "x-%H.csv", LatestFile: "l-%H"}, `latest_file: l-%H: a fixed name (pmacct refuses time codes; flowdex variables too)`},
	} {
		tt.cfg.FlushInterval.Duration = time.Second
		if err := tt.cfg.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("%+v: %v\nwant %s", tt.cfg, err, tt.want)
		}
	}
}
