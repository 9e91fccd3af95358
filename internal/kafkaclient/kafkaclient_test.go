package kafkaclient

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/setting"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Configuration)
		key  string // "" when valid
		want string
	}{
		{"defaults", func(*Configuration) {}, "", ""},
		{"port left out", func(c *Configuration) { c.Brokers = []string{"kafka1", "[2001:db8::1]", "kafka2:10000"} }, "", ""},
		{"no broker", func(c *Configuration) { c.Brokers = nil }, "brokers", "no broker"},
		{"scheme", func(c *Configuration) { c.Brokers = []string{"ssl://kafka1:9093"} }, "brokers", "without a scheme"},
		{"bare IPv6", func(c *Configuration) { c.Brokers = []string{"2001:db8::1"} }, "brokers", "in brackets"},
		{"password without sasl", func(c *Configuration) { c.Username, c.Password = "u", "p" }, "sasl", "without a mechanism"},
		{"unknown sasl", func(c *Configuration) { c.SASL = "gssapi" }, "sasl", "unknown mechanism"},
		{"scram without password", func(c *Configuration) { c.SASL, c.Username = SASLScramSHA512, "u" }, "password", "needs a password"},
		{"two passwords", func(c *Configuration) { c.SASL, c.Username, c.Password, c.PasswordEnv = SASLPlain, "u", "p", "P" }, "password", "give one"},
		{"ca without tls", func(c *Configuration) { c.CACert = "ca.pem" }, "tls", "without tls = true"},
		{"no client id", func(c *Configuration) { c.ClientID = "" }, "client_id", "empty"},
		{"zero dial timeout", func(c *Configuration) { c.DialTimeout.Duration = 0 }, "dial_timeout", "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfiguration()
			tt.edit(&c)
			err := c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := c.Options(slog.Default()); err != nil {
					t.Fatalf("Options: %v", err)
				}
				return
			}
			var ke *setting.KeyError
			if !errors.As(err, &ke) || ke.Key != tt.key || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error at %s saying %q", err, tt.key, tt.want)
			}
		})
	}
}

// Secrets come from a file or the environment, and a missing one names its
// key; the password is never in the log value.
func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfiguration()
	c.SASL, c.Username, c.PasswordFile = SASLScramSHA256, "flowdex", file
	if _, err := c.Options(slog.Default()); err != nil {
		t.Fatal(err)
	}
	c.PasswordFile, c.PasswordEnv = "", "FLOWDEX_TEST_NO_SUCH_VARIABLE"
	var ke *setting.KeyError
	if _, err := c.Options(slog.Default()); !errors.As(err, &ke) || ke.Key != "password_env" {
		t.Fatalf("Options with an unset variable: %v", err)
	}
	c.PasswordEnv, c.Password = "", "s3cret"
	if v := fmt.Sprint(c.LogValue()); strings.Contains(v, "s3cret") || !strings.Contains(v, "REDACTED") {
		t.Errorf("log value %s", v)
	}
	c.TLS, c.CACert = true, file // not a PEM file
	if _, err := c.Options(slog.Default()); !errors.As(err, &ke) || ke.Key != "ca_cert" {
		t.Fatalf("Options with a CA file without certificates: %v", err)
	}
}
