package elasticsearch

import (
	"strings"
	"testing"
	"time"
)

// The expected strings were produced by Python 3.11's datetime.strftime on
// Linux (glibc, C locale) for the same times in UTC.
const allCodes = "%a|%A|%b|%B|%c|%C|%d|%D|%e|%F|%f|%g|%G|%h|%H|%I|%j|%k|%l|%m|%M|%n|%p|%P|%r|%R|%s|%S|%t|%T|%u|%U|%V|%w|%W|%x|%X|%y|%Y|%z|%Z|%-C|%-d|%-e|%-g|%-G|%-H|%-I|%-j|%-k|%-l|%-m|%-M|%-S|%-U|%-V|%-W|%-y|%-Y|%%"

func TestStrftimeMatchesPython(t *testing.T) {
	cases := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "Mon|Monday|Jan|January|Mon Jan  1 00:00:00 2024|20|01|01/01/24| 1|2024-01-01|000000|24|2024|Jan|00|12|001| 0|12|01|00|\n|AM|am|12:00:00 AM|00:00|1704067200|00|\t|00:00:00|1|00|01|1|01|01/01/24|00:00:00|24|2024|+0000|UTC|20|1|1|24|2024|0|12|1|0|12|1|0|0|0|1|1|24|2024|%"},
		{time.Date(2024, 12, 31, 23, 59, 59, 123456000, time.UTC), "Tue|Tuesday|Dec|December|Tue Dec 31 23:59:59 2024|20|31|12/31/24|31|2024-12-31|123456|25|2025|Dec|23|11|366|23|11|12|59|\n|PM|pm|11:59:59 PM|23:59|1735689599|59|\t|23:59:59|2|52|01|2|53|12/31/24|23:59:59|24|2024|+0000|UTC|20|31|31|25|2025|23|11|366|23|11|12|59|59|52|1|53|24|2024|%"},
		{time.Date(2021, 1, 3, 13, 5, 9, 7000, time.UTC), "Sun|Sunday|Jan|January|Sun Jan  3 13:05:09 2021|20|03|01/03/21| 3|2021-01-03|000007|20|2020|Jan|13|01|003|13| 1|01|05|\n|PM|pm|01:05:09 PM|13:05|1609679109|09|\t|13:05:09|7|01|53|0|00|01/03/21|13:05:09|21|2021|+0000|UTC|20|3|3|20|2020|13|1|3|13|1|1|5|9|1|53|0|21|2021|%"},
		{time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC), "Sun|Sunday|Jan|January|Sun Jan  1 12:00:00 2023|20|01|01/01/23| 1|2023-01-01|000000|22|2022|Jan|12|12|001|12|12|01|00|\n|PM|pm|12:00:00 PM|12:00|1672574400|00|\t|12:00:00|7|01|52|0|00|01/01/23|12:00:00|23|2023|+0000|UTC|20|1|1|22|2022|12|12|1|12|12|1|0|0|1|52|0|23|2023|%"},
		{time.Date(2026, 7, 4, 9, 30, 0, 0, time.UTC), "Sat|Saturday|Jul|July|Sat Jul  4 09:30:00 2026|20|04|07/04/26| 4|2026-07-04|000000|26|2026|Jul|09|09|185| 9| 9|07|30|\n|AM|am|09:30:00 AM|09:30|1783157400|00|\t|09:30:00|6|26|27|6|26|07/04/26|09:30:00|26|2026|+0000|UTC|20|4|4|26|2026|9|9|185|9|9|7|30|0|26|27|26|26|2026|%"},
	}
	p, err := compilePattern(allCodes)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		got := string(p.render(nil, c.t))
		if got != c.want {
			gs, ws := strings.Split(got, "|"), strings.Split(c.want, "|")
			codes := strings.Split(allCodes, "|")
			for i := range codes {
				if i < len(gs) && i < len(ws) && gs[i] != ws[i] {
					t.Errorf("%s: %s = %q, want %q", c.t, codes[i], gs[i], ws[i])
				}
			}
			if len(gs) != len(ws) {
				t.Errorf("%s: got %q, want %q", c.t, got, c.want)
			}
		}
	}
}

func TestStrftime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		pattern string
		t       time.Time
		want    string
	}{
		{"flows-%Y.%m.%d", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "flows-2024.01.01"},
		{"flows-%Y.%m.%d", time.Date(2023, 12, 31, 23, 0, 0, 0, cet), "flows-2023.12.31"},
		{"flows-%Y-%m-%d-%H", time.Date(2024, 3, 5, 7, 0, 0, 0, time.UTC), "flows-2024-03-05-07"},
		{"flows-%G-w%V", time.Date(2021, 1, 3, 0, 0, 0, 0, time.UTC), "flows-2020-w53"},
		{"flows-%y%j", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "flows-24060"},
		{"flows-%F", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "flows-2024-02-29"},
		{"netflow-%Y.%U", time.Date(2024, 1, 7, 0, 0, 0, 0, time.UTC), "netflow-2024.01"},
		{"netflow-%Y.%W", time.Date(2024, 1, 7, 0, 0, 0, 0, time.UTC), "netflow-2024.01"},
		{"flows-%s", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "flows-1704067200"},
		{"flows-%z", time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", -(3*3600+30*60))), "flows--0330"},
		{"100%%-flows", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "100%-flows"},
		{"static", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "static"},
		{"", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), ""},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.pattern)
		if err != nil {
			t.Errorf("%q: %v", tt.pattern, err)
			continue
		}
		if got := string(p.render(nil, tt.t)); got != tt.want {
			t.Errorf("%q at %s = %q, want %q", tt.pattern, tt.t, got, tt.want)
		}
	}
}

func TestStrftimeErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"flows-%Q", "unknown strftime code %Q"},
		{"flows-%Y.%m.%d-%i", "unknown strftime code %i"},
		{"flows-%é", "unknown strftime code %é"},
		{"flows-%-Q", "unknown strftime code %-Q"},
		{"flows-%", "a lone % at the end"},
		{"flows-%-", "a lone %- at the end"},
		{"flows-%-a", "the - flag does not apply to %a"},
		{"flows-%E", "unknown strftime code %E"},
	}
	for _, tt := range tests {
		_, err := compilePattern(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.pattern, err, tt.want)
		}
	}
}

func TestTemplatePattern(t *testing.T) {
	tests := []struct{ index, pattern, prefix, name string }{
		{"flows-%Y.%m.%d", "flows-*", "flows-", "flowdex-flows"},
		{"pmacct_%Y%m%d", "pmacct_*", "pmacct_", "flowdex-pmacct"},
		{"netflow", "netflow", "netflow", "flowdex-netflow"},
		{"a%%b-%Y", "a%b-*", "a%b-", "flowdex-a%b"},
		{"%Y-flows", "*", "", "flowdex"},
		{"flowdex-flows-%Y.%m.%d", "flowdex-flows-*", "flowdex-flows-", "flowdex-flows"},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.index)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.templatePattern(); got != tt.pattern {
			t.Errorf("%q: pattern %q, want %q", tt.index, got, tt.pattern)
		}
		if got := p.prefix(); got != tt.prefix {
			t.Errorf("%q: prefix %q, want %q", tt.index, got, tt.prefix)
		}
		if got := defaultTemplateName(p.prefix()); got != tt.name {
			t.Errorf("%q: template name %q, want %q", tt.index, got, tt.name)
		}
	}
}

func TestIndexNameValidation(t *testing.T) {
	tests := []struct {
		index string
		want  string // "" = valid
	}{
		{"flows-%Y.%m.%d", ""},
		{"flows-%G.%V", ""},
		{"flows-%F-%H%M", ""},
		{"flows-%s", ""},
		{"flows-%P", ""},
		{"flows+%Y", ""},
		{"flows", ""},
		{".flows-%Y", ""},
		{"flows-%b", `renders as "flows-Jan", which is not a valid Elasticsearch index name: must be lowercase`},
		{"Flows-%Y", "must be lowercase"},
		{"flows-%b", "must be lowercase"},
		{"flows-%a", "must be lowercase"},
		{"flows-%p", "must be lowercase"},
		{"flows-%Z", "must be lowercase"},
		{"flows-%c", "must be lowercase"},
		{"flows-%D", `must not contain "/"`},
		{"flows-%T", `must not contain ":"`},
		{"flows %Y", `must not contain " "`},
		{"flows-%e", `must not contain " "`},
		{"flows,%Y", `must not contain ","`},
		{"flows#%Y", `must not contain "#"`},
		{"flows*", `must not contain "*"`},
		{"flows?", `must not contain "?"`},
		{`flows"`, `must not contain "\""`},
		{"flows<", `must not contain "<"`},
		{"flows>", `must not contain ">"`},
		{"flows|", `must not contain "|"`},
		{`flows\x`, `must not contain "\\"`},
		{"flows-%n", "control character"},
		{"-flows", `must not start with "-"`},
		{"_flows", `must not start with "_"`},
		{"+flows", `must not start with "+"`},
		{"%-d-flows", ""},
		{".", `must not be "." or ".."`},
		{"..", `must not be "." or ".."`},
		{strings.Repeat("a", 255), ""},
		{strings.Repeat("a", 256), "longer than 255 bytes"},
		{strings.Repeat("a", 246) + "-%Y.%m.%d", "longer than 255 bytes"},
		{strings.Repeat("é", 128), "longer than 255 bytes"},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.index)
		if err != nil {
			t.Fatalf("%q: %v", tt.index, err)
		}
		err = p.validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tt.index, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: error %v, want %q", tt.index, err, tt.want)
		}
	}
}

func TestConfigurationErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Configuration)
		want string
	}{
		{"default", func(*Configuration) {}, ""},
		{"no url", func(c *Configuration) { c.URLs = nil }, "no Elasticsearch URL"},
		{"bad scheme", func(c *Configuration) { c.URLs = []string{"ftp://x"} }, "scheme must be http or https"},
		{"no host", func(c *Configuration) { c.URLs = []string{"http://"} }, "no host"},
		{"no index", func(c *Configuration) { c.Index = "" }, "no index name"},
		{"unknown code", func(c *Configuration) { c.Index = "flows-%Q" }, `index "flows-%Q": unknown strftime code %Q`},
		{"uppercase", func(c *Configuration) { c.Index = "flows-%b" }, "must be lowercase"},
		{"code first", func(c *Configuration) { c.Index = "%Y-flows" }, "starts with a time code"},
		{"code first, no template", func(c *Configuration) { c.Index = "%Y-flows"; c.Template = false }, ""},
		{"bad template name", func(c *Configuration) { c.TemplateName = "Flows" }, `template name "Flows": must be lowercase`},
		{"workers", func(c *Configuration) { c.Workers = 0 }, "workers must be at least 1"},
		{"flush bytes", func(c *Configuration) { c.FlushBytes = 0 }, "flush bytes must be positive"},
		{"flush docs unlimited", func(c *Configuration) { c.FlushDocs = -1 }, ""},
		{"interval", func(c *Configuration) { c.FlushInterval = 0 }, "flush interval must be positive"},
		{"retries", func(c *Configuration) { c.MaxRetries = -1 }, "max retries must not be negative"},
		{"backoff", func(c *Configuration) { c.BackoffMax = c.BackoffMin / 2 }, "backoff must be"},
		{"replicas", func(c *Configuration) { c.Replicas = -2 }, "replicas must be -1"},
		{"password only", func(c *Configuration) { c.Password = "x" }, "a password without a username"},
		{"body file missing", func(c *Configuration) { c.IndexBodyFile = "testdata/nonexistent.json" }, "index body file: open testdata/nonexistent.json"},
		{"body file and shards", func(c *Configuration) {
			c.IndexBodyFile = "testdata/p2es-new-index-template.json"
			c.Shards = 2
		}, "cannot be combined with an index body file"},
		{"body file without template", func(c *Configuration) {
			c.IndexBodyFile = "testdata/p2es-new-index-template.json"
			c.Template = false
		}, "needs the template enabled"},
		{"ES 6 body", func(c *Configuration) { c.IndexBodyFile = "testdata/p2es-new-index-template-ES-6.x.json" }, "Elasticsearch 5 or 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfiguration()
			tt.edit(&cfg)
			_, err := New(cfg, nil)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
