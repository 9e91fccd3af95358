package retention

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestIndexMatcher(t *testing.T) {
	rome, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		pattern    string
		loc        *time.Location
		name       string
		ok         bool
		start, end string
	}{
		{"f-%Y.%m.%d", time.UTC, "f-2026.10.01", true, "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"},
		{"f-%Y.%m.%d", time.UTC, "f-2026.12.31", true, "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"f-%Y.%m.%d", time.UTC, "f-2024.02.29", true, "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{"f-%Y.%m.%d", time.UTC, "f-2026.02.29", false, "", ""}, // not a leap year
		{"f-%Y.%m.%d", time.UTC, "f-2026.13.45", false, "", ""},
		{"f-%Y.%m.%d", time.UTC, "f-2026.00.10", false, "", ""},
		{"f-%Y.%m.%d", time.UTC, "f-2026.10.01-copy", false, "", ""},
		{"f-%Y.%m.%d", time.UTC, "f-2026.10.1", false, "", ""}, // the pattern pads
		{"f-%Y.%m.%d", time.UTC, "f-x", false, "", ""},
		{"f-%Y.%m.%d", time.UTC, "f2-2026.10.01", false, "", ""},
		{"f-%Y.%m.%d", time.UTC, ".f-2026.10.01", false, "", ""},
		{"f-%Y.%m.%d", time.UTC, "xf-2026.10.01", false, "", ""},
		{"f-%Y.%m.%d", time.UTC, "f-2026.10.01.00", false, "", ""},
		{"f-%Y.%m.%-d", time.UTC, "f-2026.10.1", true, "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"},
		{"f-%Y.%m.%-d", time.UTC, "f-2026.10.01", false, "", ""},
		{"f-%F", time.UTC, "f-2026-10-01", true, "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"},
		{"f-%y%m%d", time.UTC, "f-261001", true, "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z"},
		{"f-%Y.%m", time.UTC, "f-2026.12", true, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"f-%Y.%m", time.UTC, "f-2026.13", false, "", ""},
		{"f-%Y", time.UTC, "f-2026", true, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"f-%Y.%j", time.UTC, "f-2026.365", true, "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"f-%Y.%j", time.UTC, "f-2026.366", false, "", ""},
		{"f-%Y.%m.%d.%H", time.UTC, "f-2026.10.01.23", true, "2026-10-01T23:00:00Z", "2026-10-02T00:00:00Z"},
		{"f-%Y.%m.%d.%H", time.UTC, "f-2026.10.01.24", false, "", ""},
		{"f-%Y.%m.%d.%H%M", time.UTC, "f-2026.10.01.2359", true, "2026-10-01T23:59:00Z", "2026-10-02T00:00:00Z"},
		{"f-%Y.%m.%d.%I%P", time.UTC, "f-2026.10.01.12am", true, "2026-10-01T00:00:00Z", "2026-10-01T01:00:00Z"},
		{"f-%Y.%m.%d.%I%P", time.UTC, "f-2026.10.01.01pm", true, "2026-10-01T13:00:00Z", "2026-10-01T14:00:00Z"},
		// ISO weeks: 2026-01-01 is a Thursday, so week 01 starts on 2025-12-29 and 2026 has 53 weeks
		{"f-%G.%V", time.UTC, "f-2026.01", true, "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z"},
		{"f-%G.%V", time.UTC, "f-2026.53", true, "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"},
		{"f-%G.%V", time.UTC, "f-2025.53", false, "", ""},
		{"f-%G.%V.%u", time.UTC, "f-2026.01.7", true, "2026-01-04T00:00:00Z", "2026-01-05T00:00:00Z"},
		// Sunday weeks: week 00 is 2026-01-01..03, the first Sunday is 01-04; the last week ends with the year
		{"f-%Y.%U", time.UTC, "f-2026.00", true, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
		{"f-%Y.%U", time.UTC, "f-2026.01", true, "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"},
		{"f-%Y.%U", time.UTC, "f-2026.52", true, "2026-12-27T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"f-%Y.%W", time.UTC, "f-2026.01", true, "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"},
		{"f-%Y.%W.%u", time.UTC, "f-2026.00.4", true, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
		{"f-%Y.%U.%w", time.UTC, "f-2026.01.0", true, "2026-01-04T00:00:00Z", "2026-01-05T00:00:00Z"},
		// a local zone: the day is Rome's, 23 hours long when summer time starts
		{"f-%Y.%m.%d", rome, "f-2026.10.01", true, "2026-09-30T22:00:00Z", "2026-10-01T22:00:00Z"},
		{"f-%Y.%m.%d", rome, "f-2026.03.29", true, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"},
		{"f-%Y.%m.%d.%H", rome, "f-2026.03.29.03", true, "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
		{"f-%Y.%m.%d.%H", rome, "f-2026.03.29.02", false, "", ""},                                        // 02:00 does not exist that night
		{"f-%Y.%m.%d", rome, "f-2026.10.25", true, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"},       // 25 hours
		{"f-%Y.%m.%d.%H", rome, "f-2026.10.25.02", true, "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"}, // 02:00-03:00 twice
	}
	for _, c := range cases {
		m, err := newIndexMatcher(c.pattern, c.loc)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		start, end, ok := m.match(c.name)
		if ok != c.ok {
			t.Errorf("%s %s (%s): match %v, want %v (period %v - %v)", c.pattern, c.name, c.loc, ok, c.ok, start, end)
			continue
		}
		if !ok {
			continue
		}
		if !start.Equal(utc(c.start)) || !end.Equal(utc(c.end)) {
			t.Errorf("%s %s (%s): period %v - %v, want %s - %s", c.pattern, c.name, c.loc, start.UTC(), end.UTC(), c.start, c.end)
		}
	}
}

// Every name a pattern renders over two years, hour by hour, is matched, and
// its period holds the time it was rendered for.
func TestIndexMatcherRoundTrip(t *testing.T) {
	rome, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	patterns := []string{"f-%Y.%m.%d", "f-%Y.%m", "f-%Y.%m.%d.%H", "f-%G.%V", "f-%G.%V.%u", "f-%Y.%U", "f-%Y.%W.%u",
		"f-%Y.%j", "f-%y%m%d-%-H", "f-%Y", "f-%Y.%m.%d.%I%P"}
	for _, loc := range []*time.Location{time.UTC, rome} {
		for _, src := range patterns {
			m, err := newIndexMatcher(src, loc)
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			for at := time.Date(2025, 12, 1, 0, 30, 0, 0, time.UTC); at.Year() < 2028; at = at.Add(time.Hour) {
				local := at.In(loc)
				name := string(m.p.Render(nil, local))
				start, end, ok := m.match(name)
				if !ok || at.Before(start) || !at.Before(end) {
					t.Fatalf("%s in %s: %s (rendered at %v): ok=%v, period %v - %v", src, loc, name, local, ok, start, end)
				}
			}
		}
	}
}

func TestIndexMatcherRefuses(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{"flows", "no time code"},
		{"flows-%H", "no year"},
		{"flows-%d", "no year"},
		{"flows-%Y.%V", "needs %G"},
		{"flows-%Y.%d", "without its month"},
		{".flows-%Y.%m.%d", "hidden"},
		{"flows-%Y.%m.%d-%s", "cannot read %s"},
		{"flows-%Y.%m.%M", "without the hour"},
		{"flows-%Y.%m.%H", "without the day"},
		{"flows-%Y.%m.%d.%I", "am/pm"},
		{"flows-%C", "%C needs %y"},
	} {
		err := Check(c.pattern)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.pattern, err, c.want)
		}
	}
}

// esCall sends a request to a test server (no security) and returns the status and body.
func esCall(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func mustCall(t *testing.T, method, url, body string) {
	t.Helper()
	if code, b := esCall(t, method, url, body); code/100 != 2 {
		t.Fatalf("%s %s: HTTP %d: %s", method, url, code, b)
	}
}

// allIndices lists every index starting with prefix, hidden and closed ones too.
func allIndices(t *testing.T, url, prefix string) []string {
	t.Helper()
	code, b := esCall(t, http.MethodGet, url+"/_cat/indices/"+prefix+"*?format=json&h=index&expand_wildcards=all", "")
	if code != http.StatusOK {
		t.Fatalf("listing %s*: HTTP %d: %s", prefix, code, b)
	}
	var rows []struct{ Index string }
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Index)
	}
	slices.Sort(names)
	return names
}

const smallIndex = `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`

// Against the real servers: a run deletes exactly the indices of the
// pattern whose day ended 30 days before now, closed ones included, and
// leaves lookalikes, a hidden index of the pattern, other prefixes and an
// alias named like an old index alone; a dry run deletes nothing.
func TestRealRetention(t *testing.T) {
	for _, srv := range estest.Servers {
		t.Run(srv.Name, func(t *testing.T) { testRealRetention(t, srv.URL(t)) })
	}
}

func testRealRetention(t *testing.T, url string) {
	prefix := estest.Index(t, "flowdex-ret")
	now := utc("2026-11-24T12:00:00Z") // cutoff 2026-10-25T12:00: the day 10-24 is past, 10-25 is not
	var expired, survivors []string
	for _, daysAgo := range []int{40, 35, 31, 30, 29, 20, 1, 0} {
		name := prefix + "-" + now.AddDate(0, 0, -daysAgo).Format("2006.01.02")
		mustCall(t, http.MethodPut, url+"/"+name, smallIndex)
		if daysAgo >= 31 {
			expired = append(expired, name)
		} else {
			survivors = append(survivors, name)
		}
	}
	closed := prefix + "-2026.10.02"
	mustCall(t, http.MethodPut, url+"/"+closed, smallIndex)
	mustCall(t, http.MethodPost, url+"/"+closed+"/_close", "")
	expired = append(expired, closed)
	hidden := prefix + "-2026.09.15"
	mustCall(t, http.MethodPut, url+"/"+hidden, `{"settings":{"number_of_shards":1,"number_of_replicas":0,"index.hidden":true}}`)
	survivors = append(survivors, hidden)
	for _, s := range []string{"-2026.10.01-copy", "-2026.13.45", "-x", "-2026.10.1", "-keep", "2-2026.01.01"} {
		mustCall(t, http.MethodPut, url+"/"+prefix+s, smallIndex)
		survivors = append(survivors, prefix+s)
	}
	alias := prefix + "-2026.09.01" // an old name, but an alias of an index that is not the pattern's
	mustCall(t, http.MethodPut, url+"/"+prefix+"-keep/_alias/"+alias, "")
	slices.Sort(expired)
	slices.Sort(survivors)

	cfg := elasticsearch.DefaultConfiguration()
	cfg.URLs = []string{url}
	cfg.Index = prefix + "-%Y.%m.%d"
	r, err := New(cfg, Configuration{MaxAge: dur(30 * 24 * time.Hour), Interval: dur(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return now }
	r.chunk = 100 // several DELETE requests

	rep, err := r.Run(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range rep.Expired {
		names = append(names, e.Name)
		if e.End.After(rep.Cutoff) {
			t.Errorf("%s ends %v, after the cutoff %v", e.Name, e.End, rep.Cutoff)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, expired) || len(rep.Deleted) != 0 {
		t.Fatalf("dry run: expired %v, deleted %v; want expired %v, nothing deleted", names, rep.Deleted, expired)
	}
	if got, want := allIndices(t, url, prefix), slices.Sorted(slices.Values(append(slices.Clone(expired), survivors...))); !slices.Equal(got, want) {
		t.Fatalf("after the dry run Elasticsearch holds %v, want %v", got, want)
	}

	rep, err = r.Run(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	deleted := slices.Sorted(slices.Values(rep.Deleted))
	if !slices.Equal(deleted, expired) {
		t.Fatalf("deleted %v, want %v", deleted, expired)
	}
	if got := allIndices(t, url, prefix); !slices.Equal(got, survivors) {
		t.Fatalf("Elasticsearch holds %v, want %v", got, survivors)
	}
	if code, b := esCall(t, http.MethodGet, url+"/_alias/"+alias, ""); code != http.StatusOK || !strings.Contains(string(b), prefix+"-keep") {
		t.Fatalf("the alias %s is gone: HTTP %d: %s", alias, code, b)
	}
	if st := r.Stats(); st.Runs != 2 || st.Deleted != uint64(len(expired)) || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}

	// a second run finds nothing more
	if rep, err = r.Run(context.Background(), false); err != nil || len(rep.Expired) != 0 {
		t.Fatalf("second run: %v, expired %v", err, rep.Expired)
	}
}

// Monthly indices go once the whole month is past retention.
func TestRealRetentionMonthly(t *testing.T) {
	url := estest.URL(t)
	prefix := estest.Index(t, "flowdex-ret")
	for _, m := range []string{"2025.11", "2026.08", "2026.09", "2026.11"} {
		mustCall(t, http.MethodPut, url+"/"+prefix+"-"+m, smallIndex)
	}
	cfg := elasticsearch.DefaultConfiguration()
	cfg.URLs = []string{url}
	cfg.Index = prefix + "-%Y.%m"
	r, err := New(cfg, Configuration{MaxAge: dur(60 * 24 * time.Hour), Interval: dur(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return utc("2026-11-24T12:00:00Z") } // cutoff 2026-09-25T12:00
	rep, err := r.Run(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{prefix + "-2025.11", prefix + "-2026.08"}; !slices.Equal(rep.Deleted, want) {
		t.Fatalf("deleted %v, want %v", rep.Deleted, want)
	}
	if got, want := allIndices(t, url, prefix), []string{prefix + "-2026.09", prefix + "-2026.11"}; !slices.Equal(got, want) {
		t.Fatalf("Elasticsearch holds %v, want %v", got, want)
	}
}

// Start runs retention in the background: the old index goes without a call to Run.
func TestRealRetentionStart(t *testing.T) {
	url := estest.URL(t)
	prefix := estest.Index(t, "flowdex-ret")
	old, recent := prefix+"-2020.01.01", prefix+"-"+time.Now().UTC().Format("2006.01.02")
	mustCall(t, http.MethodPut, url+"/"+old, smallIndex)
	mustCall(t, http.MethodPut, url+"/"+recent, smallIndex)
	cfg := elasticsearch.DefaultConfiguration()
	cfg.URLs = []string{url}
	cfg.Index = prefix + "-%Y.%m.%d"
	r, err := New(cfg, Configuration{MaxAge: dur(24 * time.Hour), Interval: dur(100 * time.Millisecond), Delay: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Equal(allIndices(t, url, prefix), []string{recent}) {
		if time.Now().After(deadline) {
			t.Fatalf("the old index is still there: %v", allIndices(t, url, prefix))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// it keeps running: an old index made now goes at the next run
	mustCall(t, http.MethodPut, url+"/"+old, smallIndex)
	for slices.Contains(allIndices(t, url, prefix), old) {
		if time.Now().After(deadline) {
			t.Fatal("the second old index is still there")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Stop()
	if st := r.Stats(); st.Runs < 2 || st.Deleted != 2 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Failures say why: an unreachable server, and Elasticsearch's reason when it
// refuses the delete (a user without the privilege: faked, the test servers
// are superusers).
func TestRetentionErrors(t *testing.T) {
	cfg := elasticsearch.DefaultConfiguration()
	cfg.URLs = []string{"http://127.0.0.1:1"}
	cfg.Index = "flows-%Y.%m.%d"
	r, err := New(cfg, Configuration{MaxAge: dur(time.Hour), Interval: dur(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), true); err == nil || !strings.Contains(err.Error(), "cannot reach http://127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}

	var mu sync.Mutex
	var deletes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		if req.Method == http.MethodDelete {
			mu.Lock()
			deletes = append(deletes, req.URL.Path)
			mu.Unlock()
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":{"type":"security_exception","reason":"action [indices:admin/delete] is unauthorized for user [flowdex]"},"status":403}`)
			return
		}
		io.WriteString(w, `[{"index":"flows-2020.01.01"},{"index":"flows-2099.01.01"},{"index":"flows-old"}]`)
	}))
	defer srv.Close()
	cfg.URLs = []string{srv.URL}
	r, err = New(cfg, Configuration{MaxAge: dur(time.Hour), Interval: dur(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return utc("2026-11-24T12:00:00Z") } // flows-2099.01.01 is recent whatever the date
	rep, err := r.Run(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), "security_exception") || !strings.Contains(err.Error(), "unauthorized for user [flowdex]") {
		t.Fatalf("refused delete: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(deletes, []string{"/flows-2020.01.01"}) || len(rep.Deleted) != 0 || rep.Kept != 1 || !slices.Equal(rep.Ignored, []string{"flows-old"}) {
		t.Fatalf("deletes %v, report %+v", deletes, rep)
	}
	if st := r.Stats(); st.Runs != 1 || st.Errors != 1 || st.Deleted != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// On the server with security on, retention uses the sink's TLS settings and
// credentials: a dry run over HTTPS with basic auth, then an API key deletes.
func TestRealRetentionSecure(t *testing.T) {
	url, user, password := estest.Secure(t)
	ca := estest.SecureCA(t)
	prefix := estest.Index(t, "flowdex-ret")
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	old, recent := prefix+"-2020.01.01", prefix+"-"+time.Now().UTC().Format("2006.01.02")
	for _, n := range []string{old, recent} {
		req, _ := http.NewRequest(http.MethodPut, url+"/"+n, strings.NewReader(smallIndex))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(user, password)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: HTTP %d", n, res.StatusCode)
		}
	}
	cfg := elasticsearch.DefaultConfiguration()
	cfg.URLs = []string{url}
	cfg.Username, cfg.Password, cfg.CACert = user, password, ca
	cfg.Index = prefix + "-%Y.%m.%d"
	rc := Configuration{MaxAge: dur(24 * time.Hour), Interval: dur(time.Hour)}
	r, err := New(cfg, rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), true)
	if err != nil || len(rep.Expired) != 1 || rep.Expired[0].Name != old || rep.Kept != 1 {
		t.Fatalf("dry run: %v, %+v", err, rep)
	}
	cfg.Username, cfg.Password, cfg.APIKey = "", "", estest.APIKey(t)
	if r, err = New(cfg, rc, nil); err != nil {
		t.Fatal(err)
	}
	if rep, err = r.Run(context.Background(), false); err != nil || !slices.Equal(rep.Deleted, []string{old}) {
		t.Fatalf("run with an API key: %v, %+v", err, rep)
	}
	cfg.APIKey = "bm90OmFrZXk=" // not a key
	if r, err = New(cfg, rc, nil); err != nil {
		t.Fatal(err)
	}
	if _, err = r.Run(context.Background(), true); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("a wrong key: %v", err)
	}
}

// dur is a duration as a configuration gives it.
func dur(d time.Duration) setting.Duration { return setting.Duration{Duration: d} }
