package estest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestIndexName(t *testing.T) {
	for _, c := range []struct{ prefix, test, want string }{
		{"flows", "TestSink/Bulk_retry#01", "flows-testsink-bulk-retry-01-abcd1234"},
		{"Flows_V2", "TestX", "flows-v2-testx-abcd1234"},
		{"", "TestX", "test-testx-abcd1234"},
		{"-x-", "", "x-abcd1234"},
		{"p", strings.Repeat("TestLong", 20), "p-" + strings.Repeat("testlong", 5) + "-abcd1234"},
	} {
		if got := indexName(c.prefix, c.test, "abcd1234"); got != c.want {
			t.Errorf("indexName(%q, %q) = %q, want %q", c.prefix, c.test, got, c.want)
		}
	}
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	if n := Index(t, "Weird Prefix!"); !valid.MatchString(n) {
		t.Errorf("Index gave %q, not a plain lowercase name", n)
	}
}

// A search of an index whose primary shard is still starting (503
// no_shard_available_action_exception) waits for the cluster health to say
// it is active, then asks again.
func TestCountWaitsForPrimaries(t *testing.T) {
	var counts, healths int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/flows-*/_count" && counts < 2:
			counts++
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"root_cause":[{"type":"no_shard_available_action_exception","reason":null}],"type":"search_phase_execution_exception"},"status":503}`)
		case r.URL.Path == "/flows-*/_count":
			counts++
			io.WriteString(w, `{"count":3}`)
		case r.URL.Path == "/_cluster/health/flows-*" && r.URL.Query().Get("wait_for_status") == "yellow":
			healths++
			io.WriteString(w, `{"status":"yellow"}`)
		case r.URL.Path == "/flows-*/_refresh":
			io.WriteString(w, `{}`)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	if n := Count(t, srv.URL, "flows-*"); n != 3 || counts != 3 || healths != 2 {
		t.Errorf("Count = %d after %d counts and %d health checks, want 3 after 3 and 2", n, counts, healths)
	}
}

func TestCheckRefusesDeadServer(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	if err := es8.check("http://127.0.0.1:1"); err == nil {
		t.Fatal("check of a dead server succeeded")
	}
}

func TestES8(t *testing.T) { testServer(t, URL(t), "8.") }

func TestES9(t *testing.T) { testServer(t, URL9(t), "9.") }

// The secure server: the URL has no credentials, requests without them are
// refused, the helpers send them, and a URL's userinfo works too.
func TestESSecure(t *testing.T) {
	u, user, password := Secure(t)
	if user == "" || password == "" || strings.Contains(u, "@") {
		t.Fatalf("Secure = %q, %q, %q", u, user, password)
	}
	if code, b, err := doAs(http.MethodGet, u+"/_cluster/health", nil, nil); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("without credentials: HTTP %d, %v: %s", code, err, b)
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.User = url.UserPassword(user, password)
	if err := healthy(pu.String()); err != nil {
		t.Errorf("credentials in the URL: %v", err)
	}
	pu.User = url.UserPassword(user, "wrong-"+password)
	if err := healthy(pu.String()); !errors.Is(err, errUnauthorized) {
		t.Errorf("wrong password in the URL: %v, want 401", err)
	} else if strings.Contains(err.Error(), password) {
		t.Errorf("the error shows the password: %v", err)
	}
	testServer(t, u, "8.")
}

// APIKey's key authenticates as the secure server's user, and is
// invalidated when the test that asked for it ends.
func TestSecureAPIKey(t *testing.T) {
	u, user, _ := Secure(t)
	if ca := SecureCA(t); !strings.HasSuffix(ca, ".pem") {
		t.Errorf("SecureCA = %q", ca)
	}
	withKey := func(key string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "ApiKey "+key) }
	}
	var key string
	t.Run("key", func(t *testing.T) {
		key = APIKey(t)
		code, b, err := doAs(http.MethodGet, u+"/_security/_authenticate", nil, withKey(key))
		if err != nil || code != http.StatusOK {
			t.Fatalf("HTTP %d, %v: %s", code, err, b)
		}
		var r struct {
			Username string `json:"username"`
			Type     string `json:"authentication_type"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Username != user || r.Type != "api_key" {
			t.Errorf("authenticated as %+v (%v), want %s by api_key: %s", r, err, user, b)
		}
	})
	if key == "" {
		return
	}
	if code, b, err := doAs(http.MethodGet, u+"/_security/_authenticate", nil, withKey(key)); err != nil || code != http.StatusUnauthorized {
		t.Errorf("the key after the test: HTTP %d, %v, want 401: %s", code, err, b)
	}
}

func testServer(t *testing.T, url, major string) {
	if err := healthy(url); err != nil {
		t.Fatal(err)
	}
	v := Version(t, url)
	if !strings.HasPrefix(v, major) {
		t.Fatalf("Version = %q, want %sx", v, major)
	}
	t.Logf("%s: Elasticsearch %s", url, v)

	var name string
	t.Run("roundtrip", func(t *testing.T) {
		name = Index(t, "estest")
		put(t, url+"/"+name+"/_doc/2?refresh=true", `{"n":2,"s":"two"}`)
		put(t, url+"/"+name+"/_doc/1?refresh=true", `{"n":1,"s":"one"}`)
		put(t, url+"/"+name+"-other/_doc/1?refresh=true", `{"n":3}`)
		put(t, url+"/_index_template/"+name+"-tpl", `{"index_patterns":["`+name+`-t*"]}`)
		put(t, url+"/_template/"+name+"-legacy", `{"index_patterns":["`+name+`-l*"]}`)
		put(t, url+"/_component_template/"+name+"-comp", `{"template":{"settings":{"number_of_shards":1}}}`)

		want := []Doc{
			{ID: "1", Index: name, Source: map[string]any{"n": 1.0, "s": "one"}},
			{ID: "1", Index: name + "-other", Source: map[string]any{"n": 3.0}},
			{ID: "2", Index: name, Source: map[string]any{"n": 2.0, "s": "two"}},
		}
		if got := Docs(t, url, name+"*"); !reflect.DeepEqual(got, want) {
			t.Errorf("Docs = %v, want %v", got, want)
		}
		if got := Docs(t, url, name); len(got) != 2 {
			t.Errorf("Docs(%s) gave %d docs, want 2", name, len(got))
		}
		if n := Count(t, url, name+"*"); n != 3 {
			t.Errorf("Count = %d, want 3", n)
		}
		got := Search(t, url, name, `{"query":{"term":{"s.keyword":"two"}}}`)
		if len(got) != 1 || got[0]["n"] != 2.0 {
			t.Errorf("Search = %v, want the doc with n=2", got)
		}
		if got := Search(t, url, name+"*", `{"size":1}`); len(got) != 1 {
			t.Errorf("Search with size 1 gave %d docs", len(got))
		}
		if got := Docs(t, url, name+"-none*"); len(got) != 0 {
			t.Errorf("Docs of an empty pattern = %v", got)
		}
	})
	if t.Failed() {
		return
	}

	// The subtest's cleanup has run: nothing of it may be left.
	for _, path := range []string{
		"/" + name,
		"/" + name + "-other",
		"/_index_template/" + name + "-tpl",
		"/_template/" + name + "-legacy",
		"/_component_template/" + name + "-comp",
	} {
		code, b, err := do(http.MethodGet, url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusNotFound {
			t.Errorf("GET %s after cleanup: HTTP %d: %s", path, code, b)
		}
	}
}

func put(t *testing.T, u, body string) {
	t.Helper()
	call(t, http.MethodPut, u, []byte(body), nil)
}
