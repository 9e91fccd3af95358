package main

// HTTP basic authentication end to end, against an Elasticsearch 8 with
// security on (estest.Secure: HTTPS with a CA the test server was made with).

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// p2esAuthConf writes a p2es plugin configuration with basic authentication
// that reads the print-plugin sample into index-<date>.
func p2esAuthConf(t *testing.T, dir, url, index, user, password string) (conf, input string) {
	t.Helper()
	t.Setenv("REQUESTS_CA_BUNDLE", estest.SecureCA(t)) // p2es's way to trust a CA
	input, _ = filepath.Abs(samples + "print-default.json")
	conf = writeFile(t, dir, "plugin.conf", fmt.Sprintf(`{
    "ES_URL": %q,
    "ES_IndexName": "%s-%%Y-%%m-%%d",
    "ES_AuthType": "basic",
    "ES_UserName": %q,
    "ES_Password": %q,
    "ES_FlushSize": 5,
    "InputFile": %q,
    "InputFormat": "json"
}`, url, index, user, password, input))
	return conf, input
}

// checkIndexed: the run exited 0, its summary counts every record of input
// as indexed, Elasticsearch holds them, and the password was never shown.
func checkIndexed(t *testing.T, code int, stdout, stderr, url, pattern, input, password string) {
	t.Helper()
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	want := len(pmacctRecords(t, input))
	m := summaryRE.FindStringSubmatch(stdout)
	if m == nil || m[2] != fmt.Sprint(want) || m[3] != m[2] || m[5] != "0" {
		t.Errorf("summary %q for %d records", stdout, want)
	}
	if n := estest.Count(t, url, pattern); n != want {
		t.Errorf("%d documents in %s, want %d", n, pattern, want)
	}
	if strings.Contains(stdout+stderr, password) {
		t.Errorf("the password is shown:\n%s%s", stdout, stderr)
	}
}

// p2es's basic authentication keys: ES_AuthType "basic", ES_UserName, ES_Password.
func TestIngestAuthP2ES(t *testing.T) {
	url, user, password := estest.Secure(t)
	index := estest.Index(t, "auth")
	dir := t.TempDir()
	conf, input := p2esAuthConf(t, dir, url, index, user, password)
	code, stdout, stderr := runCLI(t, "", "ingest", "--p2es-config", conf,
		"--dead-letter", filepath.Join(dir, "dead.ndjson"))
	checkIndexed(t, code, stdout, stderr, url, index+"-*", input, password)
}

// A flowdex configuration with the password in a file (and a line end after
// it, as editors write).
func TestIngestAuthPasswordFile(t *testing.T) {
	url, user, password := estest.Secure(t)
	index := estest.Index(t, "authfile")
	dir := t.TempDir()
	input, _ := filepath.Abs(samples + "print-default.json")
	pwFile := writeFile(t, dir, "es.password", password+"\n")
	cfg := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q

[output.es]
type = "elasticsearch"
urls = [%q]
username = %q
password_file = %q
index = "%s-%%Y.%%m.%%d"
replicas = 0
dead_letter_file = %q
ca_cert = %q
`, input, url, user, pwFile, index, filepath.Join(dir, "dead.ndjson"), estest.SecureCA(t)))
	code, stdout, stderr := runCLI(t, "", "ingest", "-c", cfg)
	checkIndexed(t, code, stdout, stderr, url, index+"-*", input, password)
}

// A wrong password, or none, stops ingest before it reads anything: exit
// status 3 and a message that names the 401, without the password.
func TestIngestAuthRefused(t *testing.T) {
	url, user, password := estest.Secure(t)
	wrong := "wrong-" + password
	for _, c := range []struct {
		name string
		conf func(t *testing.T, dir, index string) []string // the command line
		want []string
	}{
		{"p2es wrong password", func(t *testing.T, dir, index string) []string {
			conf, _ := p2esAuthConf(t, dir, url, index, user, wrong)
			return []string{"--p2es-config", conf}
		}, []string{"authentication failed", "HTTP 401", user}},
		{"toml wrong password_env", func(t *testing.T, dir, index string) []string {
			t.Setenv("FLOWDEX_TEST_WRONG_PASSWORD", wrong)
			input, _ := filepath.Abs(samples + "print-default.json")
			return []string{"-c", writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
[output.es]
type = "elasticsearch"
urls = [%q]
username = %q
password_env = "FLOWDEX_TEST_WRONG_PASSWORD"
index = %q
ca_cert = %q
`, input, url, user, index, estest.SecureCA(t)))}
		}, []string{"authentication failed", "HTTP 401", user}},
		{"p2es without ES_AuthType", func(t *testing.T, dir, index string) []string {
			t.Setenv("REQUESTS_CA_BUNDLE", estest.SecureCA(t))
			input, _ := filepath.Abs(samples + "print-default.json")
			return []string{"--p2es-config", writeFile(t, dir, "plugin.conf", fmt.Sprintf(
				`{"ES_URL": %q, "ES_IndexName": %q, "InputFile": %q}`, url, index, input))}
		}, []string{"authentication required", "HTTP 401", "no username"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			index := estest.Index(t, "authrefused")
			dir := t.TempDir()
			args := append([]string{"ingest"}, c.conf(t, dir, index)...)
			args = append(args, "--dead-letter", filepath.Join(dir, "dead.ndjson"))
			code, stdout, stderr := runCLI(t, "", args...)
			t.Logf("exit %d\n%s%s", code, stdout, stderr)
			if code != exitStartup {
				t.Errorf("exit %d, want %d (exitStartup)", code, exitStartup)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			for _, secret := range []string{password, wrong} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("a password is shown:\n%s%s", stdout, stderr)
				}
			}
			if n := estest.Count(t, url, index+"*"); n != 0 {
				t.Errorf("%d documents indexed", n)
			}
		})
	}
}
