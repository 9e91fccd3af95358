package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/flowdex/flowdex/bench/gen"
)

type result struct {
	sc     scenario
	totals gen.Totals
	tools  []measured
}

// stat is the median, minimum and maximum of a measure over the runs.
type stat struct{ med, lo, hi float64 }

func stats(xs []float64) stat {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return stat{}
	}
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{m, s[0], s[len(s)-1]}
}

func (m measured) of(f func(usage) float64) stat {
	var xs []float64
	for _, u := range m.runs {
		xs = append(xs, f(u))
	}
	return stats(xs)
}

func writeResults(path string, results []result, mem *memoryResult, ing *ingestResult, live *liveResult, runs int, scale float64) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# flowdex beside its peers\n\n")
	fmt.Fprintf(&b, "Written by `go run ./bench/harness -runs %d -scale %g` on %s. Every tool read the same\n", runs, scale, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("generated input in the same run; every run's packet and byte sums were checked against the\n")
	b.WriteString("input (the goflow2 loop's record count). CPU is user + system time of the whole process tree\n")
	b.WriteString("(pmacct's plugins included); peak RSS is the largest single process's. Throughput is records\n")
	b.WriteString("per CPU-second; the ratio is flowdex's throughput over the peer's (medians). Wall time of\n")
	b.WriteString("the pmacct daemons includes the 2 s they sleep before reading a savefile. pmacct runs with\n")
	b.WriteString("plugin_pipe_size 256 MiB and plugin_buffer_size 1 MiB, as its documentation advises for\n")
	b.WriteString("throughput (with the defaults its core waits on the plugin: 80 s of wall time for 3 s of CPU\n")
	b.WriteString("on the NetFlow input; with a 4 MiB buffer nfacctd 1.7.7 silently lost 41% of the flows), and\n")
	b.WriteString("print_cache_entries 99991 (preallocated: its RSS).\n\n")
	b.WriteString("## Machine\n\n")
	for _, f := range machineFacts() {
		fmt.Fprintf(&b, "- %s\n", f)
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n## %s\n\n%s: %d %s, %d packets, %d bytes. Aggregation: %s.\n\n", r.sc.name, r.sc.what,
			r.totals.Records, r.sc.unit, r.totals.Packets, r.totals.Bytes, strings.Join(aggregate, ", "))
		b.WriteString("| tool | runs | wall s median (min-max) | CPU s median (min-max) | peak RSS MiB | " + r.sc.unit + "/CPU-s | flowdex / tool |\n")
		b.WriteString("|---|---|---|---|---|---|---|\n")
		var fdx float64
		for i, m := range r.tools {
			if m.err != nil && len(m.runs) == 0 {
				fmt.Fprintf(&b, "| %s | 0 | failed: %s | | | | |\n", m.tool, oneLine(m.err.Error()))
				continue
			}
			wall := m.of(func(u usage) float64 { return u.Wall.Seconds() })
			cpu := m.of(func(u usage) float64 { return u.CPU.Seconds() })
			rss := m.of(func(u usage) float64 { return float64(u.MaxRSS) / (1 << 20) })
			tp := m.of(func(u usage) float64 { return float64(r.totals.Records) / u.CPU.Seconds() })
			ratio := ""
			if i == 0 {
				fdx = tp.med
			} else if tp.med > 0 {
				ratio = fmt.Sprintf("%.2fx", fdx/tp.med)
			}
			note := ""
			if m.err != nil {
				note = " (then failed: " + oneLine(m.err.Error()) + ")"
			}
			fmt.Fprintf(&b, "| %s%s | %d | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | %.0f | %.0f (%.0f-%.0f) | %s |\n",
				m.tool, note, len(m.runs), wall.med, wall.lo, wall.hi, cpu.med, cpu.lo, cpu.hi, rss.med, tp.med, tp.lo, tp.hi, ratio)
		}
	}
	if mem != nil {
		fmt.Fprintf(&b, "\n## memory\n\nflowdex replaying a NetFlow v9 export of %d records with distinct 5-tuples (one cache entry each, written out at the end), against one of 1000: (peak RSS difference) / (entries difference).\n\n", mem.entries)
		if mem.err != nil {
			fmt.Fprintf(&b, "failed: %s\n", oneLine(mem.err.Error()))
		} else {
			per := stats(mem.perEntry)
			large := measured{runs: mem.large}.of(func(u usage) float64 { return float64(u.MaxRSS) / (1 << 20) })
			small := measured{runs: mem.small}.of(func(u usage) float64 { return float64(u.MaxRSS) / (1 << 20) })
			fmt.Fprintf(&b, "| runs | peak RSS MiB, %d entries | peak RSS MiB, 1000 entries | bytes per entry median (min-max) |\n|---|---|---|---|\n", mem.entries)
			fmt.Fprintf(&b, "| %d | %.0f (%.0f-%.0f) | %.0f | %.0f (%.0f-%.0f) |\n", len(mem.perEntry), large.med, large.lo, large.hi, small.med, per.med, per.lo, per.hi)
		}
	}
	if ing != nil {
		fmt.Fprintf(&b, "\n## ingest\n\npmacct print-plugin JSON (%d records, 5-tuple and ToS, 5-minute bins) into Elasticsearch 8 at %s, one node, each run into a fresh index (0 replicas), then the document count and the packet and byte sums checked in Elasticsearch. The loaders take turns, one run each per round, after a round that is not counted (Elasticsearch speeds up as it warms). The measure is documents per wall second, from the loader's start to its exit (flowdex's includes reading Elasticsearch's version and installing its index template; the ceiling's index is made before its clock starts). Every index has the mappings of flowdex's template (p2es gets them in its ES_IndexTemplateFileName, the ceiling when it creates its index), so that Elasticsearch does the same work for each. The ceiling posts pre-built _bulk bodies of 5000 documents (create with an _id, and the @timestamp flowdex adds, as flowdex sends them), two at a time. p2es 0.3.2 (the release on PyPI, installed with pip) requires ES_Type and sends typed bulk URLs, which Elasticsearch 8 removed: it runs through a local proxy that rewrites /<index>/<type>/_bulk to /<index>/_bulk.\n\n", ing.totals.Records, ing.url)
		b.WriteString("| loader | runs | wall s median (min-max) | loader CPU s median | Elasticsearch CPU s median | docs/s median (min-max) | flowdex / loader |\n|---|---|---|---|---|---|---|\n")
		var fdx float64
		for i, m := range ing.tools {
			if m.err != nil && len(m.runs) == 0 {
				fmt.Fprintf(&b, "| %s | 0 | failed: %s | | | | |\n", m.tool, oneLine(m.err.Error()))
				continue
			}
			wall := m.of(func(u usage) float64 { return u.Wall.Seconds() })
			dps := m.of(func(u usage) float64 { return float64(ing.totals.Records) / u.Wall.Seconds() })
			ratio := ""
			if i == 0 {
				fdx = dps.med
			} else if dps.med > 0 {
				ratio = fmt.Sprintf("%.2fx", fdx/dps.med)
			}
			cpu := "in-process"
			if c := m.of(func(u usage) float64 { return u.CPU.Seconds() }); c.med > 0 {
				cpu = fmt.Sprintf("%.2f", c.med)
			}
			server := "n/a"
			if c := m.of(func(u usage) float64 { return u.Server.Seconds() }); c.med > 0 {
				server = fmt.Sprintf("%.2f", c.med)
			}
			fmt.Fprintf(&b, "| %s | %d | %.2f (%.2f-%.2f) | %s | %s | %.0f (%.0f-%.0f) | %s |\n", m.tool, len(m.runs), wall.med, wall.lo, wall.hi, cpu, server, dps.med, dps.lo, dps.hi, ratio)
		}
	}
	if live != nil {
		fmt.Fprintf(&b, "\n## live UDP\n\nA NetFlow v9 export of %d flows (25 per datagram, 50k 5-tuples) sent over UDP to 127.0.0.1 at rising rates (%s flows/s), each for at least 5 s (the export is sent again as many times as that takes); a rate counts when the collector's output holds every packet and byte sent; the rate reported is the lower of the target and what the sender (one goroutine, one datagram per write) reached. flowdex indexes into Elasticsearch at the same time (refresh 1 s) and writes the print output the sums are read from; both have a 64 MiB receive buffer. One search per run.\n\n",
			live.totals.Records, rateList())
		b.WriteString("| collector | searches | highest zero-loss rate, flows/s: median (min-max) | flowdex / collector |\n|---|---|---|---|\n")
		var fdx float64
		for i, t := range live.tools {
			if t.err != nil && len(t.best) == 0 {
				fmt.Fprintf(&b, "| %s | 0 | failed: %s | |\n", t.name, oneLine(t.err.Error()))
				continue
			}
			st := stats(t.best)
			ratio := ""
			if i == 0 {
				fdx = st.med
			} else if st.med > 0 {
				ratio = fmt.Sprintf("%.2fx", fdx/st.med)
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f (%.0f-%.0f) | %s |\n", t.name, len(t.best), st.med, st.lo, st.hi, ratio)
		}
		b.WriteString("\nTrials:\n\n")
		for _, t := range live.tools {
			for _, l := range t.trials {
				fmt.Fprintf(&b, "- %s, %s\n", t.name, l)
			}
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func rateList() string {
	var s []string
	for _, r := range liveRates {
		s = append(s, fmt.Sprintf("%.0fk", r/1000))
	}
	return strings.Join(s, ", ")
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "/")
}

func machineFacts() []string {
	facts := []string{fmt.Sprintf("%s/%s, %d CPUs (GOMAXPROCS %d)", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				facts = append(facts, "CPU: "+strings.TrimSpace(strings.SplitN(l, ":", 2)[1]))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		facts = append(facts, "memory: "+strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:], " "))
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		facts = append(facts, "kernel: "+strings.TrimSpace(string(out)))
	}
	facts = append(facts, "Go: "+runtime.Version())
	if out, err := exec.Command("nfacctd", "-V").CombinedOutput(); err == nil {
		facts = append(facts, "pmacct: "+strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if strings.HasPrefix(d.Path, "github.com/netsampler/goflow2") {
				facts = append(facts, "goflow2: "+d.Path+" "+d.Version)
			}
		}
	}
	return facts
}
