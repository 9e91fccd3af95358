// Package estest gives Go tests a real Elasticsearch: it finds a running one
// or starts one with es.sh (next to this file), and has small helpers to
// name, read and clean up test indices.
//
// Where the server comes from, for URL (Elasticsearch 8) and URL9
// (Elasticsearch 9):
//
//  1. FLOWDEX_TEST_ES_URL / FLOWDEX_TEST_ES9_URL, if set;
//  2. else whatever answers on http://127.0.0.1:9200 / :9201;
//  3. else `es.sh start 8` / `es.sh start 9`, under a file lock so that the
//     test binaries of several packages, which `go test ./...` runs in
//     parallel, start it only once. The node is left running for the next
//     run; `es.sh stop 8` (or `make es-stop`) stops it.
//
// Secure is the same for an Elasticsearch 8 with security on (HTTPS, HTTP
// basic authentication, API keys): FLOWDEX_TEST_ES_SECURE_URL, else
// https://127.0.0.1:9202, else `es.sh start 8s`. Its credentials are
// FLOWDEX_ES_SECURE_USER and FLOWDEX_ES_SECURE_PASSWORD (the defaults of es.sh
// when unset), or the userinfo of FLOWDEX_TEST_ES_SECURE_URL
// (https://user:password@host:port). Its certificate is verified against the
// CA of FLOWDEX_TEST_ES_SECURE_CA (a PEM file), else the one `es.sh ca 8s`
// names, besides the system's; SecureCA returns that file's path, for the
// code under test. APIKey makes an API key on it.
//
// FLOWDEX_TEST_NO_ES=1 skips the tests that need a server without looking
// for one (make quick). When no server can be had the test is skipped, or
// fails when CI=true or FLOWDEX_REQUIRE_ES=1. A URL given in the environment that does not answer
// always fails the test: someone asked for that server.
//
// The helpers (Index's cleanup, Docs, Count, Refresh, Search, Version) send
// the secure server's credentials with every request to the URL Secure
// returned, so tests pass that URL as it is. Credentials in a URL's userinfo
// are used too, for any server.
package estest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testscript"
)

// server is one Elasticsearch that tests can ask for.
type server struct {
	major  int    // 8 or 9
	arg    string // es.sh's VERSION argument
	envURL string // environment variable naming an existing server
	port   int    // default HTTP port of es.sh for this server
	secure bool   // security on: requests need user (below)

	mu   sync.Mutex // held while finding or starting it
	done bool
	url  string        // without credentials
	user *url.Userinfo // the secure server's user and password
	err  error
	must bool // err fails the test even when skipping is allowed
}

var (
	es8    = &server{major: 8, arg: "8", envURL: "FLOWDEX_TEST_ES_URL", port: 9200}
	es9    = &server{major: 9, arg: "9", envURL: "FLOWDEX_TEST_ES9_URL", port: 9201}
	secure = &server{major: 8, arg: "8s", envURL: "FLOWDEX_TEST_ES_SECURE_URL", port: 9202, secure: true}

	servers = []*server{es8, es9, secure}
)

// The test credentials of the secure server; es.sh has the same defaults.
const (
	defaultSecureUser     = "flowdex-test"
	defaultSecurePassword = "fdx-test-Pw-4b7e91c2d05a"
)

// startTimeout bounds one `es.sh start`: a cold start downloads about
// 100 MB through Maven, unpacks it and waits up to 120 s for the node.
const startTimeout = 10 * time.Minute

// client trusts the system's authorities and, once found, the secure
// server's test CA (see trustCA).
var client = &http.Client{Timeout: 60 * time.Second, Transport: &caTransport{}}

// caTransport is an http.Transport that can be swapped for one trusting one
// more CA while requests run.
type caTransport struct {
	t atomic.Pointer[http.Transport]
}

func (c *caTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t := c.t.Load(); t != nil {
		return t.RoundTrip(r)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// secureCA is the path of the secure server's CA certificate, once known.
var secureCA atomic.Value // string

// trustCA makes client trust the CA in path (the secure server's).
func trustCA(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("the secure server's CA: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("the secure server's CA %s holds no PEM certificate", path)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client.Transport.(*caTransport).t.Store(t)
	secureCA.Store(path)
	return nil
}

// findCA is FLOWDEX_TEST_ES_SECURE_CA, else what `es.sh ca 8s` says ("" if
// it has none yet).
func findCA() string {
	if p := os.Getenv("FLOWDEX_TEST_ES_SECURE_CA"); p != "" {
		return p
	}
	script, err := scriptPath()
	if err != nil {
		return ""
	}
	out, err := exec.Command("bash", script, "ca", "8s").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// SecureCA returns the path of the CA certificate that signed the secure
// server's (starting the server if need be).
func SecureCA(t testing.TB) string {
	t.Helper()
	secure.get(t)
	p, _ := secureCA.Load().(string)
	if p == "" {
		t.Fatalf("estest: the secure server's CA is unknown")
	}
	return p
}

// APIKey creates an API key on the secure server (starting it if need be)
// as its superuser, with the superuser's privileges, and returns its base64
// "encoded" value, what an "Authorization: ApiKey ..." header carries. The
// key is invalidated when the test ends.
func APIKey(t testing.TB) string {
	t.Helper()
	u, _, _ := Secure(t)
	body, err := json.Marshal(map[string]any{"name": indexName("flowdex", t.Name(), "key"), "expiration": "1d"})
	if err != nil {
		t.Fatalf("estest: %v", err)
	}
	code, b, err := do(http.MethodPost, u+"/_security/api_key", body)
	if err != nil {
		t.Fatalf("estest: POST %s/_security/api_key: %v", u, err)
	}
	if code != http.StatusOK {
		hint := ""
		if bytes.Contains(b, []byte("pattern_capture")) {
			// see secure_home in es.sh
			hint = " (the server lacks the analysis plugin es.sh builds for API keys: is there a JDK with javac? Restart it with es.sh stop 8s; es.sh start 8s)"
		}
		t.Fatalf("estest: POST %s/_security/api_key: HTTP %d: %s%s", u, code, b, hint)
	}
	var r struct {
		ID      string `json:"id"`
		Encoded string `json:"encoded"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" || r.Encoded == "" {
		t.Fatalf("estest: POST %s/_security/api_key: no key in the answer (%v)", u, err)
	}
	t.Cleanup(func() {
		body, _ := json.Marshal(map[string]any{"ids": []string{r.ID}})
		if code, b, err := do(http.MethodDelete, u+"/_security/api_key", body); err != nil || code != http.StatusOK {
			t.Errorf("estest: invalidating API key %s: HTTP %d, %v: %s", r.ID, code, err, b)
		}
	})
	return r.Encoded
}

// URL returns the base URL (no trailing slash) of a running Elasticsearch
// 8, starting one if need be (see the package doc).
func URL(t testing.TB) string {
	t.Helper()
	return es8.get(t)
}

// Server is a version of Elasticsearch the tests run against.
type Server struct {
	Name string // "es8", "es9": a subtest's name
	URL  func(testing.TB) string
}

// Servers are the versions every indexing test runs against.
var Servers = []Server{{"es8", URL}, {"es9", URL9}}

// URL9 is URL for Elasticsearch 9.
func URL9(t testing.TB) string {
	t.Helper()
	return es9.get(t)
}

// Secure returns the base URL (no credentials in it, no trailing slash) of
// a running Elasticsearch 8 with security on, and the user and password of
// a superuser on it, starting one if need be (see the package doc).
func Secure(t testing.TB) (url, user, password string) {
	t.Helper()
	u := secure.get(t)
	secure.mu.Lock()
	ui := secure.user
	secure.mu.Unlock()
	password, _ = ui.Password()
	return u, ui.Username(), password
}

func (s *server) get(t testing.TB) string {
	t.Helper()
	if os.Getenv("FLOWDEX_TEST_NO_ES") == "1" && !required() {
		t.Skipf("estest: FLOWDEX_TEST_NO_ES=1: no %s (the quick suite)", s)
	}
	s.mu.Lock()
	if !s.done {
		s.url, s.must, s.err = s.find()
		if s.err == nil && s.user != nil {
			setCredentials(s.url, s.user)
		}
		s.done = true // one attempt per test binary: do not wait 2 min in every test
	}
	u, must, err := s.url, s.must, s.err
	s.mu.Unlock()
	if err == nil {
		return u
	}
	if must || required() {
		t.Fatalf("estest: %s: %v", s, err)
	}
	t.Skipf("estest: no %s (CI=true or FLOWDEX_REQUIRE_ES=1 make this a failure): %v", s, err)
	return ""
}

func (s *server) String() string {
	if s.secure {
		return fmt.Sprintf("Elasticsearch %d with security", s.major)
	}
	return fmt.Sprintf("Elasticsearch %d", s.major)
}

// required tells whether a missing server must fail the test.
func required() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci || os.Getenv("FLOWDEX_REQUIRE_ES") == "1"
}

// find returns the server's URL and, for the secure server, sets s.user;
// must says an error is not to be skipped.
func (s *server) find() (u string, must bool, err error) {
	if s.secure {
		user, password := os.Getenv("FLOWDEX_ES_SECURE_USER"), os.Getenv("FLOWDEX_ES_SECURE_PASSWORD")
		if user == "" {
			user = defaultSecureUser
		}
		if password == "" {
			password = defaultSecurePassword
		}
		s.user = url.UserPassword(user, password)
		if ca := findCA(); ca != "" {
			if err := trustCA(ca); err != nil {
				return "", true, err
			}
		}
	}
	if v := os.Getenv(s.envURL); v != "" {
		u = strings.TrimRight(v, "/")
		if s.secure { // credentials in the URL win over the variables
			pu, err := url.Parse(u)
			if err != nil || pu.Scheme == "" || pu.Host == "" {
				return "", true, fmt.Errorf("%s is not a URL like %s", s.envURL, s.defaultURL())
			}
			if pu.User != nil {
				s.user, pu.User = pu.User, nil
				u = pu.String()
			}
		}
		if err := s.check(u); err != nil {
			return "", true, fmt.Errorf("%s=%s: %w", s.envURL, redact(u, u), err)
		}
		return u, false, nil
	}
	u = s.defaultURL()
	switch herr := s.healthy(u); {
	case herr == nil:
		err = s.check(u)
	case errors.Is(herr, errUnauthorized):
		// A server is there, but it refuses our credentials: starting
		// another one on its port cannot help.
		err = herr
	default:
		u, err = s.start()
	}
	if err != nil {
		return "", false, err
	}
	return u, false, nil
}

// check: u is a healthy Elasticsearch of the wanted major version; the
// secure one refuses requests without credentials.
func (s *server) check(u string) error {
	if err := s.healthy(u); err != nil {
		return err
	}
	v, err := serverVersion(s.withUser(u))
	if err != nil {
		return err
	}
	if !strings.HasPrefix(v, strconv.Itoa(s.major)+".") {
		return fmt.Errorf("%s serves Elasticsearch %s, not %d.x", u, v, s.major)
	}
	if s.secure {
		code, _, err := doAs(http.MethodGet, u+"/_cluster/health", nil, nil)
		if err != nil {
			return err
		}
		if code != http.StatusUnauthorized {
			return fmt.Errorf("%s answers HTTP %d without credentials, not 401: security is off", u, code)
		}
	}
	return nil
}

// healthy is the package's healthy with the server's credentials.
func (s *server) healthy(u string) error {
	err := healthy(s.withUser(u))
	if errors.Is(err, errUnauthorized) && s.secure {
		return fmt.Errorf("%w: user %q refused (check FLOWDEX_ES_SECURE_USER and FLOWDEX_ES_SECURE_PASSWORD, or the credentials in %s)", err, s.user.Username(), s.envURL)
	}
	return err
}

// withUser returns u with the server's credentials as userinfo, if it has any.
func (s *server) withUser(u string) string {
	if s.user == nil {
		return u
	}
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	pu.User = s.user
	return pu.String()
}

// start runs `es.sh start MAJOR` under an exclusive lock on a file in the
// es.sh cache dir, and checks the URL it prints last.
func (s *server) start() (string, error) {
	script, err := scriptPath()
	if err != nil {
		return "", err
	}
	dir := testscript.CacheDir("es", "FLOWDEX_ES_HOME")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "estest-"+s.arg+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close() // closing drops the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	// Another test process may have started it while we waited.
	if s.secure {
		if ca := findCA(); ca != "" {
			_ = trustCA(ca)
		}
	}
	if u := s.defaultURL(); s.healthy(u) == nil {
		return u, s.check(u)
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "start", s.arg)
	// The tests look on the default ports, so es.sh must start it there.
	env := testscript.WithoutEnv(os.Environ(), "FLOWDEX_ES_PORT", "FLOWDEX_ES_TRANSPORT_PORT",
		"FLOWDEX_ES_SECURE_USER", "FLOWDEX_ES_SECURE_PASSWORD")
	if s.secure { // the user es.sh creates is ours
		password, _ := s.user.Password()
		env = append(env, "FLOWDEX_ES_SECURE_USER="+s.user.Username(), "FLOWDEX_ES_SECURE_PASSWORD="+password)
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second // in case a child keeps our pipes open
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s start %s: %v\n%s", script, s.arg, err, testscript.Tail(stderr.String(), 40))
	}
	u := testscript.LastLine(stdout.String())
	if s.secure { // a new CA with each start
		if err := trustCA(findCA()); err != nil {
			return "", err
		}
	}
	if err := s.check(u); err != nil {
		return "", fmt.Errorf("%s start %s printed %q: %w\n%s", script, s.arg, u, err, testscript.Tail(stderr.String(), 40))
	}
	return u, nil
}

// defaultURL is where es.sh starts the server: the secure one serves HTTPS.
func (s *server) defaultURL() string {
	if s.secure {
		return fmt.Sprintf("https://127.0.0.1:%d", s.port)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", s.port)
}

// scriptPath finds es.sh beside this source file.
func scriptPath() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate es.sh: runtime.Caller failed")
	}
	p := filepath.Join(filepath.Dir(file), "es.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("cannot locate es.sh (built with -trimpath?): %w", err)
	}
	return p, nil
}

// ---------------------------------------------------------------------------
// HTTP

// credentials maps the origin (scheme://host:port) of each secure server
// found in this process to its user and password. It is apart from the
// servers' locks, which are held while a server is checked.
var credentials sync.Map // string -> *url.Userinfo

func setCredentials(u string, ui *url.Userinfo) {
	if o := origin(u); o != "" {
		credentials.Store(o, ui)
	}
}

func origin(u string) string {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return ""
	}
	return strings.ToLower(pu.Scheme + "://" + pu.Host)
}

// do sends one request and returns the status and body. body may be nil.
// The credentials are those of u's userinfo, else those of the secure
// server if u is on it.
func do(method, u string, body []byte) (int, []byte, error) {
	return doAs(method, u, body, known)
}

// known sets the credentials of the secure server on a request to it.
func known(req *http.Request) {
	if v, ok := credentials.Load(origin(req.URL.String())); ok {
		ui := v.(*url.Userinfo)
		password, _ := ui.Password()
		req.SetBasicAuth(ui.Username(), password)
	}
}

// authorize moves the credentials of the request's URL into its header,
// or, when it has none, calls auth (if not nil) to set them.
func authorize(req *http.Request, auth func(*http.Request)) {
	if ui := req.URL.User; ui != nil {
		password, _ := ui.Password()
		req.SetBasicAuth(ui.Username(), password)
		req.URL.User = nil
	} else if auth != nil {
		auth(req)
	}
}

// doAs is do with the credentials of u's userinfo, else those auth (if not
// nil) sets.
func doAs(method, u string, body []byte, auth func(*http.Request)) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		return 0, nil, errors.New(redact(err.Error(), u))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	authorize(req, auth)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err // net/http leaves userinfo out of its errors
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// redact replaces the URL u in s by u without its password.
func redact(s, u string) string {
	pu, err := url.Parse(u)
	if err != nil || pu.User == nil {
		return s
	}
	return strings.ReplaceAll(s, u, pu.Redacted())
}

// Call sends a request with a JSON body (nil for none) to the test server,
// fails the test unless it answers 2xx, and decodes its answer into out (if
// not nil): for what the other helpers do not do (a mapping, a deletion).
func Call(t testing.TB, method, url string, body []byte, out any) {
	t.Helper()
	call(t, method, url, body, out)
}

// call is do that fails the test unless the status is 2xx, and decodes a
// JSON answer into out (if not nil).
func call(t testing.TB, method, u string, body []byte, out any) {
	t.Helper()
	code, b, err := do(method, u, body)
	check(t, method, u, code, b, err, out)
}

// callIndex is call for a request that reads index (a name or pattern):
// _refresh, _count, _search. While a primary shard of the index is starting
// (an index that a sink under test has just created, still in its first bulk
// request: slower on a loaded machine), Elasticsearch answers 503
// no_shard_available_action_exception; the request is made again once the
// cluster health says the index's primaries are active, for up to 30 s.
func callIndex(t testing.TB, method, url, index, path string, body []byte, out any) {
	t.Helper()
	u := url + "/" + index + path
	deadline := time.Now().Add(30 * time.Second)
	code, b, err := do(method, u, body)
	for err == nil && code == http.StatusServiceUnavailable && bytes.Contains(b, []byte("no_shard_available_action_exception")) &&
		time.Now().Before(deadline) {
		do(http.MethodGet, url+"/_cluster/health/"+index+"?wait_for_status=yellow&timeout=5s", nil)
		time.Sleep(50 * time.Millisecond)
		code, b, err = do(method, u, body)
	}
	check(t, method, u, code, b, err, out)
}

// check fails the test unless a request succeeded with a 2xx status, and
// decodes a JSON answer into out (if not nil).
func check(t testing.TB, method, u string, code int, b []byte, err error, out any) {
	t.Helper()
	if err != nil {
		t.Fatalf("estest: %s %s: %v", method, redact(u, u), err)
	}
	if code/100 != 2 {
		t.Fatalf("estest: %s %s: HTTP %d: %s", method, redact(u, u), code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("estest: %s %s: decoding %s: %v", method, u, b, err)
		}
	}
}

// errUnauthorized: the server asks for other credentials (HTTP 401).
var errUnauthorized = errors.New("HTTP 401 (authentication failed)")

// healthy: the cluster at u answers and is not red. The credentials are
// those of do.
func healthy(u string) error {
	req, err := http.NewRequest(http.MethodGet, u+"/_cluster/health", nil)
	if u = redact(u, u); err != nil {
		return fmt.Errorf("%s: %v", u, redact(err.Error(), u))
	}
	authorize(req, known)
	c := http.Client{Timeout: 3 * time.Second, Transport: client.Transport}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Status string `json:"status"`
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s/_cluster/health: %w", u, errUnauthorized)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/_cluster/health: HTTP %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return fmt.Errorf("%s/_cluster/health: %v", u, err)
	}
	if h.Status != "green" && h.Status != "yellow" {
		return fmt.Errorf("%s: cluster health is %q", u, h.Status)
	}
	return nil
}

// serverVersion reads the version from the nodes info API. (`GET /` is no
// help: the integ-test distribution has no handler for it.)
func serverVersion(u string) (string, error) {
	code, b, err := do(http.MethodGet, u+"/_nodes/_local?filter_path=nodes.*.version", nil)
	u = redact(u, u)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("%s/_nodes/_local: HTTP %d: %s", u, code, b)
	}
	var r struct {
		Nodes map[string]struct {
			Version string `json:"version"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("%s/_nodes/_local: %v", u, err)
	}
	for _, n := range r.Nodes {
		if n.Version != "" {
			return n.Version, nil
		}
	}
	return "", fmt.Errorf("%s/_nodes/_local: no version in %s", u, b)
}

// Version returns the version number of the server at url, e.g. "8.19.21".
func Version(t testing.TB, url string) string {
	t.Helper()
	v, err := serverVersion(url)
	if err != nil {
		t.Fatalf("estest: %v", err)
	}
	return v
}

// ---------------------------------------------------------------------------
// Index names and cleanup

// Index returns a fresh, lowercase name for this test's indices, e.g.
// "flows-testsink-bulk-3f9a1c07": prefix, the test's name, a random suffix.
// Use it as an index name or as the start of several. When the test ends,
// every data stream, index, index template (composable and legacy) and
// component template whose name starts with it is deleted, on each server
// that URL, URL9 and Secure have returned in this process.
func Index(t testing.TB, prefix string) string {
	t.Helper()
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("estest: %v", err)
	}
	name := indexName(prefix, t.Name(), hex.EncodeToString(rnd[:]))
	t.Cleanup(func() {
		for _, s := range servers {
			s.mu.Lock()
			u := s.url
			s.mu.Unlock()
			if u == "" {
				continue
			}
			if err := deleteAll(u, name); err != nil {
				t.Errorf("estest: cleaning up %s* on %s: %v", name, u, err)
			}
		}
	})
	return name
}

// indexName builds prefix-test-suffix from characters that are valid in
// an index name; the test part is cut to 40 characters so that callers
// can still append their own suffixes within ES's 255-byte limit.
func indexName(prefix, test, suffix string) string {
	p := sanitize(prefix)
	if p == "" {
		p = "test"
	}
	n := sanitize(test)
	if len(n) > 40 {
		n = strings.TrimRight(n[:40], "-")
	}
	parts := []string{p}
	if n != "" {
		parts = append(parts, n)
	}
	return strings.Join(append(parts, suffix), "-")
}

// sanitize lowercases s and replaces runs of anything but [a-z0-9] by "-".
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// deleteAll removes what a test created under name. Wildcard deletes of
// indices are refused by default (action.destructive_requires_name), so
// indices are listed first and deleted by name. Data streams go first: a
// template in use by one cannot be deleted.
func deleteAll(u, name string) error {
	pattern := url.PathEscape(name) + "*"
	var errs []error

	// Data streams (absent from the integ-test distribution: 400/404/405 there).
	if code, b, err := do(http.MethodGet, u+"/_data_stream/"+pattern+"?expand_wildcards=all", nil); err != nil {
		errs = append(errs, err)
	} else if code == http.StatusOK {
		var r struct {
			DataStreams []struct {
				Name string `json:"name"`
			} `json:"data_streams"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			errs = append(errs, err)
		}
		for _, ds := range r.DataStreams {
			errs = append(errs, del(u+"/_data_stream/"+url.PathEscape(ds.Name)))
		}
	}

	// Indices, in batches so that the URL stays short.
	var idx []struct {
		Index string `json:"index"`
	}
	if err := getJSON(u+"/_cat/indices/"+pattern+"?format=json&h=index&expand_wildcards=all", &idx); err != nil {
		errs = append(errs, err)
	}
	for i := 0; i < len(idx); i += 50 {
		var names []string
		for _, x := range idx[i:min(i+50, len(idx))] {
			names = append(names, url.PathEscape(x.Index))
		}
		errs = append(errs, del(u+"/"+strings.Join(names, ",")+"?expand_wildcards=all"))
	}

	// Composable index templates, then legacy ones, then component templates.
	var it struct {
		IndexTemplates []struct {
			Name string `json:"name"`
		} `json:"index_templates"`
	}
	if err := getJSON(u+"/_index_template/"+pattern, &it); err != nil {
		errs = append(errs, err)
	}
	for _, x := range it.IndexTemplates {
		errs = append(errs, del(u+"/_index_template/"+url.PathEscape(x.Name)))
	}
	var lt map[string]json.RawMessage
	if err := getJSON(u+"/_template/"+pattern, &lt); err != nil {
		errs = append(errs, err)
	}
	for n := range lt {
		errs = append(errs, del(u+"/_template/"+url.PathEscape(n)))
	}
	var ct struct {
		ComponentTemplates []struct {
			Name string `json:"name"`
		} `json:"component_templates"`
	}
	if err := getJSON(u+"/_component_template/"+pattern, &ct); err != nil {
		errs = append(errs, err)
	}
	for _, x := range ct.ComponentTemplates {
		errs = append(errs, del(u+"/_component_template/"+url.PathEscape(x.Name)))
	}
	return errors.Join(errs...)
}

// getJSON decodes a 200 answer into out; a 404 (nothing matched) leaves
// out as it is.
func getJSON(u string, out any) error {
	code, b, err := do(http.MethodGet, u, nil)
	switch {
	case err != nil:
		return err
	case code == http.StatusNotFound:
		return nil
	case code != http.StatusOK:
		return fmt.Errorf("GET %s: HTTP %d: %s", u, code, b)
	}
	return json.Unmarshal(b, out)
}

func del(u string) error {
	code, b, err := do(http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	if code/100 != 2 && code != http.StatusNotFound {
		return fmt.Errorf("DELETE %s: HTTP %d: %s", u, code, b)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Reading back

// Doc is one search hit.
type Doc struct {
	ID     string
	Index  string
	Source map[string]any
}

// maxHits is the most hits one search returns (index.max_result_window).
const maxHits = 10000

// Refresh makes everything indexed so far in index (a name or pattern)
// visible to search.
func Refresh(t testing.TB, url, index string) {
	t.Helper()
	callIndex(t, http.MethodPost, url, index, "/_refresh", nil, nil)
}

// Search runs the query body (a JSON search request; "" for match_all) on
// index and returns the hits' _source. Unless body sets "size", up to
// 10000 hits are returned. It does not refresh: see Refresh and Docs.
func Search(t testing.TB, url, index, body string) []map[string]any {
	t.Helper()
	docs := search(t, url, index, body)
	out := make([]map[string]any, len(docs))
	for i, d := range docs {
		out[i] = d.Source
	}
	return out
}

// Docs refreshes indexPattern and returns all its documents, sorted by ID
// (then index). It fails the test if there are more than 10000.
func Docs(t testing.TB, url, indexPattern string) []Doc {
	t.Helper()
	Refresh(t, url, indexPattern)
	docs := search(t, url, indexPattern, `{"query":{"match_all":{}},"track_total_hits":true}`)
	sort.Slice(docs, func(i, j int) bool {
		if docs[i].ID != docs[j].ID {
			return docs[i].ID < docs[j].ID
		}
		return docs[i].Index < docs[j].Index
	})
	return docs
}

// CreateIndex makes the empty index name, one shard and no replica.
func CreateIndex(t testing.TB, url, name string) {
	t.Helper()
	call(t, http.MethodPut, url+"/"+name, []byte(`{"settings":{"number_of_shards":1,"number_of_replicas":0}}`), nil)
}

// Indices lists every index whose name starts with prefix, hidden and
// closed ones too, sorted.
func Indices(t testing.TB, url, prefix string) []string {
	t.Helper()
	var rows []struct{ Index string }
	call(t, http.MethodGet, url+"/_cat/indices/"+prefix+"*?format=json&h=index&expand_wildcards=all", nil, &rows)
	names := make([]string, 0, len(rows))
	for _, r := range rows {
		names = append(names, r.Index)
	}
	sort.Strings(names)
	return names
}

// Count refreshes indexPattern and returns how many documents it holds.
func Count(t testing.TB, url, indexPattern string) int {
	t.Helper()
	Refresh(t, url, indexPattern)
	var r struct {
		Count int `json:"count"`
	}
	callIndex(t, http.MethodGet, url, indexPattern, "/_count", nil, &r)
	return r.Count
}

func search(t testing.TB, url, index, body string) []Doc {
	t.Helper()
	req := map[string]any{}
	if strings.TrimSpace(body) != "" {
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatalf("estest: search body is not a JSON object: %v", err)
		}
	}
	_, sized := req["size"]
	if !sized {
		req["size"] = maxHits
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("estest: %v", err)
	}
	var r struct {
		Hits struct {
			Total *struct {
				Value    int    `json:"value"`
				Relation string `json:"relation"`
			} `json:"total"`
			Hits []struct {
				Index  string         `json:"_index"`
				ID     string         `json:"_id"`
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	callIndex(t, http.MethodPost, url, index, "/_search", b, &r)
	// Never truncate silently: without a size of the caller's, all hits count.
	if tot := r.Hits.Total; !sized && tot != nil && (tot.Relation == "gte" || tot.Value > len(r.Hits.Hits)) {
		t.Fatalf("estest: more documents match in %s than the %d one search returns", index, maxHits)
	}
	docs := make([]Doc, len(r.Hits.Hits))
	for i, h := range r.Hits.Hits {
		docs[i] = Doc{ID: h.ID, Index: h.Index, Source: h.Source}
	}
	return docs
}
