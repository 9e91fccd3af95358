package elasticsearch

// HTTP basic authentication and API keys over TLS against a real
// Elasticsearch 8 with security on (estest.Secure: a file-realm superuser,
// HTTPS with a certificate signed by a CA es.sh makes, API keys). These
// tests fail rather than skip without that server when FLOWDEX_REQUIRE_ES=1.

import (
	"context"
	"encoding/base64"
	"log/slog"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/internal/testwatch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// With the right user the sink reads the version, installs its template and
// indexes; the password is never logged.
func TestRealAuth(t *testing.T) {
	url, user, password := estest.Secure(t)
	cfg, prefix := secureConfig(t, url)
	cfg.Username, cfg.Password = user, password
	s, logs := startSink(t, cfg)
	s.logger.Info("configuration", "cfg", cfg)
	writeDocs(t, s, 25, true)
	if st := s.Stats(); st.Indexed != 25 || st.Failed != 0 || st.DeadLettered != 0 {
		t.Errorf("stats %+v, want 25 indexed", st)
	}
	if n := estest.Count(t, url, prefix+"-*"); n != 25 {
		t.Errorf("%d documents in %s-*, want 25", n, prefix)
	}
	for _, d := range estest.Docs(t, url, prefix+"-*") {
		if d.Index != prefix+"-2024.01.01" || d.Source["@timestamp"] != "2024-01-01T00:00:00.000Z" {
			t.Errorf("document %s in %s with @timestamp %v", d.ID, d.Index, d.Source["@timestamp"])
		}
	}
	out := logs.String()
	if !strings.Contains(out, "version="+estest.Version(t, url)) {
		t.Errorf("the server version was not read:\n%s", out)
	}
	if !strings.Contains(out, "index template installed") {
		t.Errorf("no index template installed:\n%s", out)
	}
	if strings.Contains(out, password) {
		t.Errorf("the password is in the log:\n%s", out)
	}
}

// Credentials in the URL (http://user:password@host) work as well.
func TestRealAuthInURL(t *testing.T) {
	url, user, password := estest.Secure(t)
	cfg, prefix := secureConfig(t, url)
	cfg.URLs = []string{withUser(t, url, user, password)}
	s, logs := startSink(t, cfg)
	writeDocs(t, s, 5, true)
	if n := estest.Count(t, url, prefix+"-*"); n != 5 {
		t.Errorf("%d documents in %s-*, want 5", n, prefix)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the password is in the log:\n%s", logs)
	}
}

func withUser(t *testing.T, u, user, password string) string {
	t.Helper()
	pu, err := neturl.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.User = neturl.UserPassword(user, password)
	return pu.String()
}

// Wrong or missing credentials: Start fails with an error that names the
// 401 and never shows the password, and nothing is indexed.
func TestRealAuthRefused(t *testing.T) {
	url, user, password := estest.Secure(t)
	wrong := "wrong-" + password
	for _, c := range []struct {
		name, user, password string
		inURL                bool // the credentials are in the URL
		want                 []string
	}{
		{"wrong password", user, wrong, false, []string{"authentication failed", "HTTP 401", "check the username and password", user}},
		{"unknown user", "nobody-" + user, password, false, []string{"authentication failed", "HTTP 401", "nobody-" + user}},
		{"no credentials", "", "", false, []string{"authentication required", "HTTP 401", "no username"}},
		{"wrong password in the URL", user, wrong, true, []string{"authentication failed", "HTTP 401", user}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, prefix := secureConfig(t, url)
			cfg.Username, cfg.Password = c.user, c.password
			if c.inURL {
				cfg.Username, cfg.Password = "", ""
				cfg.URLs = []string{withUser(t, url, c.user, c.password)}
			}
			var logs testwatch.Log
			s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Start(context.Background())
			if err == nil {
				s.Stop(context.Background())
				t.Fatal("Start succeeded")
			}
			t.Logf("Start: %v", err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q: %v", w, err)
				}
			}
			for _, secret := range []string{password, wrong} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("a password is shown: %v\n%s", err, logs.String())
				}
			}
			var doc document.Document
			pmacctDoc(&doc, 1)
			if err := s.Write(context.Background(), &doc, "", recordTime(&doc, time.UTC)); err != ErrNotStarted {
				t.Errorf("Write after a failed Start: %v, want ErrNotStarted", err)
			}
			if err := s.Stop(context.Background()); err != nil {
				t.Errorf("Stop after a failed Start: %v", err)
			}
			if n := estest.Count(t, url, prefix+"*"); n != 0 {
				t.Errorf("%d documents indexed", n)
			}
		})
	}
}

// secureConfig is realConfig for the secure server, trusting its CA.
func secureConfig(t *testing.T, url string) (Configuration, string) {
	t.Helper()
	cfg, prefix := realConfig(t, url)
	cfg.CACert = estest.SecureCA(t)
	return cfg, prefix
}

// Without the CA that signed the server's certificate, Start fails and says
// so, with or without a spool (a certificate that does not verify is not an
// outage to wait out); a CA file that is not one is refused by New.
func TestRealTLSUnknownCA(t *testing.T) {
	url, user, password := estest.Secure(t)
	for _, spool := range []bool{false, true} {
		cfg, _ := realConfig(t, url)
		cfg.Username, cfg.Password = user, password
		if spool {
			cfg.SpoolDir = t.TempDir()
		}
		s, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Start(context.Background())
		if err == nil {
			s.Stop(context.Background())
			t.Fatalf("spool %v: Start succeeded without the CA", spool)
		}
		for _, w := range []string{"not trusted", "give ca_cert", "unknown authority", url} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("spool %v: the error does not say %q: %v", spool, w, err)
			}
		}
	}
	cfg, _ := realConfig(t, url)
	cfg.CACert = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "ca_cert: open "+cfg.CACert+": no such file") {
		t.Errorf("a missing CA file: %v", err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	cfg.CACert = notPEM
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "ca_cert: "+notPEM+": no PEM certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
}

// An API key (made by the superuser) over TLS: the sink reads the version,
// installs its template and indexes; the key is never logged.
func TestRealAPIKey(t *testing.T) {
	url, _, _ := estest.Secure(t)
	key := estest.APIKey(t)
	cfg, prefix := secureConfig(t, url)
	cfg.APIKey = key
	s, logs := startSink(t, cfg)
	s.logger.Info("configuration", "cfg", cfg)
	writeDocs(t, s, 25, true)
	if st := s.Stats(); st.Indexed != 25 || st.Failed != 0 || st.DeadLettered != 0 {
		t.Errorf("stats %+v, want 25 indexed", st)
	}
	if n := estest.Count(t, url, prefix+"-*"); n != 25 {
		t.Errorf("%d documents in %s-*, want 25", n, prefix)
	}
	out := logs.String()
	if !strings.Contains(out, "version="+estest.Version(t, url)) || !strings.Contains(out, "index template installed") {
		t.Errorf("no version read or no template installed:\n%s", out)
	}
	if strings.Contains(out, key) || !strings.Contains(out, "api_key=REDACTED") {
		t.Errorf("the API key is in the log, or not shown as set:\n%s", out)
	}
}

// A wrong API key (a real key's id with another secret) fails Start with an
// error that names the 401 and Elasticsearch's reason, never the key; a key
// together with a username is refused by New.
func TestRealAPIKeyRefused(t *testing.T) {
	url, user, password := estest.Secure(t)
	key := estest.APIKey(t)
	raw, err := base64.StdEncoding.DecodeString(key)
	id, _, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok {
		t.Fatalf("the key is not base64 of id:secret: %v", err)
	}
	wrong := base64.StdEncoding.EncodeToString([]byte(id + ":wrong-secret-0123456789"))
	cfg, prefix := secureConfig(t, url)
	cfg.APIKey = wrong
	var logs testwatch.Log
	s, err := New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil {
		s.Stop(context.Background())
		t.Fatal("Start succeeded with a wrong API key")
	}
	t.Logf("Start: %v", err)
	for _, w := range []string{"authentication failed with the API key", "HTTP 401", "unable to authenticate", url} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the error does not say %q: %v", w, err)
		}
	}
	for _, secret := range []string{key, wrong} {
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("an API key is shown: %v\n%s", err, logs.String())
		}
	}
	s.Stop(context.Background())
	if n := estest.Count(t, url, prefix+"*"); n != 0 {
		t.Errorf("%d documents indexed", n)
	}

	cfg.Username, cfg.Password = user, password
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "one way to authenticate") {
		t.Errorf("an API key and a password: %v", err)
	}
}

// InsecureSkipVerify connects without the CA, with a warning at Start.
func TestRealTLSInsecureSkipVerify(t *testing.T) {
	url, user, password := estest.Secure(t)
	cfg, prefix := realConfig(t, url) // no CA
	cfg.Username, cfg.Password = user, password
	cfg.InsecureSkipVerify = true
	s, logs := startSink(t, cfg)
	writeDocs(t, s, 5, true)
	if n := estest.Count(t, url, prefix+"-*"); n != 5 {
		t.Errorf("%d documents in %s-*, want 5", n, prefix)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "NOT verified") {
		t.Errorf("no warning that certificates are not verified:\n%s", out)
	}
}
