package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

func esRequest(t *testing.T, method, url, body string) (int, string) {
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
	return res.StatusCode, string(b)
}

func createIndex(t *testing.T, url, name string) {
	t.Helper()
	if code, b := esRequest(t, http.MethodPut, url+"/"+name, `{"settings":{"number_of_shards":1,"number_of_replicas":0}}`); code != http.StatusOK {
		t.Fatalf("PUT %s: HTTP %d: %s", name, code, b)
	}
}

// indicesOf lists every index whose name starts with prefix, hidden and closed ones too.
func indicesOf(t *testing.T, url, prefix string) []string {
	t.Helper()
	code, b := esRequest(t, http.MethodGet, url+"/_cat/indices/"+prefix+"*?format=json&h=index&expand_wildcards=all", "")
	if code != http.StatusOK {
		t.Fatalf("listing %s*: HTTP %d: %s", prefix, code, b)
	}
	var rows []struct{ Index string }
	if err := json.Unmarshal([]byte(b), &rows); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Index)
	}
	slices.Sort(names)
	return names
}

var retentionLine = regexp.MustCompile(`(?m)^es: (would delete|deleted) (\S+) \(ended (\S+), (\S+) ago\)$`)

// the index names of the lines saying verb
func listed(stdout, verb string) []string {
	var names []string
	for _, m := range retentionLine.FindAllStringSubmatch(stdout, -1) {
		if m[1] == verb {
			names = append(names, m[2])
		}
	}
	slices.Sort(names)
	return names
}

// flowdex retention, as an operator runs it from cron instead of Curator: a dry
// run lists exactly the indices past retention and deletes nothing; the real
// run deletes them and nothing else.
func TestRetentionCommand(t *testing.T) {
	url := estest.URL(t)
	prefix := estest.Index(t, "flowdex-ret")
	// retention's clock is pinned at noon: read from the wall clock, the day
	// could change between naming the indices and a run (across midnight UTC,
	// the day 30 days ago expired, and with --retention 1d yesterday too)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	retentionTiming.now = func() time.Time { return now }
	t.Cleanup(func() { retentionTiming.now = nil })
	day := func(ago int) string { return prefix + "-" + now.AddDate(0, 0, -ago).Format("2006.01.02") }
	// with 30 days, the day 31 days ago ended before now - 30d, and the day 30 days ago did not
	all := []string{day(40), day(31), day(30), day(1), day(0), prefix + "-2020.01.01-copy", prefix + "-x"}
	for _, n := range all {
		createIndex(t, url, n)
	}
	slices.Sort(all)
	expired := slices.Sorted(slices.Values([]string{day(40), day(31)}))
	dir := t.TempDir()
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = "-"
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d"
retention = "30d"
[output.stdout]
type = "print"
`, url, prefix))

	code, stdout, stderr := runCLI(t, "", "retention", "-c", conf, "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := listed(stdout, "would delete"); !slices.Equal(got, expired) {
		t.Fatalf("dry run lists %v, want %v\n%s", got, expired, stdout)
	}
	if !strings.Contains(stdout, "es: 2 indices would be deleted, 3 kept") || !strings.Contains(stdout, "2 other indices starting like them left alone") {
		t.Errorf("summary:\n%s", stdout)
	}
	if got := indicesOf(t, url, prefix); !slices.Equal(got, all) {
		t.Fatalf("after the dry run Elasticsearch holds %v, want %v", got, all)
	}

	// --retention overrides the configuration's
	code, stdout, stderr = runCLI(t, "", "retention", "-c", conf, "--dry-run", "--retention", "1d", "--output", "es")
	if want := slices.Sorted(slices.Values([]string{day(40), day(31), day(30)})); code != 0 || !slices.Equal(listed(stdout, "would delete"), want) {
		t.Fatalf("--retention 1d: exit %d, lists %v, want %v\n%s%s", code, listed(stdout, "would delete"), want, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, "", "retention", "-c", conf)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if got := listed(stdout, "deleted"); !slices.Equal(got, expired) {
		t.Fatalf("deleted %v, want %v\n%s", got, expired, stdout)
	}
	survivors := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(expired, n) })
	if got := indicesOf(t, url, prefix); !slices.Equal(got, survivors) {
		t.Fatalf("Elasticsearch holds %v, want %v", got, survivors)
	}
}

func TestRetentionCommandErrors(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, dir, "flowdex.toml", `
[[input]]
type = "pmacct"
file = "-"
[output.es]
type = "elasticsearch"
urls = ["http://127.0.0.1:1"]
retention = "30d"
[output.plain]
type = "elasticsearch"
[output.stdout]
type = "print"
`)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-c", conf, "--dry-run"}, exitData, `flowdex retention: output "es": cannot reach http://127.0.0.1:1`},
		{[]string{"-c", conf, "--output", "plain"}, exitUsage, `output "plain" has no retention (set retention in [output.plain], or give --retention)`},
		{[]string{"-c", conf, "--output", "stdout"}, exitUsage, `output "stdout" is not an elasticsearch output`},
		{[]string{"-c", conf, "--output", "nope"}, exitUsage, `no output "nope"`},
		{[]string{"-c", conf, "--retention", "10m"}, exitUsage, `--retention 10m0s is too short`},
		{[]string{"--dry-run"}, exitUsage, `give -c flowdex.toml or --p2es-config plugin.conf`},
	} {
		code, stdout, stderr := runCLI(t, "", append([]string{"retention"}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", tt.args, code, tt.code, tt.want, stdout, stderr)
		}
	}
}

// The daemon deletes old indices while it runs, again at each interval, and
// leaves the index it writes to alone.
func TestRunRetention(t *testing.T) {
	url := estest.URL(t)
	prefix := estest.Index(t, "flowdex-ret")
	retentionTiming.delay, retentionTiming.interval = 100*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { retentionTiming.delay, retentionTiming.interval = 0, 0 })
	old := prefix + "-2020.01.01"
	createIndex(t, url, old)
	dir := t.TempDir()
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	conf := writeFile(t, dir, "flowdex.toml", fmt.Sprintf(`
[http]
listen = %q
[[input]]
type = "pmacct"
file = "-"
timezone = "UTC"
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d"
replicas = 0
flush_interval = "100ms"
retention = "2d"
retention_interval = "1h"
`, strings.TrimPrefix(base, "http://"), url, prefix))

	stdinR, stdinW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run([]string{"run", "-c", conf}, stdinR, io.Discard, stderr) }()
	now := time.Now().UTC()
	current := prefix + "-" + now.Format("2006.01.02")
	fmt.Fprintf(stdinW, `{"event_type": "purge", "ip_src": "192.0.2.1", "stamp_inserted": %q, "packets": 1, "bytes": 60}`+"\n", now.Format("2006-01-02 15:04:05"))

	waitFor(t, "the old index deleted and the current one made", 20*time.Second, func() bool {
		return slices.Equal(indicesOf(t, url, prefix), []string{current})
	})
	old2 := prefix + "-2020.01.02"
	createIndex(t, url, old2)
	waitFor(t, "the second old index deleted at the next run", 20*time.Second, func() bool {
		return !slices.Contains(indicesOf(t, url, prefix), old2)
	})
	if m := scrape(t, base)["flowdex_retention_total"]; m["event=deleted,output=es"] != 2 || m["event=runs,output=es"] < 2 || m["event=errors,output=es"] != 0 {
		t.Errorf("flowdex_retention_total %v, want 2 deleted in 2 or more runs, no error", m)
	}
	stdinW.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("flowdex run did not end\n%s", stderr)
	}
	if got := indicesOf(t, url, prefix); !slices.Equal(got, []string{current}) {
		t.Fatalf("Elasticsearch holds %v, want %v", got, []string{current})
	}
	log := stderr.String()
	if !strings.Contains(log, "retention started") || !strings.Contains(log, "deleted=["+old+"]") || !strings.Contains(log, "deleted=["+old2+"]") {
		t.Fatalf("log:\n%s", log)
	}
}

// ingest, a one-shot, does not run retention, however long its input lasts.
func TestIngestNoRetention(t *testing.T) {
	url := estest.URL(t)
	prefix := estest.Index(t, "flowdex-ret")
	retentionTiming.delay = time.Millisecond
	t.Cleanup(func() { retentionTiming.delay = 0 })
	old := prefix + "-2020.01.01"
	createIndex(t, url, old)
	conf := writeFile(t, t.TempDir(), "flowdex.toml", fmt.Sprintf(`
[[input]]
type = "pmacct"
file = "-"
timezone = "UTC"
[output.es]
type = "elasticsearch"
urls = [%q]
index = "%s-%%Y.%%m.%%d"
replicas = 0
flush_interval = "100ms"
retention = "2d"
`, url, prefix))
	stdinR, stdinW := io.Pipe()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"ingest", "-c", conf}, stdinR, &stdout, &stderr) }()
	fmt.Fprintln(stdinW, `{"event_type": "purge", "ip_src": "192.0.2.1", "stamp_inserted": "2026-01-01 00:00:00", "packets": 1, "bytes": 60}`)
	waitFor(t, "the record indexed", 20*time.Second, func() bool { return slices.Contains(indicesOf(t, url, prefix), prefix+"-2026.01.01") })
	time.Sleep(time.Second) // the daemon would have deleted the old index by now (TestRunRetention)
	stdinW.Close()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !slices.Contains(indicesOf(t, url, prefix), old) {
		t.Fatalf("ingest deleted %s", old)
	}
}

// check prints the retention keys in the effective configuration.
func TestCheckShowsRetention(t *testing.T) {
	conf := writeFile(t, t.TempDir(), "flowdex.toml", `
[[input]]
type = "pmacct"
file = "-"
[output.es]
type = "elasticsearch"
retention = "30d"
`)
	code, stdout, stderr := runCLI(t, "", "check", "-c", conf)
	if code != 0 || !strings.Contains(stdout, `retention = "720h0m0s"`) || !strings.Contains(stdout, `retention_interval = "1h0m0s"`) {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}
