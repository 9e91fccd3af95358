package netflow

import (
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// TestPersistence decodes the first datagram of nfprobe's exports (templates
// and sampler options), saves, starts a new decoder on the file and decodes
// the following datagrams, which carry data only: they must give the same
// records as a decoder that never stopped, sampling rate included.
func TestPersistence(t *testing.T) {
	for _, capture := range []string{"testdata/nfprobe-v9.pcap", "testdata/nfprobe-ipfix.pcap"} {
		t.Run(filepath.Base(capture), func(t *testing.T) {
			dgs := readPcap(t, capture)
			path := filepath.Join(t.TempDir(), "templates.json")
			cfg := Configuration{TemplatesFile: path}

			continuous := mustNew(t, DefaultConfiguration())
			want, errs := decodeAll(continuous, dgs)
			if len(errs) > 0 {
				t.Fatal(errs)
			}

			first := mustNew(t, cfg)
			got, _ := decodeAll(first, dgs[:1])
			if err := first.Save(); err != nil {
				t.Fatal(err)
			}
			// Without the file, the later datagrams decode to nothing.
			if recs, _ := decodeAll(mustNew(t, DefaultConfiguration()), dgs[1:]); len(recs) != 0 {
				t.Fatalf("%d records without templates: the test needs data-only datagrams", len(recs))
			}

			second := mustNew(t, cfg)
			if s := second.Stats(); s.TemplatesLoaded == 0 {
				t.Fatalf("nothing loaded: %+v", s)
			}
			later, errs := decodeAll(second, dgs[1:])
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			got = append(got, later...)
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("record %d differs:\n%s", i, diff(got[i], want[i]))
				}
				if got[i].SamplingRate != 4 {
					t.Errorf("record %d: sampling rate %d", i, got[i].SamplingRate)
				}
			}
			if s := second.Stats(); s.NoTemplate[dgs[0].exporter] != 0 {
				t.Errorf("data without template after reload: %+v", s)
			}

			// Saving again gives the same file, and leaves no temporary file.
			before, _ := os.ReadFile(path)
			if err := second.Save(); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Errorf("file changed by a load/save round trip:\n%s\n%s", before, after)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("%d files in the directory, want 1", len(entries))
			}
			var f fileFormat
			if err := json.Unmarshal(after, &f); err != nil || len(f.Templates) == 0 || len(f.Samplers) == 0 {
				t.Errorf("file: %v, %d templates, %d samplers", err, len(f.Templates), len(f.Samplers))
			}
		})
	}
}

// TestPersistenceFiles covers a missing file, no file configured and broken
// files.
func TestPersistenceFiles(t *testing.T) {
	dir := t.TempDir()
	d := mustNew(t, Configuration{TemplatesFile: filepath.Join(dir, "missing.json")})
	if s := d.Stats(); s.TemplatesLoaded != 0 {
		t.Errorf("loaded %d from a missing file", s.TemplatesLoaded)
	}
	if err := mustNew(t, DefaultConfiguration()).Save(); err != nil {
		t.Errorf("Save without a file: %v", err)
	}
	for name, content := range map[string]string{
		"not json":       "{",
		"wrong format":   `{"format": 99, "templates": []}`,
		"zero template":  `{"format": 1, "templates": [{"exporter": "192.0.2.1", "version": 9, "id": 300, "fields": []}]}`,
		"low id":         `{"format": 1, "templates": [{"exporter": "192.0.2.1", "version": 9, "id": 3, "fields": [{"type": 8, "length": 4}]}]}`,
		"no exporter":    `{"format": 1, "templates": [{"version": 9, "id": 300, "fields": [{"type": 8, "length": 4}]}]}`,
		"bad version":    `{"format": 1, "templates": [{"exporter": "192.0.2.1", "version": 5, "id": 300, "fields": [{"type": 8, "length": 4}]}]}`,
		"bad exporter":   `{"format": 1, "templates": [{"exporter": "nowhere", "version": 9, "id": 300, "fields": []}]}`,
		"sampler no exp": `{"format": 1, "templates": [], "samplers": [{"id": 1, "rate": 4}]}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Configuration{TemplatesFile: path}, nil); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
	// A directory that cannot hold the file.
	bad := mustNew(t, Configuration{TemplatesFile: filepath.Join(dir, "no", "such", "dir.json")})
	if err := bad.Save(); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

// TestConcurrentDecode decodes captures from several goroutines at once,
// for the race detector, and checks the totals.
func TestConcurrentDecode(t *testing.T) {
	var dgs []datagram
	for _, p := range []string{"testdata/nfprobe-v9.pcap", "testdata/nfprobe-ipfix.pcap",
		"testdata/softflowd-v9.pcap", "testdata/softflowd-v5.pcap"} {
		dgs = append(dgs, readPcap(t, p)...)
	}
	single := mustNew(t, DefaultConfiguration())
	want, _ := decodeAll(single, dgs)

	d := mustNew(t, DefaultConfiguration())
	const workers = 4
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range 20 {
				for _, dg := range dgs {
					d.Decode(dg.payload, dg.exporter, dg.received, func(*flow.Record) {})
				}
				_ = d.Stats()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := d.write(io.Discard); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if got := d.Stats().Records; got != uint64(workers*20*len(want)) {
		t.Errorf("%d records, want %d", got, workers*20*len(want))
	}
}

// TestPersistenceBounds: a templates file with more exporters than the
// decoder keeps (written by a build without the bounds, or with larger ones)
// loads up to the bound and counts the rest as over the limit.
func TestPersistenceBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "templates.json")
	fields := []fld{{8, 4, 0}, {1, 4, 0}}
	wide := mustNew(t, Configuration{TemplatesFile: path})
	for i := range 3 {
		src := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
		if err := wide.Decode(ipfix(set(ipfixTemplateSet, tmpl(10, 300, fields...))), src, arrival, func(*flow.Record) {}); err != nil {
			t.Fatal(err)
		}
	}
	if err := wide.Save(); err != nil {
		t.Fatal(err)
	}
	narrow := mustNew(t, Configuration{TemplatesFile: path, MaxExporters: 2})
	if s := narrow.Stats(); s.TemplatesLoaded != 2 || s.TemplatesOverLimit != 1 || s.ExportersOverLimit != 0 {
		t.Errorf("stats %+v: want 2 loaded, 1 over the limit, no datagram counted", s)
	}
}
