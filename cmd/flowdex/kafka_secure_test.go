package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/kafkatest"
	"github.com/flowdex/flowdex/internal/testwatch"
)

// kafkaSecurity is how a test's kafka output or input reaches the secure
// broker: over SASL_SSL with a mechanism, or over SSL without one.
type kafkaSecurity struct {
	sasl     string // "" (the SSL listener), "plain", "scram-sha-256", "scram-sha-512"
	password string // as is, or, with from, the password the test puts there
	from     string // "", "env" (password_env) or "file" (password_file)
	noCA     bool   // no ca_cert: the system's authorities only
}

// kafkaPasswordEnv is the variable of password_env in these tests.
const kafkaPasswordEnv = "FLOWDEX_TEST_KAFKA_PASSWORD"

// toml is the settings of s, brokers and all, as lines of a kafka input's
// or output's table; the password file is written into dir, the
// configuration's.
func (s kafkaSecurity) toml(t *testing.T, b *kafkatest.SecureBroker, dir string) string {
	t.Helper()
	brokers := b.SSL
	if s.sasl != "" {
		brokers = b.SASLSSL
	}
	out := fmt.Sprintf("brokers = [%q]\ntls = true\n", brokers[0])
	if !s.noCA {
		out += fmt.Sprintf("ca_cert = %q\n", b.CA)
	}
	if s.sasl == "" {
		return out
	}
	out += fmt.Sprintf("sasl = %q\nusername = %q\n", s.sasl, b.User(s.sasl))
	switch s.from {
	case "env":
		t.Setenv(kafkaPasswordEnv, s.password)
		out += fmt.Sprintf("password_env = %q\n", kafkaPasswordEnv)
	case "file": // relative to the configuration's directory
		writeFile(t, dir, "kafka-password", s.password+"\n")
		out += "password_file = \"kafka-password\"\n"
	default:
		out += fmt.Sprintf("password = %q\n", s.password)
	}
	return out
}

// flowdex against a broker with TLS and SASL, each mechanism with its own
// user (kafka.sh's secure mode), the CA from a file (ca_cert) and the
// password as is, from the environment or from a file: the kafka output
// publishes the records of a pmacct file, the kafka input reads them into
// a print output, and the two print files hold the same lines. A wrong
// password and a CA that is not given fail the start of either with exit 3
// and an error naming the broker and the cause. Neither run nor check
// prints a password.
func TestKafkaOverTLSAndSASL(t *testing.T) {
	b := kafkatest.Secure(t)
	input, err := filepath.Abs("../../collector/pmacct/testdata/out/print-default.json")
	if err != nil {
		t.Fatal(err)
	}
	// collector: the pmacct file into the kafka output and a print output
	collector := func(dir, security, topic, printed string) string {
		return writeFile(t, dir, "collector.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
timezone = "UTC"
[output.print]
type = "print"
file = %q
[output.kafka]
type = "kafka"
topic = %q
%s`, input, printed, topic, security))
	}
	// indexer: the kafka input (its brokers in security) into a print output
	indexer := func(dir, security, topic, group, base, printed string) string {
		return writeFile(t, dir, "indexer.toml", fmt.Sprintf(`
[http]
listen = %q
[[input]]
type = "kafka"
topics = [%q]
group = %q
timezone = "UTC"
%s
[output.print]
type = "print"
file = %q
`, strings.TrimPrefix(base, "http://"), topic, group, security, printed))
	}

	for _, c := range []struct {
		name string
		sec  kafkaSecurity
	}{
		{"plain, password from the environment", kafkaSecurity{sasl: "plain", password: b.Password, from: "env"}},
		{"scram-sha-256, password from a file", kafkaSecurity{sasl: "scram-sha-256", password: b.Password, from: "file"}},
		{"scram-sha-512, password as is", kafkaSecurity{sasl: "scram-sha-512", password: b.Password}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			security := c.sec.toml(t, b, dir)
			topic := kafkatest.CreateTopic(t, b.Plain, "secure", 2)
			sent, got := filepath.Join(dir, "sent.json"), filepath.Join(dir, "got.json")
			start := time.Now()
			code, stdout, stderr := runCLI(t, "", "run", "-c", collector(dir, security, topic, sent))
			if code != 0 {
				t.Fatalf("collector: exit %d\n%s%s", code, stdout, stderr)
			}
			want, err := readLines(sent)
			if err != nil || len(want) == 0 {
				t.Fatalf("collector's print file: %d lines, %v", len(want), err)
			}
			if w := fmt.Sprintf("output=kafka written=%d indexed=%d duplicates=0 failed=0", len(want), len(want)); !strings.Contains(stderr, w) {
				t.Errorf("collector's report does not say %q\n%s", w, stderr)
			}
			logs := stdout + stderr

			group := "flowdex-" + filepath.Base(dir)
			base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
			cmd, log := startIndexer(t, indexer(dir, security, topic, group, base, got))
			adm := kafkatest.Admin(t, b.Plain)
			testwatch.WaitFor(t, "the indexer's group to commit every message", 30*time.Second, func() bool { return groupCommitted(t, adm, group, topic) })
			terminate(t, cmd, log)
			logs += log.String()
			lines, err := readLines(got)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(want)
			slices.Sort(lines)
			if !slices.Equal(lines, want) {
				t.Errorf("the indexer wrote\n%s\nthe collector\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
			}
			if strings.Contains(logs, b.Password) {
				t.Errorf("a run prints the password:\n%s", logs)
			}
			t.Logf("%d records through %s in %v", len(want), c.sec.sasl, time.Since(start).Round(time.Millisecond))

			code, stdout, stderr = runCLI(t, "", "check", "-c", indexer(dir, security, topic, group, base, got))
			code2, stdout2, stderr2 := runCLI(t, "", "check", "-c", collector(dir, security, topic, sent))
			if code != 0 || code2 != 0 {
				t.Fatalf("check: exit %d and %d\n%s%s%s%s", code, code2, stdout, stderr, stdout2, stderr2)
			}
			for _, out := range []string{stdout, stdout2} {
				if strings.Contains(out, b.Password) || !strings.Contains(out, `sasl = "`+c.sec.sasl+`"`) {
					t.Errorf("check prints the password or not the mechanism:\n%s", out)
				}
				if c.sec.from == "" && !strings.Contains(out, `password = "********"`) {
					t.Errorf("check does not show the password hidden:\n%s", out)
				}
			}
		})
	}

	// the failures, for the output and the input alike
	topic := kafkatest.CreateTopic(t, b.Plain, "secure", 1)
	for _, c := range []struct {
		name string
		sec  kafkaSecurity
		want []string
	}{
		{"wrong password, plain", kafkaSecurity{sasl: "plain", password: "wrong-" + b.Password, from: "env"},
			[]string{"SASL_AUTHENTICATION_FAILED", "Invalid username or password"}},
		{"wrong password, scram-sha-512", kafkaSecurity{sasl: "scram-sha-512", password: "wrong-" + b.Password, from: "file"},
			[]string{"SASL_AUTHENTICATION_FAILED", "invalid credentials with SASL mechanism SCRAM-SHA-512"}},
		{"CA not given", kafkaSecurity{sasl: "scram-sha-256", password: b.Password, noCA: true},
			[]string{"tls: failed to verify certificate", "x509: certificate signed by unknown authority"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			security := c.sec.toml(t, b, dir)
			for _, side := range []struct{ name, conf string }{
				{"output", collector(dir, security, topic, filepath.Join(dir, "sent.json"))},
				{"input", indexer(dir, security, topic, "flowdex-"+filepath.Base(dir), fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t)), filepath.Join(dir, "got.json"))},
			} {
				start := time.Now()
				code, stdout, stderr := runCLI(t, "", "run", "-c", side.conf)
				if code != exitStartup {
					t.Errorf("%s: exit %d, want %d\n%s%s", side.name, code, exitStartup, stdout, stderr)
				}
				for _, w := range append(c.want, b.SASLSSL[0]) {
					if !strings.Contains(stderr, w) {
						t.Errorf("%s: the error does not say %q\n%s", side.name, w, stderr)
					}
				}
				if strings.Contains(stdout+stderr, b.Password) {
					t.Errorf("%s: the password is printed:\n%s%s", side.name, stdout, stderr)
				}
				t.Logf("%s: failed in %v", side.name, time.Since(start).Round(time.Millisecond))
			}
		})
	}
}
