// Package kafkaclient is what flowdex's Kafka output and Kafka input share:
// the brokers to bootstrap from, TLS and SASL, checked with errors naming
// their keys and turned into franz-go client options. Secrets come as is,
// from a file or from the environment, as the Elasticsearch output's do, and
// are never logged.
package kafkaclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/flowdex/flowdex/aggregate/setting"
)

// DefaultPort is Kafka's, taken for a broker given without one (pmacct's
// kafka_broker_host habit).
const DefaultPort = "9092"

// SASL mechanisms.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Configuration of a client's connection to a Kafka cluster. Start from
// DefaultConfiguration.
type Configuration struct {
	// Brokers to bootstrap from, host:port (":9092" when the port is left
	// out; IPv6 addresses in brackets); the client learns the others.
	Brokers []string `toml:"brokers"`
	// ClientID names flowdex in the brokers' logs and quotas.
	ClientID string `toml:"client_id"`
	// TLS connects with TLS, verifying the brokers' certificates against the
	// system's authorities and CACert's, unless InsecureSkipVerify.
	TLS                bool   `toml:"tls"`
	CACert             string `toml:"ca_cert,omitempty"`
	InsecureSkipVerify bool   `toml:"tls_insecure_skip_verify"`
	// SASL is the authentication: "" (none), "plain", "scram-sha-256" or
	// "scram-sha-512", with Username and a password given as is, in a file
	// (PasswordFile) or in an environment variable (PasswordEnv).
	SASL         string `toml:"sasl,omitempty"`
	Username     string `toml:"username,omitempty"`
	Password     string `toml:"password,omitempty"`
	PasswordFile string `toml:"password_file,omitempty"`
	PasswordEnv  string `toml:"password_env,omitempty"`
	// DialTimeout bounds connecting to one broker.
	DialTimeout setting.Duration `toml:"dial_timeout"`
}

// DefaultConfiguration is a broker on this host, no TLS, no SASL.
func DefaultConfiguration() Configuration {
	return Configuration{
		Brokers:     []string{"127.0.0.1:" + DefaultPort},
		ClientID:    "flowdex",
		DialTimeout: setting.Duration{Duration: 10 * time.Second},
	}
}

// Validate reports every setting Options would refuse that it can see
// without reading a file, each a setting.KeyError naming its key.
func (c Configuration) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, setting.Errorf(key, format, args...)) }
	if len(c.Brokers) == 0 {
		bad("brokers", "no broker (expected e.g. [\"127.0.0.1:9092\"])")
	}
	for _, b := range c.Brokers {
		if _, err := brokerAddress(b); err != nil {
			bad("brokers", "%v", err)
		}
	}
	if c.ClientID == "" {
		bad("client_id", "empty (expected a name, e.g. \"flowdex\")")
	}
	passwords := 0
	for _, v := range []string{c.Password, c.PasswordFile, c.PasswordEnv} {
		if v != "" {
			passwords++
		}
	}
	switch c.SASL {
	case "":
		if c.Username != "" || passwords > 0 {
			bad("sasl", "a username or password without a mechanism (expected sasl = \"plain\", \"scram-sha-256\" or \"scram-sha-512\")")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		switch {
		case c.Username == "":
			bad("username", "SASL %s needs a username", c.SASL)
		case passwords == 0:
			bad("password", "SASL %s needs a password (password, password_file or password_env)", c.SASL)
		case passwords > 1:
			bad("password", "give one of password, password_file and password_env")
		}
	default:
		bad("sasl", "unknown mechanism %q (expected \"plain\", \"scram-sha-256\" or \"scram-sha-512\")", c.SASL)
	}
	if !c.TLS && (c.CACert != "" || c.InsecureSkipVerify) {
		bad("tls", "ca_cert or tls_insecure_skip_verify without tls = true")
	}
	if c.DialTimeout.Duration <= 0 {
		bad("dial_timeout", "%s: expected a positive duration, e.g. \"10s\"", c.DialTimeout)
	}
	return errors.Join(errs...)
}

// brokerAddress is b with Kafka's port when it has none.
func brokerAddress(b string) (string, error) {
	if b == "" {
		return "", errors.New("an empty broker address (expected host:port)")
	}
	if strings.Contains(b, "://") {
		return "", fmt.Errorf("%q: a broker is host:port, without a scheme (expected e.g. \"127.0.0.1:9092\"; tls = true for TLS)", b)
	}
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		if strings.Count(b, ":") > 1 && !strings.HasPrefix(b, "[") {
			return "", fmt.Errorf("%q: an IPv6 address goes in brackets (expected e.g. \"[2001:db8::1]:9092\")", b)
		}
		return net.JoinHostPort(strings.Trim(b, "[]"), DefaultPort), nil
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("%q is not host:port (expected e.g. \"127.0.0.1:9092\")", b)
	}
	return b, nil
}

// Where names the brokers, for errors.
func (c Configuration) Where() string { return strings.Join(c.Brokers, ", ") }

// Options checks c, reads its secrets and CA file, and returns the client
// options of the connection. logger warns about what is insecure.
func (c Configuration) Options(logger *slog.Logger) ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	brokers := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		brokers[i], _ = brokerAddress(b)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(c.ClientID), kgo.DialTimeout(c.DialTimeout.Duration)}
	if c.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // off unless asked, with a warning
		if c.CACert != "" {
			pem, err := os.ReadFile(c.CACert)
			if err != nil {
				return nil, setting.Key("ca_cert", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, setting.Errorf("ca_cert", "%s holds no PEM certificate", c.CACert)
			}
			tc.RootCAs = pool
		}
		if c.InsecureSkipVerify {
			logger.Warn("kafka: TLS certificates are NOT verified (tls_insecure_skip_verify): anyone on the path can read and change what is sent")
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL != "" {
		password, err := setting.Secret("password", c.Password, c.PasswordFile, c.PasswordEnv)
		if err != nil {
			return nil, err
		}
		if c.SASL == SASLPlain && !c.TLS {
			logger.Warn("kafka: SASL plain without TLS sends the password in clear")
		}
		switch c.SASL {
		case SASLPlain:
			opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: password}.AsMechanism()))
		case SASLScramSHA256:
			opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: password}.AsSha256Mechanism()))
		case SASLScramSHA512:
			opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: password}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}

// LogValue shows the configuration without its password: "REDACTED" when
// set, "" when not.
func (c Configuration) LogValue() slog.Value {
	pw := ""
	if c.Password != "" {
		pw = "REDACTED"
	}
	return slog.GroupValue(
		slog.Any("brokers", c.Brokers),
		slog.String("client_id", c.ClientID),
		slog.Bool("tls", c.TLS),
		slog.String("ca_cert", c.CACert),
		slog.Bool("tls_insecure_skip_verify", c.InsecureSkipVerify),
		slog.String("sasl", c.SASL),
		slog.String("username", c.Username),
		slog.String("password", pw),
		slog.String("password_file", c.PasswordFile),
		slog.String("password_env", c.PasswordEnv),
		slog.Duration("dial_timeout", c.DialTimeout.Duration),
	)
}

// IDHeader is the record header in which flowdex's kafka output carries the
// document id the pipeline gave a record, and from which flowdex's kafka
// input takes it back (DocumentID): a record the output sent twice (a spool
// replay of a record the brokers had taken) is then one document, where ids
// made from its two offsets would be two.
const IDHeader = "flowdex-id"

// MaxIDBytes is Elasticsearch's limit on an _id.
const MaxIDBytes = 512

// DocumentID is the value of r's IDHeader when it is one Elasticsearch takes
// as an _id (1 to MaxIDBytes bytes of UTF-8, not starting with '_'); nil
// otherwise, or without the header (pmacct's kafka plugin writes none).
func DocumentID(r *kgo.Record) []byte {
	for _, h := range r.Headers {
		if h.Key != IDHeader {
			continue
		}
		if v := h.Value; len(v) > 0 && len(v) <= MaxIDBytes && v[0] != '_' && utf8.Valid(v) {
			return v
		}
		return nil
	}
	return nil
}
