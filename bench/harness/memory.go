package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/flowdex/flowdex/bench/gen"
)

// memoryResult is flowdex's resident memory per aggregate entry: the peak RSS
// of a replay holding `entries` distinct 5-tuples in its cache, less that of
// one holding 1000, over the difference in entries.
type memoryResult struct {
	entries      int
	small, large []usage
	perEntry     []float64 // bytes, one per run
	err          error
}

func measureMemory(bin, dir string, runs, entries int) (memoryResult, error) {
	m := memoryResult{entries: entries}
	os.MkdirAll(dir, 0o755)
	input := func(name string, n int) (string, gen.Totals, error) {
		return write(dir, name, func(f *os.File) (gen.Totals, error) {
			return gen.WriteNetFlow(f, gen.NetFlow{Version: 9, Records: n, PerDatagram: 25, TemplateEvery: 20, Seed: 4, Distinct: true})
		})
	}
	small, smallTotals, err := input("small.pcap", 1000)
	if err != nil {
		return m, err
	}
	large, largeTotals, err := input(fmt.Sprintf("large-%d.pcap", entries), entries)
	if err != nil {
		return m, err
	}
	t := flowdexTool(bin, "netflow")
	for i := range runs {
		us, err := runTool(dir, small, t, smallTotals)
		if err != nil {
			m.err = err
			return m, err
		}
		ul, err := runTool(dir, large, t, largeTotals)
		if err != nil {
			m.err = err
			return m, err
		}
		got, err := sumFile(filepath.Join(dir, "flowdex.json"))
		if err == nil && got.Records != int64(entries) {
			err = fmt.Errorf("%d aggregates written, want %d distinct", got.Records, entries)
		}
		if err != nil {
			m.err = err
			return m, err
		}
		m.small, m.large = append(m.small, us), append(m.large, ul)
		per := float64(ul.MaxRSS-us.MaxRSS) / float64(entries-1000)
		m.perEntry = append(m.perEntry, per)
		log.Printf("memory run %d: %d entries: peak RSS %d MiB (1000: %d MiB): %.0f bytes/entry", i+1, entries, ul.MaxRSS>>20, us.MaxRSS>>20, per)
	}
	return m, nil
}
