package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

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
	retentionClock = func() time.Time { return now }
	t.Cleanup(func() { retentionClock = nil })
	day := func(ago int) string { return prefix + "-" + now.AddDate(0, 0, -ago).Format("2006.01.02") }
	// with 30 days, the day 31 days ago ended before now - 30d, and the day 30 days ago did not
	all := []string{day(40), day(31), day(30), day(1), day(0), prefix + "-2020.01.01-copy", prefix + "-x"}
	for _, n := range all {
		estest.CreateIndex(t, url, n)
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
	if got := estest.Indices(t, url, prefix); !slices.Equal(got, all) {
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
	if got := estest.Indices(t, url, prefix); !slices.Equal(got, survivors) {
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
	if code != 0 || !strings.Contains(stdout, `retention = "30d"`) || !strings.Contains(stdout, `retention_interval = "1h0m0s"`) {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}
