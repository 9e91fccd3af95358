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

func writeResults(path string, results []result, mem *memoryResult, ing *ingestResult, live *liveResult, kafka *kafkaResult, bgp *bgpResult, runs int, scale float64, only string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# flowdex beside its peers\n\n")
	if only != "" {
		only = " -only " + only
	}
	fmt.Fprintf(&b, "Written by `go run ./bench/harness -runs %d -scale %g%s` on %s. Every tool read the same\n", runs, scale, only, time.Now().UTC().Format("2006-01-02 15:04 MST"))
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
	if kafka != nil {
		writeKafka(&b, kafka)
	}
	if bgp != nil {
		writeBGP(&b, bgp)
	}
	old, _ := os.ReadFile(path)
	return os.WriteFile(path, []byte(keepSections(b.String(), string(old))), 0o644)
}

// keepSections appends to a partial run's text (-only) the sections of the
// previous results file that it did not measure, each marked with the date
// of the run that did: one file holds every scenario's latest figures.
func keepSections(now, old string) string {
	date := ""
	if _, rest, ok := strings.Cut(old, "`"+" on "); ok {
		date, _, _ = strings.Cut(rest, ".")
	}
	measured := map[string]bool{}
	for _, sec := range strings.Split(now, "\n## ")[1:] {
		title, _, _ := strings.Cut(sec, "\n")
		measured[title] = true
	}
	var b strings.Builder
	b.WriteString(now)
	for _, sec := range strings.Split(old, "\n## ")[1:] {
		title, body, _ := strings.Cut(sec, "\n")
		if measured[title] || title == "Machine" {
			continue
		}
		b.WriteString("\n## " + title + "\n")
		if date != "" && !strings.HasPrefix(body, "\n_Not measured by the run above") {
			fmt.Fprintf(&b, "\n_Not measured by the run above: kept from the run of %s._\n", date)
		}
		b.WriteString(strings.TrimRight(body, "\n") + "\n")
	}
	return b.String()
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

func writeKafka(b *strings.Builder, k *kafkaResult) {
	fmt.Fprintf(b, "\n## kafka\n\nThe scale-out shape of the README on this machine: a NetFlow v9 export of %d records with distinct 5-tuples (one document each), replayed by a collector (flowdex, aggregation as above, kafka output: acks from every in-sync replica, idempotence on) into a topic of %d partitions on one Apache Kafka broker (kafka.sh, heap 1 GiB) at %s, read by an indexer (flowdex, kafka input in a consumer group) into Elasticsearch 8 at %s (one node, a fresh index, 0 replicas); beside the direct path, one flowdex from the same export into Elasticsearch. The indexer joins its group first; the clock runs from the collector's start to the indexer's last document indexed (its /metrics, polled every 100 ms and every 10 ms over the last 3%%: a scrape costs it about a millisecond of CPU); the direct path's from its start to its exit. The index then holds the export's document count and sums, for both. Rounds as in ingest, after one not counted; the two paths take turns at going first. CPU is per document: both flowdex processes, the broker, the Elasticsearch node.\n\n",
		k.totals.Records, kafkaPartitions, k.brokers, k.esURL)
	if k.err != nil {
		fmt.Fprintf(b, "Stopped: %s\n\n", oneLine(k.err.Error()))
	}
	if len(k.direct) == 0 {
		return
	}
	perDoc := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(k.totals.Records) }
	b.WriteString("| path | runs | docs/s median (min-max) | wall s median | flowdex CPU µs/doc | broker CPU µs/doc | Elasticsearch CPU µs/doc | docs/s, this path / direct |\n|---|---|---|---|---|---|---|---|\n")
	dps := func(r pathRun) float64 { return perSecond(k.totals.Records, r.wall) }
	direct := stats(mapRuns(k.direct, dps)).med
	via := stats(mapRuns(k.via, dps)).med
	for i, p := range []struct {
		name string
		runs []pathRun
	}{{"direct: flowdex -> Elasticsearch", k.direct}, {"collector -> Kafka -> indexer -> Elasticsearch", k.via}} {
		of := func(f func(pathRun) float64) stat { return stats(mapRuns(p.runs, f)) }
		rate := of(dps)
		ratio, broker := "", "-"
		if i > 0 {
			ratio = fmt.Sprintf("%.0f%%", 100*rate.med/direct)
			broker = fmt.Sprintf("%.2f", of(func(r pathRun) float64 { return perDoc(r.broker) }).med)
		}
		fmt.Fprintf(b, "| %s | %d | %.0f (%.0f-%.0f) | %.2f | %.2f | %s | %.2f | %s |\n", p.name, len(p.runs), rate.med, rate.lo, rate.hi,
			of(func(r pathRun) float64 { return r.wall.Seconds() }).med, of(func(r pathRun) float64 { return perDoc(r.flowdex) }).med,
			broker, of(func(r pathRun) float64 { return perDoc(r.es) }).med, ratio)
	}
	collectorWall := stats(mapRuns(k.via, func(r pathRun) float64 { return r.collectorWall.Seconds() }))
	fmt.Fprintf(b, "\nThrough Kafka, the collector had every record acknowledged %.2f s (median) after its start; the rest of the wall time is the indexer catching up.\n\n", collectorWall.med)
	b.WriteString("Each Kafka hop beside Kafka's own perf tool, on the same broker, the same messages (the collector's), in the same round:\n\n")
	b.WriteString("| hop | flowdex, median (min-max) | Kafka's tool, median (min-max) | flowdex / tool |\n|---|---|---|---|\n")
	alone := stats(mapRuns(k.collector, func(u usage) float64 { return perSecond(k.totals.Records, u.Wall) }))
	prod := stats(k.producer)
	fmt.Fprintf(b, "| produce, records/s: the collector alone (start to exit: replaying the export, aggregating, every record acknowledged) vs kafka-producer-perf-test (acks=all, idempotence on, payloads drawn from the collector's messages) | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.0f%% |\n",
		alone.med, alone.lo, alone.hi, prod.med, prod.lo, prod.hi, 100*alone.med/prod.med)
	in := stats(mapRuns(k.input, func(r inputRun) float64 { return r.rate }))
	cons := stats(k.consumer)
	fmt.Fprintf(b, "| consume, messages/s after the group join: the kafka input into the print output (flowdex's own cost: reading pmacct JSON, the pipeline, writing, committing) vs kafka-consumer-perf-test's fetch rate | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.0f%% |\n",
		in.med, in.lo, in.hi, cons.med, cons.lo, cons.hi, 100*in.med/cons.med)
	inCPU := stats(mapRuns(k.input, func(r inputRun) float64 { return perDoc(r.cpu) }))
	aloneCPU := stats(mapRuns(k.collector, func(u usage) float64 { return perDoc(u.CPU) }))
	fmt.Fprintf(b, "\nflowdex CPU per record: the collector alone %.2f µs, the kafka input into the print output %.2f µs (medians).\n", aloneCPU.med, inCPU.med)
	fmt.Fprintf(b, "\nThe issue's targets: the kafka input at >= 80%% of kafka-consumer-perf-test (%s: %.0f%%); through Kafka at >= 85%% of the direct path's documents per second (%s: %.0f%%).\n",
		met(in.med/cons.med >= 0.80), 100*in.med/cons.med, met(via/direct >= 0.85), 100*via/direct)
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func mapRuns[T any](runs []T, f func(T) float64) []float64 {
	xs := make([]float64, 0, len(runs))
	for _, r := range runs {
		xs = append(xs, f(r))
	}
	return xs
}
