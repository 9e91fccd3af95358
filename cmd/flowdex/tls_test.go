package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// flowdex into the secure Elasticsearch: HTTPS verified against the CA the
// test's server was made with (ca_cert), the password from the environment.
// Without ca_cert, or with a wrong password, run fails and says why; the
// password is never printed.
func TestRunOverTLS(t *testing.T) {
	url, user, password := estest.Secure(t)
	ca := estest.SecureCA(t)
	index := estest.Index(t, "flowdex-test-tls")
	dir := t.TempDir()
	input, err := filepath.Abs("../../collector/pmacct/testdata/out/print-default.json")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := readLines(input)
	if err != nil {
		t.Fatal(err)
	}
	config := func(caCert string) string {
		c := fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
[output.es]
type = "elasticsearch"
urls = [%q]
username = %q
password_env = "FLOWDEX_TEST_TLS_PASSWORD"
index = "%s-%%Y.%%m"
replicas = 0
`, input, url, user, index)
		if caCert != "" {
			c += fmt.Sprintf("ca_cert = %q\n", caCert)
		}
		return writeFile(t, dir, "flowdex.toml", c)
	}

	t.Setenv("FLOWDEX_TEST_TLS_PASSWORD", "wrong-"+password)
	code, _, stderr := runCLI(t, "", "run", "-c", config(ca))
	if code == 0 || !strings.Contains(stderr, "authentication failed") || !strings.Contains(stderr, "401") {
		t.Errorf("wrong password: exit %d\n%s", code, stderr)
	}
	t.Setenv("FLOWDEX_TEST_TLS_PASSWORD", password)
	code, _, stderr = runCLI(t, "", "run", "-c", config(""))
	if code == 0 || !strings.Contains(stderr, "not trusted") || !strings.Contains(stderr, "ca_cert") {
		t.Errorf("no CA: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "", "run", "-c", config(ca))
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, password) {
		t.Errorf("the password is printed:\n%s%s", stdout, stderr)
	}
	// every line of the pmacct file is one document
	if n := estest.Count(t, url, index+"-*"); n != len(lines) || n == 0 {
		t.Errorf("%d documents in %s-*, want %d", n, index, len(lines))
	}
	code, stdout, _ = runCLI(t, "", "check", "-c", config(ca))
	if code != 0 || strings.Contains(stdout, password) || !strings.Contains(stdout, "ca_cert") {
		t.Errorf("check: exit %d\n%s", code, stdout)
	}
}

// flowdex run into the secure Elasticsearch with an API key from the
// environment (api_key_env) and the test CA (ca_cert): every record is
// indexed, and neither run nor check prints the key. A key that Elasticsearch
// does not know fails run with the 401.
func TestRunOverTLSWithAPIKey(t *testing.T) {
	url, _, _ := estest.Secure(t)
	ca := estest.SecureCA(t)
	key := estest.APIKey(t)
	index := estest.Index(t, "flowdex-test-tls-key")
	dir := t.TempDir()
	input, err := filepath.Abs("../../collector/pmacct/testdata/out/print-default.json")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := readLines(input)
	if err != nil {
		t.Fatal(err)
	}
	config := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = %q
[output.es]
type = "elasticsearch"
urls = [%q]
api_key_env = "FLOWDEX_TEST_TLS_API_KEY"
ca_cert = %q
index = "%s-%%Y.%%m"
replicas = 0
`, input, url, ca, index))

	t.Setenv("FLOWDEX_TEST_TLS_API_KEY", base64.StdEncoding.EncodeToString([]byte("no-such-id:no-such-secret")))
	code, _, stderr := runCLI(t, "", "run", "-c", config)
	if code == 0 || !strings.Contains(stderr, "authentication failed with the API key") || !strings.Contains(stderr, "401") {
		t.Errorf("unknown key: exit %d\n%s", code, stderr)
	}
	t.Setenv("FLOWDEX_TEST_TLS_API_KEY", key)
	code, stdout, stderr := runCLI(t, "", "run", "-c", config)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, key) {
		t.Errorf("the API key is printed:\n%s%s", stdout, stderr)
	}
	// every line of the pmacct file is one document
	if n := estest.Count(t, url, index+"-*"); n != len(lines) || n == 0 {
		t.Errorf("%d documents in %s-*, want %d", n, index, len(lines))
	}
	code, stdout, _ = runCLI(t, "", "check", "-c", config)
	if code != 0 || strings.Contains(stdout, key) || !strings.Contains(stdout, `api_key_env = "FLOWDEX_TEST_TLS_API_KEY"`) {
		t.Errorf("check: exit %d\n%s", code, stdout)
	}
}

// An API key from a file is read, refused together with a password, and
// never printed by check.
func TestCheckAPIKey(t *testing.T) {
	dir := t.TempDir()
	const key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
	os.WriteFile(filepath.Join(dir, "key"), []byte(key+"\n"), 0o600)
	base := "[[input]]\ntype = \"pmacct\"\nfile = \"-\"\n[output.es]\ntype = \"elasticsearch\"\nurls = [\"https://127.0.0.1:9200\"]\n"
	good := writeFile(t, dir, "good.toml", base+"api_key = \""+key+"\"\n")
	code, stdout, stderr := runCLI(t, "", "check", "-c", good)
	if code != 0 || strings.Contains(stdout, key) || !strings.Contains(stdout, `api_key = "********"`) {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	both := writeFile(t, dir, "both.toml", base+"api_key_file = \"key\"\nusername = \"u\"\npassword = \"p\"\n")
	code, _, stderr = runCLI(t, "", "check", "-c", both)
	if code == 0 || !strings.Contains(stderr, "one way to authenticate") {
		t.Errorf("key and password: exit %d\n%s", code, stderr)
	}
}
