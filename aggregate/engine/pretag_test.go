package engine

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/cache"
	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/netflow"
)

// A flow input tags each record by its pre_tag_map before its pipelines;
// a reload (SIGHUP) takes a new map, and one that does not load leaves the
// map in use, saying why.
func TestPretagReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pretag.map")
	write := func(m string) {
		if err := os.WriteFile(path, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("set_tag=1\n")
	var logs bytes.Buffer
	in := &config.NetFlowInput{InputCommon: config.InputCommon{Name: "nf", Type: "netflow"},
		Configuration: netflow.DefaultConfiguration(), Flows: config.Flows{PreTagMap: path}}
	fi, err := newFlowInput(in, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tag := func() uint64 {
		r := &flow.Record{}
		fi.emit(r, &cache.Scratch{})
		return r.Tag
	}
	if got := tag(); got != 1 {
		t.Fatalf("tag %d, want 1", got)
	}
	write("set_tag=2 bogus=1\n")
	fi.reloadPretag()
	if got := tag(); got != 1 {
		t.Errorf("after a failed reload: tag %d, want 1 (the map in use)", got)
	}
	if !strings.Contains(logs.String(), "pre_tag_map reload failed") || !strings.Contains(logs.String(), `pretag.map:1:11: unknown key \"bogus\"`) {
		t.Errorf("log:\n%s", logs.String())
	}
	write("set_tag=2\n")
	fi.reloadPretag()
	if got := tag(); got != 2 {
		t.Errorf("after a reload: tag %d, want 2", got)
	}
	// at start, a map that does not load is the input's error
	write("set_tag=x\n")
	if _, err := newFlowInput(in, nil, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), `pre_tag_map: `+path+`:1:9: set_tag="x": expected a number`) {
		t.Errorf("start with a bad map: %v", err)
	}
}
