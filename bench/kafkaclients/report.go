package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// report gathers the counted runs and writes KAFKA-CLIENTS.md.
type report struct {
	o                  options
	start, end         time.Time
	loadStart, loadEnd float64
	kafka              string
	keyMean, valueMean float64
	runs               map[runKey][]result
}

type runKey struct{ codec, phase, client string }

func newReport(o options, values [][]byte) *report {
	e := expect(o.records, values)
	return &report{o: o, start: time.Now(), loadStart: loadAverage(), runs: map[runKey][]result{},
		keyMean: float64(e.keyBytes) / float64(o.records), valueMean: float64(e.valueBytes) / float64(o.records)}
}

// add keeps a counted run; round 0 warms up the broker and the page cache.
func (rep *report) add(codec, phase, client string, round int, r result) {
	if round > 0 {
		k := runKey{codec, phase, client}
		rep.runs[k] = append(rep.runs[k], r)
	}
}

// stat is a median with its range.
type stat struct{ med, lo, hi float64 }

func statOf(rs []result, f func(result) float64) stat {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return stat{}
	}
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med, v[0], v[len(v)-1]}
}

func (s stat) format(f string) string {
	return fmt.Sprintf(f+" ("+f+"-"+f+")", s.med, s.lo, s.hi)
}

// spread is the range over the median, in percent: the noise of a measure.
func (s stat) spread() float64 { return 100 * (s.hi - s.lo) / s.med }

func rate(r result) float64       { return float64(r.Records) / r.Wall.Seconds() }
func cpuPerM(r result) float64    { return r.CPU.Seconds() * 1e6 / float64(r.Records) }
func procPerM(r result) float64   { return r.ProcessCPU.Seconds() * 1e6 / float64(r.Records) }
func brokerPerM(r result) float64 { return r.BrokerCPU.Seconds() * 1e6 / float64(r.Records) }
func allocs(r result) float64     { return float64(r.Mallocs) / float64(r.Records) }
func allocB(r result) float64     { return float64(r.AllocBytes) / float64(r.Records) }
func rss(r result) float64        { return float64(r.MaxRSS) / (1 << 20) }
func commits(r result) float64    { return float64(r.Commits) }
func load(r result) float64       { return r.Load }
func join(r result) float64       { return r.Join.Seconds() }
func leave(r result) float64      { return r.Leave.Seconds() }

func (rep *report) markdown() []byte {
	var b bytes.Buffer
	o := rep.o
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Go Kafka clients for flowdex's two Kafka hops\n\n")
	p("Written by `go -C bench/kafkaclients run . -brokers %s -records %d -runs %d -compression %s%s` on %s "+
		"(%.0f min). See bench/kafkaclients/README.md for the method; every number below comes from this run.\n\n",
		strings.Join(o.brokers, ","), o.records, o.runs, strings.Join(o.codecs, ","), pidFlag(o.brokerPID),
		rep.start.UTC().Format("2006-01-02 15:04 UTC"), rep.end.Sub(rep.start).Minutes())
	p("Each round, after one warm-up round per compression that is not counted, every client in turn (the order rotates "+
		"each round) produces %d records into a fresh topic of %d partitions, then every client consumes the topic "+
		"the first client (%s) produced in that round, each in a consumer group of its own. Each phase runs in a child "+
		"process of its own: the CPU time and allocations are that process's from the first record sent (received) to "+
		"the last acknowledged (committed); connection, group join and close are outside (they are in \"process CPU\"). "+
		"Every run is checked: the topic's end offsets are exactly the records sent, per partition; the consumer saw "+
		"each partition's offsets in order, none twice or skipped, with the same key and value bytes as sent, and the "+
		"group's committed offsets are the end offsets.\n\n", o.records, partitions, o.clients[0])
	p("Messages: the %d lines of %s (pmacct print-plugin JSON, one record a line, %.0f B on average) in turn, keyed by "+
		"8 exporters' addresses (%.1f B), two exporters per partition: every client sends the same bytes to the same partition "+
		"(a fixed key-to-partition map, because the clients' default key hashes differ).\n\n",
		lineCount(o.lines), o.lines, rep.valueMean, rep.keyMean)

	p("## Machine\n\n")
	p("- %s/%s, %d CPUs (GOMAXPROCS %d), shared with other work: 1-minute load %.2f at the start, %.2f at the end, "+
		"%s when the phases started\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		rep.loadStart, rep.loadEnd, rep.loadRange())
	p("- CPU: %s\n", firstLine("/proc/cpuinfo", "model name"))
	p("- memory: %s\n", firstLine("/proc/meminfo", "MemTotal"))
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	p("- kernel: %s\n", strings.TrimSpace(string(kernel)))
	p("- Go: %s\n", runtime.Version())
	p("- broker: one Apache Kafka node (%s from its ApiVersions) on the same machine: replication factor 1, so "+
		"acks from all in-sync replicas is the leader's ack here\n\n", rep.kafka)

	p("## Clients\n\n")
	p("| client | version measured | newest in the Go proxy (%s) | its go.mod | releases in the last year |\n|---|---|---|---|---|\n",
		observed)
	for _, c := range o.clients {
		f := facts[c]
		p("| %s | %s | %s | %s | %s |\n", c, moduleVersion(f.module), f.newest, f.goVersion, f.releases)
	}
	p("\n### Settings\n\n")
	p("For every client: acks from all in-sync replicas, at most %d records produced and not yet acknowledged "+
		"(flowdex's `max_buffered_records`), the run's compression, the consumers start at the earliest offset and commit "+
		"synchronously after each batch of at most %d records (flowdex's `max_poll_records`). Batching: each client's "+
		"defaults where they already make full batches under load (franz-go, sarama); kafka-go's are raised, see below.\n\n",
		o.inflight, o.pollRecords)
	for _, c := range o.clients {
		p("- **%s**: %s\n", c, facts[c].settings)
	}

	for _, codec := range o.codecs {
		p("\n## Compression: %s\n\n", codec)
		p("### Produce (kafka output: acks all, idempotent where the client can)\n\n")
		p("| client | runs | records/s median (min-max) | / franz-go | CPU s per 1M records | / franz-go | allocs per record | B allocated per record | process CPU s per 1M | peak RSS MiB | broker CPU s per 1M |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|\n")
		rep.rows(&b, codec, "produce", false)
		p("\n### Consume (kafka input: consumer group, manual commits after each batch)\n\n")
		p("| client | runs | records/s median (min-max) | / franz-go | CPU s per 1M records | / franz-go | allocs per record | B allocated per record | process CPU s per 1M | peak RSS MiB | broker CPU s per 1M | commits | join s | leave s |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		rep.rows(&b, codec, "consume", true)
	}

	p("\n## Noise\n\n")
	p("The range of each median above over the median, in percent (records/s; CPU s per 1M records):\n\n")
	p("| compression | phase | %s |\n|---|---|%s\n", strings.Join(o.clients, " | "), strings.Repeat("---|", len(o.clients)))
	for _, codec := range o.codecs {
		for _, phase := range []string{"produce", "consume"} {
			p("| %s | %s |", codec, phase)
			for _, c := range o.clients {
				rs := rep.runs[runKey{codec, phase, c}]
				p(" %.0f%%; %.0f%% |", statOf(rs, rate).spread(), statOf(rs, cpuPerM).spread())
			}
			p("\n")
		}
	}

	p("\n## Seen while building this bench (%s, single trials, not part of the runs above)\n\n", observed)
	for _, c := range o.clients {
		p("- **%s**: %s\n", c, facts[c].notes)
	}

	p("\n## What each client could not do, and what flowdex relies on\n\n")
	p("| | %s |\n|---|%s\n", strings.Join(o.clients, " | "), strings.Repeat("---|", len(o.clients)))
	for i, f := range featureNames {
		p("| %s |", f)
		for _, c := range o.clients {
			p(" %s |", facts[c].features[i])
		}
		p("\n")
	}
	return b.Bytes()
}

// rows writes one table's rows, with the ratios to franz-go's medians.
func (rep *report) rows(b *bytes.Buffer, codec, phase string, withCommits bool) {
	base := rep.runs[runKey{codec, phase, "franz-go"}]
	baseRate, baseCPU := statOf(base, rate).med, statOf(base, cpuPerM).med
	for _, c := range rep.o.clients {
		rs := rep.runs[runKey{codec, phase, c}]
		rt, cpu := statOf(rs, rate), statOf(rs, cpuPerM)
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %.1f | %.0f | %.2f | %.0f | %s |", c, len(rs), rt.format("%.0f"),
			ratio(rt.med, baseRate), cpu.format("%.2f"), ratio(cpu.med, baseCPU), statOf(rs, allocs).med,
			statOf(rs, allocB).med, statOf(rs, procPerM).med, statOf(rs, rss).hi, rep.brokerCPU(rs))
		if withCommits {
			fmt.Fprintf(b, " %.0f | %.2f | %.2f |", statOf(rs, commits).med, statOf(rs, join).med, statOf(rs, leave).med)
		}
		b.WriteString("\n")
	}
}

func ratio(v, base float64) string {
	if base == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", v/base)
}

func (rep *report) brokerCPU(rs []result) string {
	if rep.o.brokerPID == 0 {
		return "-"
	}
	return statOf(rs, brokerPerM).format("%.2f")
}

func (rep *report) loadRange() string {
	var all []result
	for _, rs := range rep.runs {
		all = append(all, rs...)
	}
	return statOf(all, load).format("%.2f")
}

func pidFlag(pid int) string {
	if pid == 0 {
		return ""
	}
	return " -broker-pid PID"
}

func lineCount(path string) int {
	v, _ := readLines(path)
	return len(v)
}

// moduleVersion is the version of module path built into this binary.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "?"
}

// What the Go proxy served and the clients' sources said on the day below;
// the features are those of the versions in go.mod.
const observed = "2026-12-07"

var featureNames = []string{
	"idempotent producer",
	"cooperative-sticky rebalancing",
	"manual commits, with hooks on assignment and revocation",
	"SASL SCRAM",
	"context cancellation",
}

type clientFacts struct {
	module, newest, goVersion, releases, settings string
	features                                      []string
	notes                                         string // seen while building this bench
}

var facts = map[string]clientFacts{
	"franz-go": {
		module:    "github.com/twmb/franz-go",
		newest:    "v1.22.3 (2026-11-09)",
		goVersion: "go 1.26.0",
		releases:  "v1.20 to v1.22.3, the last six from 2026-08-12 to 2026-11-09",
		settings: "kgo's defaults (acks all and idempotence are its defaults; linger 10 ms; batches up to 1 MB; " +
			"consumer: cooperative-sticky, fetches up to 1 MiB per partition), with flowdex's options: MaxBufferedRecords, " +
			"DisableAutoCommit, BlockRebalanceOnPoll, PollRecords and CommitRecords after each poll, as collector/kafka. " +
			"Compression set to the run's (kgo's default is snappy, which flowdex uses). Records reused through a " +
			"sync.Pool, as sink/kafka does.",
		features: []string{
			"yes, on by default",
			"yes, the default",
			"yes: DisableAutoCommit, CommitRecords, BlockRebalanceOnPoll, OnPartitionsAssigned/Revoked/Lost",
			"yes (pkg/sasl/scram, built in)",
			"yes, every blocking call takes a context",
		},
		notes: "nothing to work around: the settings above are flowdex's own.",
	},
	"sarama": {
		module:    "github.com/IBM/sarama",
		newest:    "v1.62.0 (2026-11-20)",
		goVersion: "go 1.26.0",
		releases:  "v1.60.0 to v1.62.0, six from 2026-07-13 to 2026-11-20",
		settings: "Config.Version = sarama.MaxVersion (4.3.1: sarama does not negotiate a protocol version), " +
			"Producer.RequiredAcks = WaitForAll, Producer.Idempotent = true, which requires Net.MaxOpenRequests = 1 " +
			"(one produce request in flight per broker; its default is 5), AsyncProducer with Return.Successes, " +
			"ManualPartitioner, messages reused through a sync.Pool; batching defaults (no linger: a batch goes when the " +
			"previous request is answered, up to 1 MB). Consumer: ConsumerGroup with the Range strategy (its default), " +
			"Offsets.Initial = OffsetOldest, AutoCommit off; each claim (partition) goroutine takes what its channel " +
			"(256 messages, the default) holds, then MarkMessage and a synchronous Commit.",
		features: []string{
			"yes, off by default; it needs Net.MaxOpenRequests = 1",
			"yes, new in v1.62.0 (2026-11-20; eager Range is the default)",
			"yes: AutoCommit off, MarkMessage + Commit (its errors go to a channel, Commit returns none); Setup/Cleanup per session, a revoked claim's channel closes (cooperative); no hold on a rebalance between a batch and its commit",
			"yes, but the SCRAM client is the application's to provide (SCRAMClientGeneratorFunc, usually github.com/xdg-go/scram)",
			"consumer group only (Consume(ctx)); the producers take none (channels, Close)",
		},
		notes: "committing after each claim's batch (what its channel holds, at most 256 messages) made some 4000 " +
			"synchronous commits per 1M records and read 110,594 records/s where a commit per 10,000 records read " +
			"363,180 (same machine, minutes apart): the consumer here marks each batch and commits per 10,000. " +
			"Idempotence allows one produce request in flight per broker (Net.MaxOpenRequests = 1).",
	},
	"kafka-go": {
		module:    "github.com/segmentio/kafka-go",
		newest:    "v0.4.51 (2026-04-23)",
		goVersion: "go 1.23",
		releases:  "v0.4.50 (2026-01-15), v0.4.51 (2026-04-23); none since; still v0; its README says it is tested with Kafka 0.10.1 to 2.7.1",
		settings: "Writer with RequiredAcks = RequireAll, Async with a Completion callback, BatchSize raised from 100 to " +
			"10000 (so that its 1 MiB BatchBytes default bounds a batch, as the others' 1 MB) and BatchTimeout lowered " +
			"from 1 s to 10 ms (franz-go's linger: with 1 s every partition's last partial batch waits a second), a " +
			"BalancerFunc for the fixed partitions. No idempotence: kafka-go has none. Reader with GroupID, StartOffset " +
			"FirstOffset, CommitInterval 0 (synchronous commits), other defaults (queue 100 messages, fetches up to 1 MB); " +
			"FetchMessage one message at a time, CommitMessages of each partition's last every 10000 records (it has no " +
			"poll of what is buffered, so it commits less often than the others here).",
		features: []string{
			"no: the Writer has no producer id; a retried batch (MaxAttempts 10) can be written twice",
			"no: Range, RoundRobin, RackAffinity, all eager",
			"commits yes (CommitMessages, CommitInterval 0); the Reader has no assignment or revocation hook; the lower-level ConsumerGroup/Generation API gives a context that ends with the generation",
			"yes (sasl/scram, with github.com/xdg-go/scram)",
			"yes: WriteMessages, FetchMessage, CommitMessages take a context",
		},
		notes: "WriteMessages failed at once with UNKNOWN_TOPIC_OR_PARTITION on a topic created a moment before " +
			"(its metadata lookup is not retried; franz-go and sarama wait for the topic): the bench now waits for the " +
			"topic's leaders before any client starts. Reader.Close waits for the fetch in flight, which the broker holds " +
			"up to MaxWait (10 s by default): the \"leave s\" column; with MaxWait 1 s it took 0.75 s in a trial. For " +
			"flowdex's indexer that is a stop (SIGTERM) up to MaxWait longer.",
	},
}
