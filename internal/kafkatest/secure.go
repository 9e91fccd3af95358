package kafkatest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/flowdex/flowdex/internal/testscript"
)

// Test credentials of kafka.sh's secure mode; kafka.sh has the same
// defaults.
const (
	defaultSASLUser     = "flowdex-test"
	defaultSASLPassword = "fdx-kafka-Pw-71c3e0b9a4d2"
)

// SecureBroker is a broker of kafka.sh's secure mode.
type SecureBroker struct {
	Plain   []string // PLAINTEXT listeners: for the test's own admin clients, topics and checks
	SASLSSL []string // SASL_SSL listeners: mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	SSL     []string // SSL listeners: TLS without authentication
	// CA is the PEM file of the CA that signed the brokers' certificate
	// (for 127.0.0.1 and localhost).
	CA string
	// Password is every SASL user's.
	Password string

	userPrefix string
}

// User returns the name of the user of mechanism ("plain",
// "scram-sha-256" or "scram-sha-512", as flowdex's sasl setting names
// them): each mechanism knows its own user only.
func (b *SecureBroker) User(mechanism string) string { return b.userPrefix + "-" + mechanism }

// TLSConfig verifies the brokers' certificate against CA only.
func (b *SecureBroker) TLSConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(b.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", b.CA)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Secure returns the shared broker of kafka.sh's secure mode, starting it
// if need be (see the package doc).
func Secure(t testing.TB) *SecureBroker {
	t.Helper()
	b := *sharedSecure.get(t, findSecure)
	return &b
}

// findSecure: FLOWDEX_TEST_KAFKA_SECURE, else kafka.sh's secure instance,
// started if it does not answer.
func findSecure() (*SecureBroker, bool, error) {
	if v := os.Getenv("FLOWDEX_TEST_KAFKA_SECURE"); v != "" {
		ca := os.Getenv("FLOWDEX_TEST_KAFKA_SECURE_CA")
		if ca == "" {
			return nil, true, errors.New("FLOWDEX_TEST_KAFKA_SECURE is set without FLOWDEX_TEST_KAFKA_SECURE_CA (the PEM file of its CA)")
		}
		b, err := secureBroker(v, ca)
		if err == nil {
			err = b.check()
		}
		if err != nil {
			return nil, true, fmt.Errorf("FLOWDEX_TEST_KAFKA_SECURE=%s: %w", v, err)
		}
		return b, false, nil
	}
	b, err := secureOfScript()
	if err == nil && ping(b.Plain) == nil {
		return b, true, b.check()
	}
	unlock, err := lockShared()
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if _, err := script(scriptEnv("FLOWDEX_KAFKA_SECURE=1"), startTimeout, "start", "1"); err != nil {
		return nil, false, fmt.Errorf("secure broker: %w", err)
	}
	if b, err = secureOfScript(); err != nil {
		return nil, false, err
	}
	if err := ping(b.Plain); err != nil {
		return nil, false, fmt.Errorf("secure broker: %w", err)
	}
	return b, true, b.check()
}

// secureOfScript is the secure instance as kafka.sh knows it.
func secureOfScript() (*SecureBroker, error) {
	env := scriptEnv("FLOWDEX_KAFKA_SECURE=1")
	listeners, err := script(env, opTimeout, "listeners")
	if err != nil {
		return nil, err
	}
	ca, err := script(env, opTimeout, "ca")
	if err != nil {
		return nil, err
	}
	return secureBroker(testscript.LastLine(listeners), testscript.LastLine(ca))
}

// secureBroker reads listeners as `kafka.sh listeners` prints them
// (PLAINTEXT://127.0.0.1:9095,SASL_SSL://...,SSL://...).
func secureBroker(listeners, ca string) (*SecureBroker, error) {
	b := &SecureBroker{CA: ca, Password: defaultSASLPassword, userPrefix: defaultSASLUser}
	if v := os.Getenv("FLOWDEX_KAFKA_SASL_USER"); v != "" {
		b.userPrefix = v
	}
	if v := os.Getenv("FLOWDEX_KAFKA_SASL_PASSWORD"); v != "" {
		b.Password = v
	}
	for _, l := range splitAddrs(listeners) {
		name, addr, ok := strings.Cut(l, "://")
		switch {
		case !ok:
			return nil, fmt.Errorf("listener %q: expected NAME://host:port", l)
		case name == "PLAINTEXT":
			b.Plain = append(b.Plain, addr)
		case name == "SASL_SSL":
			b.SASLSSL = append(b.SASLSSL, addr)
		case name == "SSL":
			b.SSL = append(b.SSL, addr)
		}
	}
	if len(b.Plain) == 0 || len(b.SASLSSL) == 0 || len(b.SSL) == 0 {
		return nil, fmt.Errorf("listeners %q: want PLAINTEXT, SASL_SSL and SSL ones", listeners)
	}
	return b, nil
}

// check: the broker takes the PLAIN user over SASL_SSL, verified against
// the CA, so that a test's failure is not the helper's.
func (b *SecureBroker) check() error {
	tc, err := b.TLSConfig()
	if err != nil {
		return fmt.Errorf("its CA: %w", err)
	}
	mech := plain.Auth{User: b.User("plain"), Pass: b.Password}.AsMechanism()
	if err := ping(b.SASLSSL, kgo.DialTLSConfig(tc), kgo.SASL(mech)); err != nil {
		return fmt.Errorf("user %s over SASL_SSL with CA %s (check FLOWDEX_KAFKA_SASL_USER and FLOWDEX_KAFKA_SASL_PASSWORD): %w",
			b.User("plain"), b.CA, err)
	}
	return nil
}
