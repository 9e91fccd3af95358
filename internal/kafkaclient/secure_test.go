package kafkaclient

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowdex/flowdex/internal/kafkatest"
)

// The options Options builds, against a broker with TLS and SASL (kafka.sh's
// secure mode, where each mechanism knows its own user only): each
// mechanism with the password as is, from a file and from the environment,
// TLS alone, TLS without verification; and what is refused: a wrong
// password, another mechanism's user, a certificate of a CA not given. A
// client that connects sends a record and reads it back.
func TestSecureBroker(t *testing.T) {
	b := kafkatest.Secure(t)
	topic := kafkatest.CreateTopic(t, b.Plain, "kafkaclient", 1)
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(b.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLOWDEX_TEST_KAFKA_PASSWORD", b.Password)
	// sasl is c over SASL_SSL, verified against the test's CA, with mechanism
	// m and its user.
	sasl := func(c *Configuration, m string) {
		c.Brokers, c.TLS, c.CACert, c.SASL, c.Username = b.SASLSSL, true, b.CA, m, b.User(m)
	}
	tests := []struct {
		name string
		edit func(*Configuration)
		want []string // in the error; none: the record goes and comes back
	}{
		{"plain, password as is", func(c *Configuration) { sasl(c, SASLPlain); c.Password = b.Password }, nil},
		{"plain, password_env", func(c *Configuration) { sasl(c, SASLPlain); c.PasswordEnv = "FLOWDEX_TEST_KAFKA_PASSWORD" }, nil},
		{"scram-sha-256, password_file", func(c *Configuration) { sasl(c, SASLScramSHA256); c.PasswordFile = file }, nil},
		{"scram-sha-256, password_env", func(c *Configuration) { sasl(c, SASLScramSHA256); c.PasswordEnv = "FLOWDEX_TEST_KAFKA_PASSWORD" }, nil},
		{"scram-sha-512, password as is", func(c *Configuration) { sasl(c, SASLScramSHA512); c.Password = b.Password }, nil},
		{"scram-sha-512, password_file", func(c *Configuration) { sasl(c, SASLScramSHA512); c.PasswordFile = file }, nil},
		{"tls, ca_cert", func(c *Configuration) { c.Brokers, c.TLS, c.CACert = b.SSL, true, b.CA }, nil},
		{"tls_insecure_skip_verify", func(c *Configuration) { c.Brokers, c.TLS, c.InsecureSkipVerify = b.SSL, true, true }, nil},
		{"plain, wrong password", func(c *Configuration) { sasl(c, SASLPlain); c.Password = "wrong" },
			[]string{"SASL_AUTHENTICATION_FAILED", "Invalid username or password"}},
		{"scram-sha-256, wrong password", func(c *Configuration) { sasl(c, SASLScramSHA256); c.Password = "wrong" },
			[]string{"SASL_AUTHENTICATION_FAILED", "SCRAM-SHA-256"}},
		{"scram-sha-512, the user of scram-sha-256", func(c *Configuration) {
			sasl(c, SASLScramSHA512)
			c.Username, c.Password = b.User(SASLScramSHA256), b.Password
		}, []string{"SASL_AUTHENTICATION_FAILED", "SCRAM-SHA-512"}},
		{"no ca_cert", func(c *Configuration) { sasl(c, SASLPlain); c.CACert, c.Password = "", b.Password },
			[]string{"x509: certificate signed by unknown authority"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfiguration()
			tt.edit(&c)
			var log bytes.Buffer
			opts, err := c.Options(slog.New(slog.NewTextHandler(&log, nil)))
			if err != nil {
				t.Fatalf("Options: %v", err)
			}
			if warned := strings.Contains(log.String(), "NOT verified"); warned != c.InsecureSkipVerify {
				t.Errorf("warned that certificates are not verified: %v, want %v (log %q)", warned, c.InsecureSkipVerify, log.String())
			}
			cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err = cl.Ping(ctx)
			if len(tt.want) > 0 {
				for _, w := range tt.want {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("Ping: %v, want an error saying %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Ping: %v", err)
			}
			value := []byte(tt.name)
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			// (each case's record has its own value)
			for {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("the record did not come back: %v", ctx.Err())
				}
				if err := fs.Err(); err != nil {
					t.Fatalf("fetch: %v", err)
				}
				if slices.ContainsFunc(fs.Records(), func(r *kgo.Record) bool { return bytes.Equal(r.Value, value) }) {
					return
				}
			}
		})
	}
}
