package elasticsearch

import (
	"strings"
	"testing"

	"github.com/flowdex/flowdex/internal/strftime"
)

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
		p, err := strftime.Compile(tt.index)
		if err != nil {
			t.Fatal(err)
		}
		if got := templatePattern(p); got != tt.pattern {
			t.Errorf("%q: pattern %q, want %q", tt.index, got, tt.pattern)
		}
		if got := p.Prefix(); got != tt.prefix {
			t.Errorf("%q: prefix %q, want %q", tt.index, got, tt.prefix)
		}
		if got := defaultTemplateName(p.Prefix()); got != tt.name {
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
		p, err := strftime.Compile(tt.index)
		if err != nil {
			t.Fatalf("%q: %v", tt.index, err)
		}
		err = validateIndex(p)
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
		{"no url", func(c *Configuration) { c.URLs = nil }, "urls: no URL"},
		{"bad scheme", func(c *Configuration) { c.URLs = []string{"ftp://x"} }, "scheme must be http or https"},
		{"no host", func(c *Configuration) { c.URLs = []string{"http://"} }, "no host"},
		{"no index", func(c *Configuration) { c.Index = "" }, "no index name"},
		{"unknown code", func(c *Configuration) { c.Index = "flows-%Q" }, `index: "flows-%Q": unknown strftime code %Q`},
		{"uppercase", func(c *Configuration) { c.Index = "flows-%b" }, "must be lowercase"},
		{"code first", func(c *Configuration) { c.Index = "%Y-flows" }, "starts with a time code"},
		{"code first, no template", func(c *Configuration) { c.Index = "%Y-flows"; c.Template = false }, ""},
		{"bad template name", func(c *Configuration) { c.TemplateName = "Flows" }, `template_name: "Flows": must be lowercase`},
		{"workers", func(c *Configuration) { c.Workers = 0 }, "workers: 0: expected 1 or more"},
		{"flush bytes", func(c *Configuration) { c.FlushBytes = 0 }, "flush_bytes: 0: expected a positive size"},
		{"flush docs unlimited", func(c *Configuration) { c.FlushDocs = -1 }, ""},
		{"interval", func(c *Configuration) { c.FlushInterval.Duration = 0 }, "flush_interval: 0s: expected a positive duration"},
		{"retries", func(c *Configuration) { c.MaxRetries = -1 }, "max_retries: -1: expected 0 or more"},
		{"backoff", func(c *Configuration) { c.BackoffMax = c.BackoffMin / 2 }, "backoff must be 0 < BackoffMin (100ms) <= BackoffMax (50ms)"},
		{"replicas", func(c *Configuration) { c.Replicas = -2 }, "replicas: -2: expected -1"},
		{"password only", func(c *Configuration) { c.Password = "x" }, "password: a password without a username"},
		{"no scheme", func(c *Configuration) { c.URLs = []string{"127.0.0.1:9200"} }, `urls: "127.0.0.1:9200" has no scheme`},
		{"two passwords", func(c *Configuration) { c.Username, c.Password, c.PasswordEnv = "u", "x", "P" }, "give one of password, password_file and password_env"},
		{"api key and user", func(c *Configuration) { c.Username, c.APIKey = "u", "k" }, "an API key and a username/password"},
		{"password env unset", func(c *Configuration) { c.Username, c.PasswordEnv = "u", "FLOWDEX_TEST_NO_SUCH_VARIABLE" }, "password_env: FLOWDEX_TEST_NO_SUCH_VARIABLE is not set"},
		{"dead letter under a file", func(c *Configuration) { c.DeadLetterFile = "strftime_test.go/dead.ndjson" }, "dead_letter_file: strftime_test.go/dead.ndjson: strftime_test.go is not a directory"},
		{"body file missing", func(c *Configuration) { c.IndexBodyFile = "testdata/nonexistent.json" }, "index_body_file: open testdata/nonexistent.json"},
		{"body file and shards", func(c *Configuration) {
			c.IndexBodyFile = "testdata/p2es-new-index-template.json"
			c.Shards = 2
		}, "cannot be combined with an index body file"},
		{"body file without template", func(c *Configuration) {
			c.IndexBodyFile = "testdata/p2es-new-index-template.json"
			c.Template = false
		}, "needs the template (expected template = true)"},
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

func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, out string }{
		{"http://127.0.0.1:9200", "http://127.0.0.1:9200"},
		{"https://elastic:secret@es.example:9200/", "https://elastic:xxxxx@es.example:9200/"},
		{"elastic:secret@es.example:9200", "xxxxx@es.example:9200"},        // read as scheme "elastic" by url.Parse
		{"http://elastic:se%zzcret@es.example", "http://xxxxx@es.example"}, // does not parse
		{"http://elastic@es.example", "http://elastic@es.example"},         // no password
	} {
		if got := RedactURL(tt.in); got != tt.out {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.out)
		}
	}
}
