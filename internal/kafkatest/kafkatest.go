// Package kafkatest gives Go tests a real Apache Kafka: the shared test
// broker, or a cluster of three of the test's own, both started with
// kafka.sh (next to this file), and small helpers for topics and clients
// (franz-go's kgo and kadm).
//
// Where the shared broker comes from (Brokers):
//
//  1. FLOWDEX_TEST_KAFKA (host:port[,host:port...]), if set;
//  2. else whatever answers on 127.0.0.1:9092;
//  3. else `kafka.sh start`, under a file lock so that the test binaries of
//     several packages, which `go test ./...` runs in parallel, start it only
//     once. It is left running for the next run; `kafka.sh stop` (or `make
//     kafka-stop`) stops it.
//
// Secure is the shared broker of kafka.sh's secure mode (TLS, and SASL
// PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512): FLOWDEX_TEST_KAFKA_SECURE (its
// listeners as `kafka.sh listeners` prints them, with its CA in
// FLOWDEX_TEST_KAFKA_SECURE_CA), else the one of `FLOWDEX_KAFKA_SECURE=1
// kafka.sh` if it answers, else started as the plain one is. Its users'
// password is FLOWDEX_KAFKA_SASL_PASSWORD and their names start with
// FLOWDEX_KAFKA_SASL_USER (kafka.sh's defaults when unset).
//
// NewCluster starts three nodes of the test's own (each broker and
// controller, replication factor 3, min.insync.replicas 2) on free ports, as
// a FLOWDEX_KAFKA_INSTANCE of kafka.sh, and removes them when the test ends;
// the test can stop, kill and start each.
//
// FLOWDEX_TEST_NO_KAFKA=1 skips the tests that need Kafka without looking
// for it (make quick). When no broker can be had the test is skipped, or
// fails when CI=true or FLOWDEX_REQUIRE_KAFKA=1. A FLOWDEX_TEST_KAFKA (or
// FLOWDEX_TEST_KAFKA_SECURE) that does not answer always fails the test:
// someone asked for that broker. So does a secure broker that refuses the
// users' password.
//
// Topics are not created on first use (auto.create.topics.enable=false in
// kafka.sh): Topic and (*Cluster).Topic make a uniquely named one and delete
// it when the test ends.
package kafkatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/flowdex/flowdex/internal/testports"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testscript"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultAddr is where `kafka.sh start` puts the shared broker.
const DefaultAddr = "127.0.0.1:9092"

// startTimeout bounds one `kafka.sh start`: a cold start fetches about
// 45 MB of jars through Maven and waits up to 120 s for the nodes.
const startTimeout = 10 * time.Minute

// opTimeout bounds one admin request or wait of the helpers: generous, for
// a loaded machine.
const opTimeout = 60 * time.Second

// sharedServer is a server of the test binary, found or started once.
type sharedServer[T any] struct {
	mu   sync.Mutex
	done bool
	v    T
	err  error
	must bool // err fails the test even when skipping is allowed
}

// get returns what find found, calling it at the first call only: one
// attempt per test binary, not minutes of waiting in every test.
func (s *sharedServer[T]) get(t testing.TB, find func() (T, bool, error)) T {
	t.Helper()
	SkipIfNoKafka(t)
	s.mu.Lock()
	if !s.done {
		s.v, s.must, s.err = find()
		s.done = true
	}
	v, must, err := s.v, s.must, s.err
	s.mu.Unlock()
	if err != nil {
		unavailable(t, must, err)
	}
	return v
}

var (
	shared       sharedServer[[]string]
	sharedSecure sharedServer[*SecureBroker]
)

// Brokers returns the bootstrap addresses of the shared test broker,
// starting it if need be (see the package doc).
func Brokers(t testing.TB) []string {
	t.Helper()
	return append([]string(nil), shared.get(t, findShared)...)
}

// SkipIfNoKafka skips the test in the quick suite (FLOWDEX_TEST_NO_KAFKA=1,
// unless CI=true or FLOWDEX_REQUIRE_KAFKA=1): for a test that would start
// other servers before it asks for Kafka.
func SkipIfNoKafka(t testing.TB) {
	t.Helper()
	if os.Getenv("FLOWDEX_TEST_NO_KAFKA") == "1" && !required() {
		t.Skip("kafkatest: FLOWDEX_TEST_NO_KAFKA=1: no Kafka (the quick suite)")
	}
}

// unavailable fails or skips the test for want of Kafka.
func unavailable(t testing.TB, must bool, err error) {
	t.Helper()
	if must || required() {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Skipf("kafkatest: no Kafka (CI=true or FLOWDEX_REQUIRE_KAFKA=1 make this a failure): %v", err)
}

// required tells whether a missing broker must fail the test.
func required() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci || os.Getenv("FLOWDEX_REQUIRE_KAFKA") == "1"
}

func findShared() (brokers []string, must bool, err error) {
	if v := os.Getenv("FLOWDEX_TEST_KAFKA"); v != "" {
		brokers = splitAddrs(v)
		if err := ping(brokers); err != nil {
			return nil, true, fmt.Errorf("FLOWDEX_TEST_KAFKA=%s: %w", v, err)
		}
		return brokers, false, nil
	}
	brokers = []string{DefaultAddr}
	if ping(brokers) == nil {
		return brokers, false, nil
	}
	brokers, err = startShared()
	return brokers, false, err
}

// startShared runs `kafka.sh start` under an exclusive lock on a file in
// the cache dir, and checks the brokers it prints last.
func startShared() ([]string, error) {
	unlock, err := lockShared()
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another test process may have started it while we waited.
	if ping([]string{DefaultAddr}) == nil {
		return []string{DefaultAddr}, nil
	}
	// The tests look on the default port, so kafka.sh must start it there.
	out, err := script(scriptEnv(), startTimeout, "start", "1")
	if err != nil {
		return nil, err
	}
	brokers := splitAddrs(testscript.LastLine(out))
	if err := ping(brokers); err != nil {
		return nil, fmt.Errorf("kafka.sh start printed %q: %w", testscript.LastLine(out), err)
	}
	return brokers, nil
}

// lockShared takes the lock (a file in the cache dir) under which the test
// processes of `go test ./...` look for the shared brokers and start them.
func lockShared() (unlock func(), err error) {
	dir := testscript.CacheDir("kafka", "FLOWDEX_KAFKA_HOME")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "kafkatest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	return func() { lock.Close() }, nil // closing drops the lock
}

// instanceVars are kafka.sh's variables that choose an instance and its
// shape, which the helpers set themselves.
var instanceVars = []string{"FLOWDEX_KAFKA_PORT", "FLOWDEX_KAFKA_CONTROLLER_PORT", "FLOWDEX_KAFKA_INSTANCE",
	"FLOWDEX_KAFKA_BROKERS", "FLOWDEX_KAFKA_KEEP_DATA", "FLOWDEX_KAFKA_SECURE", "FLOWDEX_KAFKA_SASL_SSL_PORT",
	"FLOWDEX_KAFKA_SSL_PORT"}

// scriptEnv is the environment of kafka.sh: ours, with vars for the
// instance variables (none: the shared brokers on their default ports,
// where the tests look for them).
func scriptEnv(vars ...string) []string {
	return append(testscript.WithoutEnv(os.Environ(), instanceVars...), vars...)
}

// ping: a broker of brokers answers, to a client with opts.
func ping(brokers []string, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DialTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("no Kafka broker answers on %s: %w", strings.Join(brokers, ","), err)
	}
	return nil
}

// Topic creates a topic on the shared broker (see CreateTopic).
func Topic(t testing.TB, prefix string, partitions int) string {
	t.Helper()
	return CreateTopic(t, Brokers(t), prefix, partitions)
}

// CreateTopic creates a topic named after prefix and the test, unique, with
// partitions partitions and the brokers' default replication factor (3 on
// a Cluster), waits until every partition has a leader, and deletes it when
// the test ends.
func CreateTopic(t testing.TB, brokers []string, prefix string, partitions int) string {
	t.Helper()
	name := topicName(prefix, t.Name())
	adm := Admin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("kafkatest: creating topic %s (%d partitions) on %s: %v", name, partitions, strings.Join(brokers, ","), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		// a fresh client: the test's one is closed by now
		cl, err := kadmClient(brokers)
		if err != nil {
			t.Errorf("kafkatest: deleting topic %s: %v", name, err)
			return
		}
		defer cl.Close()
		resp, err := cl.DeleteTopic(ctx, name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Errorf("kafkatest: deleting topic %s: %v", name, err)
		}
	})
	if err := waitLeaders(ctx, adm, name, partitions); err != nil {
		t.Fatalf("kafkatest: topic %s: %v", name, err)
	}
	return name
}

// waitLeaders waits until the metadata shows every partition of topic with
// a leader, so that a producer started next finds them.
func waitLeaders(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	var last error
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td, ok := md.Topics[topic]
			switch {
			case !ok:
				err = errors.New("not in the metadata yet")
			case td.Err != nil:
				err = td.Err
			case len(td.Partitions) != partitions:
				err = fmt.Errorf("%d partitions of %d in the metadata", len(td.Partitions), partitions)
			default:
				for _, p := range td.Partitions {
					if p.Leader < 0 || p.Err != nil {
						err = fmt.Errorf("partition %d has no leader yet (%v)", p.Partition, p.Err)
						break
					}
				}
			}
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("partitions without a leader: %w (%v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond): // polling the metadata
		}
	}
}

var topicUnsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

func topicName(prefix, test string) string {
	test = topicUnsafe.ReplaceAllString(test, "-")
	if len(test) > 60 {
		test = test[:60]
	}
	return fmt.Sprintf("%s-%s-%s", prefix, test, randomHex(4))
}

// Admin returns a kadm client of brokers, closed when the test ends.
func Admin(t testing.TB, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kadmClient(brokers)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func kadmClient(brokers []string) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", strings.Join(brokers, ","), err)
	}
	return kadm.NewClient(cl), nil
}

// Client returns a kgo client of brokers with opts, closed when the test
// ends.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: kafka client for %s: %v", strings.Join(brokers, ","), err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Tool runs one of Kafka's tools (`kafka.sh tool NAME ARGS...`, e.g.
// "kafka-consumer-groups", "--bootstrap-server", addr, "--describe", ...)
// and returns what it printed on stdout; the test fails if it fails.
func Tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := script(os.Environ(), startTimeout, append([]string{"tool", name}, args...)...)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return out
}

// ---------------------------------------------------------------------------
// A cluster of the test's own

// Cluster is a three-node Kafka cluster of one test (NewCluster).
type Cluster struct {
	Brokers []string // bootstrap addresses, node i at Brokers[i]

	t        testing.TB
	env      []string // kafka.sh's environment: the instance and its ports
	instance string
}

// ClusterSize is the number of nodes of a Cluster.
const ClusterSize = 3

// NewCluster starts a Kafka cluster of ClusterSize nodes on free ports of
// 127.0.0.1 (about 10 s), removed with its data when the test ends (the
// tail of each node's log is logged first if the test failed).
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	SkipIfNoKafka(t)
	c := &Cluster{t: t, instance: "t-" + randomHex(4)}
	var err error
	for try := 0; try < 3; try++ { // another process may take a port we picked
		var bport, cport int
		if bport, err = freePorts(ClusterSize); err != nil {
			break
		}
		if cport, err = freePorts(ClusterSize); err != nil {
			break
		}
		c.env = scriptEnv("FLOWDEX_KAFKA_INSTANCE="+c.instance,
			"FLOWDEX_KAFKA_PORT="+strconv.Itoa(bport),
			"FLOWDEX_KAFKA_CONTROLLER_PORT="+strconv.Itoa(cport))
		var out string
		out, err = script(c.env, startTimeout, "start", strconv.Itoa(ClusterSize))
		if err == nil {
			c.Brokers = splitAddrs(testscript.LastLine(out))
			break
		}
		if msg := err.Error(); !strings.Contains(msg, "in use") && !strings.Contains(msg, "not started by kafka.sh") {
			break
		}
	}
	t.Cleanup(c.remove)
	if err != nil {
		unavailable(t, false, fmt.Errorf("three-node cluster: %w", err))
	}
	if len(c.Brokers) != ClusterSize {
		t.Fatalf("kafkatest: kafka.sh start %d printed brokers %q", ClusterSize, c.Brokers)
	}
	return c
}

func (c *Cluster) remove() {
	if c.env == nil {
		return
	}
	if c.t.Failed() {
		for i := 0; i < ClusterSize; i++ {
			p := filepath.Join(testscript.CacheDir("kafka", "FLOWDEX_KAFKA_HOME"), "instances", c.instance, fmt.Sprintf("node-%d", i+1), "logs", "server.log")
			if b, err := os.ReadFile(p); err == nil {
				c.t.Logf("kafkatest: tail of %s:\n%s", p, testscript.Tail(string(b), 15))
			}
		}
	}
	if _, err := script(c.env, time.Minute, "remove"); err != nil {
		c.t.Errorf("kafkatest: removing cluster %s: %v", c.instance, err)
	}
}

// Topic creates a topic on the cluster (see CreateTopic): replication
// factor 3, min.insync.replicas 2.
func (c *Cluster) Topic(prefix string, partitions int) string {
	c.t.Helper()
	return CreateTopic(c.t, c.Brokers, prefix, partitions)
}

// StopBroker stops node i (0 to ClusterSize-1, its address Brokers[i]) with
// SIGTERM, a controlled shutdown, and waits until it has exited.
func (c *Cluster) StopBroker(i int) { c.t.Helper(); c.node("stop-broker", i) }

// KillBroker kills node i with SIGKILL: the others fence it once its
// session times out (6 s).
func (c *Cluster) KillBroker(i int) { c.t.Helper(); c.node("kill-broker", i) }

// StartBroker starts node i again on its data and waits until it answers.
func (c *Cluster) StartBroker(i int) { c.t.Helper(); c.node("start-broker", i) }

// Pid returns the pid of node i's JVM (0 if it does not run).
func (c *Cluster) Pid(i int) int {
	c.t.Helper()
	out, err := script(c.env, time.Minute, "pid", strconv.Itoa(c.nodeID(i)))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	return pid
}

func (c *Cluster) node(cmd string, i int) {
	c.t.Helper()
	if _, err := script(c.env, startTimeout, cmd, strconv.Itoa(c.nodeID(i))); err != nil {
		c.t.Fatalf("kafkatest: %v", err)
	}
}

func (c *Cluster) nodeID(i int) int {
	c.t.Helper()
	if i < 0 || i >= ClusterSize {
		c.t.Fatalf("kafkatest: no node %d (0 to %d)", i, ClusterSize-1)
	}
	return i + 1 // kafka.sh's node ids start at 1
}

// freePorts returns the first of n consecutive ports of 127.0.0.1 that are
// free now and that no other test of the process was given (testports).
func freePorts(n int) (int, error) { return testports.Consecutive(n) }

// ---------------------------------------------------------------------------
// kafka.sh

// ScriptPath returns the path of kafka.sh, beside this file.
func ScriptPath() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate kafka.sh: runtime.Caller failed")
	}
	p := filepath.Join(filepath.Dir(file), "kafka.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("cannot locate kafka.sh (built with -trimpath?): %w", err)
	}
	return p, nil
}

// script runs kafka.sh with args and env, and returns its stdout.
func script(env []string, timeout time.Duration, args ...string) (string, error) {
	p, err := ScriptPath()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{p}, args...)...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second // in case a child keeps our pipes open
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kafka.sh %s: %v\n%s", strings.Join(args, " "), err, testscript.Tail(stderr.String(), 40))
	}
	return stdout.String(), nil
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
