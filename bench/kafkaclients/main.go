// Command kafkaclients measures the Go Kafka clients flowdex could use
// (franz-go, sarama, kafka-go) on flowdex's two Kafka hops: the kafka
// output's producer (acks from all in-sync replicas, idempotent where the
// client can) and the kafka input's group consumer (manual commits after
// each batch). It writes bench/KAFKA-CLIENTS.md; see README.md.
//
// The parent process runs every measured phase in a child process of its
// own (this binary with -child), so that each client's CPU time, allocations
// and memory are its own; it creates and deletes the topics with kadm and
// checks the counts on the broker.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitions of every topic; the records of one exporter (key) go to one.
const partitions = 4

// exporters are the keys: 8 exporters, two per partition.
var exporters = func() [][]byte {
	keys := make([][]byte, 8)
	for i := range keys {
		keys[i] = []byte("192.0.2." + strconv.Itoa(i+1))
	}
	return keys
}()

// partitionOf is the partition of an exporter's key, the same for every
// client (their default hashes differ: murmur2, FNV-1a, round robin).
func partitionOf(key []byte) int32 { return int32(key[len(key)-1]-'1') % partitions }

// options are the flags, shared by the parent and its children.
type options struct {
	brokers     []string
	records     int
	runs        int
	clients     []string
	codecs      []string
	lines       string
	out         string
	brokerPID   int
	inflight    int
	pollRecords int
	timeout     time.Duration

	child, client, topic, group, codec string
}

func main() {
	var o options
	var brokers, clients, codecs string
	flag.StringVar(&brokers, "brokers", "", "bootstrap brokers, host:port[,host:port...]")
	flag.IntVar(&o.records, "records", 1000000, "records produced and consumed per client and run")
	flag.IntVar(&o.runs, "runs", 3, "counted rounds, after one warm-up round")
	flag.StringVar(&clients, "clients", "franz-go,sarama,kafka-go", "clients to measure; the consumers read the first one's topic")
	flag.StringVar(&codecs, "compression", "none,snappy", "compression codecs, each measured in rounds of its own")
	flag.StringVar(&o.lines, "lines", "../../collector/pmacct/testdata/out/print-default.json", "pmacct print-plugin JSON file: each line is one message's value")
	flag.StringVar(&o.out, "out", "../KAFKA-CLIENTS.md", "report file")
	flag.IntVar(&o.brokerPID, "broker-pid", 0, "the broker's pid, to report its CPU time (0: not reported)")
	flag.IntVar(&o.inflight, "inflight", 10000, "records produced but not yet acknowledged, at most (flowdex's max_buffered_records)")
	flag.IntVar(&o.pollRecords, "poll-records", 10000, "records handled between commits, at most (flowdex's max_poll_records)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound of one phase")
	flag.StringVar(&o.child, "child", "", "internal: run one phase (produce, consume) and print its result")
	flag.StringVar(&o.client, "client", "", "internal: the child's client")
	flag.StringVar(&o.topic, "topic", "", "internal: the child's topic")
	flag.StringVar(&o.group, "group", "", "internal: the child's consumer group")
	flag.StringVar(&o.codec, "codec", "none", "internal: the child's compression")
	flag.Parse()
	o.brokers = strings.Split(brokers, ",")
	o.clients = strings.Split(clients, ",")
	o.codecs = strings.Split(codecs, ",")
	if brokers == "" {
		log.Fatal("-brokers is required, e.g. -brokers 127.0.0.1:19492")
	}
	if o.child != "" {
		res := runChild(o)
		json.NewEncoder(os.Stdout).Encode(res)
		if res.Err != "" {
			os.Exit(1)
		}
		return
	}
	for _, c := range o.clients {
		if _, ok := clientsByName[c]; !ok {
			log.Fatalf("unknown client %q (known: franz-go, sarama, kafka-go)", c)
		}
	}
	for _, c := range o.codecs {
		if c != "none" && c != "snappy" {
			log.Fatalf("unknown compression %q (known: none, snappy)", c)
		}
	}
	values, err := readLines(o.lines)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := measure(o, values)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(o.out, rep.markdown(), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", o.out)
}

// readLines returns the file's non-empty lines, the messages' values.
func readLines(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	var lines [][]byte
	for l := range bytes.SplitSeq(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("messages: %s has no line", path)
	}
	return lines, nil
}

// message is record i of a run: exporter i%8 and line i%len(lines), the same
// for every client.
func message(i int, values [][]byte) (key, value []byte) {
	return exporters[i%len(exporters)], values[i%len(values)]
}

// expected are the counts a run must end with.
type expected struct {
	perPartition         [partitions]int64
	keyBytes, valueBytes int64
}

func expect(records int, values [][]byte) expected {
	var e expected
	for i := range records {
		k, v := message(i, values)
		e.perPartition[partitionOf(k)]++
		e.keyBytes += int64(len(k))
		e.valueBytes += int64(len(v))
	}
	return e
}

// result is one phase of one client in one run, as the child measured it
// (from the first record sent or received to the last acknowledged or
// committed) and as the parent saw the child process.
type result struct {
	Records    int64
	Wall       time.Duration
	CPU        time.Duration // the child's user + system time over Wall
	Mallocs    uint64        // heap allocations over Wall
	AllocBytes uint64
	Commits    int64
	KeyBytes   int64
	ValueBytes int64
	Offsets    [partitions]int64 // consumed: the next offset of each partition
	Join       time.Duration     // consumed: from the client's creation to the first record
	Leave      time.Duration     // consumed: from the last commit to the client closed
	Err        string

	ProcessCPU time.Duration // the whole child: start, connection, group join, close
	MaxRSS     int64         // bytes
	BrokerCPU  time.Duration // the broker's CPU time while the child ran
	Load       float64       // 1-minute load average when the child started
}

// measure runs the rounds: per codec, one warm-up round then o.runs, each
// client producing N records into a fresh topic, then each consuming the
// topic the first client produced; clients take turns in an order that
// rotates every round.
func measure(o options, values [][]byte) (*report, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	rep := newReport(o, values)
	ctx := context.Background()
	if v, err := adm.ApiVersions(ctx); err == nil {
		v.Each(func(b kadm.BrokerApiVersions) { rep.kafka = b.VersionGuess() })
	}
	exp := expect(o.records, values)
	for _, codec := range o.codecs {
		for round := 0; round <= o.runs; round++ {
			stamp := fmt.Sprintf("%d-%d-%s-%d", os.Getpid(), time.Now().UnixNano(), codec, round)
			var topics []string
			order := make([]string, len(o.clients))
			for i := range order {
				order[i] = o.clients[(i+round)%len(o.clients)]
			}
			for _, c := range order {
				topic := "kc-" + c + "-" + stamp
				if err := createTopic(ctx, adm, topic); err != nil {
					return nil, err
				}
				topics = append(topics, topic)
				r, err := runPhase(o, "produce", c, topic, "", codec)
				if err == nil {
					err = checkProduced(ctx, adm, topic, exp, r)
				}
				if err != nil {
					return nil, fmt.Errorf("%s produce (%s, round %d): %w", c, codec, round, err)
				}
				rep.add(codec, "produce", c, round, r)
			}
			source := "kc-" + o.clients[0] + "-" + stamp
			for _, c := range order {
				group := "kc-" + c + "-" + stamp
				r, err := runPhase(o, "consume", c, source, group, codec)
				if err == nil {
					err = checkConsumed(ctx, adm, group, exp, r)
				}
				if err != nil {
					return nil, fmt.Errorf("%s consume (%s, round %d): %w", c, codec, round, err)
				}
				rep.add(codec, "consume", c, round, r)
				adm.DeleteGroups(ctx, group)
			}
			if _, err := adm.DeleteTopics(ctx, topics...); err != nil {
				log.Printf("delete topics: %v", err)
			}
		}
	}
	rep.end = time.Now()
	rep.loadEnd = loadAverage()
	return rep, nil
}

// createTopic creates topic and waits until each partition has a leader:
// kafka-go's WriteMessages returns UNKNOWN_TOPIC_OR_PARTITION from its
// metadata lookup at once, without the retry the others make, on a topic
// created a moment before.
func createTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if t := md.Topics[topic]; t.Err == nil && len(t.Partitions) == partitions {
				led := 0
				for _, p := range t.Partitions {
					if p.Err == nil && p.Leader >= 0 {
						led++
					}
				}
				if led == partitions {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: no leader for every partition after a minute (%v)", topic, err)
		}
	}
}

// checkProduced: every record once, each in its exporter's partition.
func checkProduced(ctx context.Context, adm *kadm.Client, topic string, exp expected, r result) error {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	var got [partitions]int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Partition < partitions {
			got[o.Partition] = o.Offset
		}
	})
	if got != exp.perPartition || r.Records != sum(exp.perPartition) {
		return fmt.Errorf("end offsets %v (acknowledged %d), expected %v", got, r.Records, exp.perPartition)
	}
	return nil
}

// checkConsumed: every record once, in offset order (the child checked each
// offset), and the group's commits at the end offsets.
func checkConsumed(ctx context.Context, adm *kadm.Client, group string, exp expected, r result) error {
	if r.Offsets != exp.perPartition || r.KeyBytes != exp.keyBytes || r.ValueBytes != exp.valueBytes {
		return fmt.Errorf("consumed offsets %v, %d key and %d value bytes; expected %v, %d and %d",
			r.Offsets, r.KeyBytes, r.ValueBytes, exp.perPartition, exp.keyBytes, exp.valueBytes)
	}
	offsets, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	var got [partitions]int64
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Partition < partitions {
			got[o.Partition] = o.At
		}
	})
	if got != exp.perPartition {
		return fmt.Errorf("committed offsets %v, expected %v", got, exp.perPartition)
	}
	return nil
}

func sum(a [partitions]int64) (s int64) {
	for _, v := range a {
		s += v
	}
	return s
}

// runPhase runs one phase in a child process and adds what the parent sees.
func runPhase(o options, phase, client, topic, group, codec string) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "-child", phase, "-client", client, "-topic", topic, "-group", group,
		"-codec", codec, "-brokers", strings.Join(o.brokers, ","), "-records", strconv.Itoa(o.records),
		"-lines", o.lines, "-inflight", strconv.Itoa(o.inflight), "-poll-records", strconv.Itoa(o.pollRecords),
		"-timeout", o.timeout.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	load := loadAverage()
	broker0 := processCPU(o.brokerPID)
	runErr := cmd.Run()
	broker1 := processCPU(o.brokerPID)
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("child: %v, output %q: %w", runErr, out.String(), err)
	}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	if runErr != nil {
		return r, runErr
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.ProcessCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.MaxRSS = ru.Maxrss << 10
	}
	r.BrokerCPU = broker1 - broker0
	r.Load = load
	log.Printf("%s %s %s: %d records in %v, %.0f/s, CPU %v (process %v), join %v, leave %v", codec, phase, client,
		r.Records, r.Wall.Round(time.Millisecond), float64(r.Records)/r.Wall.Seconds(), r.CPU.Round(time.Millisecond),
		r.ProcessCPU.Round(time.Millisecond), r.Join.Round(time.Millisecond), r.Leave.Round(time.Millisecond))
	return r, nil
}

// runChild runs one phase in this process.
func runChild(o options) result {
	values, err := readLines(o.lines)
	if err != nil {
		return result{Err: err.Error()}
	}
	c, ok := clientsByName[o.client]
	if !ok {
		return result{Err: "unknown client " + o.client}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var r result
	switch o.child {
	case "produce":
		r, err = produce(ctx, o, values, c.producer)
	case "consume":
		r, err = consume(ctx, o, c.consumer)
	default:
		err = fmt.Errorf("unknown phase %q", o.child)
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// usage is the process's CPU time and allocations at one moment.
type usage struct {
	at      time.Time
	cpu     time.Duration
	mallocs uint64
	bytes   uint64
}

func now() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{at: time.Now(), cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), mallocs: ms.Mallocs, bytes: ms.TotalAlloc}
}

// since fills r's measures from u to now.
func (u usage) since(r *result) {
	e := now()
	r.Wall, r.CPU = e.at.Sub(u.at), e.cpu-u.cpu
	r.Mallocs, r.AllocBytes = e.mallocs-u.mallocs, e.bytes-u.bytes
}

// processCPU is pid's user + system time (0 without a pid).
func processCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// the fields after the command name, which is in parentheses
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func loadAverage() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// firstLine is the line of path that starts with prefix, for the machine facts.
func firstLine(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), prefix) {
			_, v, _ := strings.Cut(s.Text(), ":")
			return strings.TrimSpace(v)
		}
	}
	return ""
}
