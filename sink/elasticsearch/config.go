package elasticsearch

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/internal/strftime"
	"github.com/flowdex/flowdex/sink/spool"
)

// Configuration of an Elasticsearch sink, with the keys of an
// [output.NAME] table of type "elasticsearch". Start from
// DefaultConfiguration: the zero value is not valid.
type Configuration struct {
	// URLs of the Elasticsearch nodes (p2es ES_URL); requests go to them in
	// turn, and a node that gives no answer (refused, reset, timed out) is
	// skipped until it answers a probe again (nodePool).
	URLs []string `toml:"urls"`
	// DiscoverNodes asks the cluster for its nodes (GET /_nodes/http) at
	// start and every DiscoverInterval, and sends requests to those that
	// serve HTTP, dedicated master nodes left out, at their publish address
	// with the scheme, credentials and TLS settings of URLs. Off by default:
	// behind a load balancer, or where the nodes publish addresses flowdex
	// cannot reach, URLs must stay as they are.
	DiscoverNodes    bool             `toml:"discover_nodes"`
	DiscoverInterval setting.Duration `toml:"discover_interval"`
	// Username and Password for HTTP basic authentication (p2es ES_AuthType
	// "basic", ES_UserName, ES_Password). The password is never logged; it
	// can come from a file (PasswordFile) or an environment variable
	// (PasswordEnv) instead, read by New.
	Username     string `toml:"username,omitempty"`
	Password     string `toml:"password,omitempty"`
	PasswordFile string `toml:"password_file,omitempty"`
	PasswordEnv  string `toml:"password_env,omitempty"`
	// APIKey authenticates with an Elasticsearch API key (the base64
	// "encoded" value), instead of a username and password; likewise from
	// a file or an environment variable. Never logged.
	APIKey     string `toml:"api_key,omitempty"`
	APIKeyFile string `toml:"api_key_file,omitempty"`
	APIKeyEnv  string `toml:"api_key_env,omitempty"`
	// CACert is a PEM file of certificate authorities trusted for https URLs,
	// besides the system's. Certificates are always verified unless
	// InsecureSkipVerify, which Start warns about.
	CACert             string `toml:"ca_cert,omitempty"`
	InsecureSkipVerify bool   `toml:"tls_insecure_skip_verify"`

	// Index is the index name, with Python strftime codes (p2es ES_IndexName),
	// rendered for each document from the time its pipeline gives it (see
	// Write) in IndexLocation.
	Index string `toml:"index"`
	// IndexLocation is the time zone the index name is rendered in: UTC by
	// default; Local for p2es's habit.
	IndexLocation setting.Location `toml:"index_timezone"`
	// DocType is p2es ES_Type. Mapping types are gone since Elasticsearch 7
	// (typed bulk URLs were removed in 8): it is accepted and ignored, with a
	// warning.
	DocType string `toml:"doc_type,omitempty"`

	// Template installs an index template for the index at Start.
	Template bool `toml:"template"`
	// TemplateName names it; empty: "flowdex-" and the index prefix.
	TemplateName string `toml:"template_name,omitempty"`
	// TemplatePriority of the composable template; 0 leaves it unset.
	TemplatePriority int `toml:"-"`
	// LabelMaps maps label as an object, for pipelines that write it as a
	// map (pre_tag_label_encode_as_map); set from the configuration: the
	// same field cannot be a keyword in some documents and an object in
	// others.
	LabelMaps bool `toml:"-"`
	// IndexBodyFile is p2es ES_IndexTemplateFileName: a JSON index-creation body
	// ({"settings":…, "mappings":…}) that replaces flowdex's mappings. It is
	// installed as the template of the index pattern, so every new index gets it.
	IndexBodyFile string `toml:"index_body_file,omitempty"`
	// Shards, Replicas and RefreshInterval are the template's
	// index.number_of_shards, number_of_replicas and refresh_interval: 0, -1
	// and "" leave Elasticsearch's defaults.
	Shards          int    `toml:"shards,omitzero"`
	Replicas        int    `toml:"replicas"`
	RefreshInterval string `toml:"refresh_interval,omitempty"`

	// FlushDocs sends a bulk request when it holds this many documents (p2es
	// ES_FlushSize); -1 (or 0): no count limit, FlushBytes alone.
	FlushDocs int `toml:"flush_docs"`
	// FlushBytes sends a bulk request before its body would exceed this size
	// (a larger single document is sent alone).
	FlushBytes int `toml:"flush_bytes"`
	// FlushInterval sends what is buffered at least this often.
	FlushInterval setting.Duration `toml:"flush_interval"`
	// Workers is the number of bulk requests in flight at once.
	Workers int `toml:"workers"`
	// RequestTimeout bounds one bulk request; a request that times out is retried.
	RequestTimeout setting.Duration `toml:"request_timeout"`
	// StartTimeout bounds the start's setup (version check, index template)
	// when Elasticsearch is not ready: connections refused, timeouts, 429
	// and 5xx answers are retried with backoff until then. A cluster that
	// has just formed answers so for tens of seconds.
	StartTimeout setting.Duration `toml:"start_timeout"`

	// MaxRetries is how many times a failed bulk request, or a document
	// Elasticsearch refused for overload (429, 5xx), is sent again.
	MaxRetries int `toml:"max_retries"`
	// BackoffMin and BackoffMax bound the exponential backoff between retries.
	BackoffMin time.Duration `toml:"-"`
	BackoffMax time.Duration `toml:"-"`

	// DeadLetterFile receives, one JSON object per line, the documents
	// Elasticsearch rejected or that could not be delivered after the retries.
	// It is created when first needed and appended to. Empty: such documents
	// are only logged and counted as failed.
	DeadLetterFile string `toml:"dead_letter_file,omitempty"`

	// SpoolDir keeps, on disk, the bulk requests Elasticsearch could not take
	// (unreachable, overloaded past the retries, or the sink stopping): they
	// are sent again, oldest first, when it answers, also after a restart.
	// While anything is spooled, new requests join the queue on disk, so the
	// order is kept and memory stays bounded whatever the outage length.
	// Empty: no spool; such documents go to the dead-letter file.
	SpoolDir string `toml:"spool_dir,omitempty"`
	// SpoolMaxBytes caps the spool; a request that does not fit is
	// dead-lettered, with an error saying the spool is full.
	SpoolMaxBytes int64 `toml:"spool_max_bytes"`
	// SpoolAfter bounds, with a spool, how long a bulk request is tried
	// before it goes to the spool, whatever MaxRetries and RequestTimeout
	// allow: memory is freed after this long in an outage, not after the
	// retries, which against a node that accepts connections and never
	// answers take MaxRetries request timeouts.
	SpoolAfter setting.Duration `toml:"spool_after"`
	// StopGrace is how long, once the daemon is told to stop (the context of
	// Start ends: SIGTERM, SIGINT), the sink goes on delivering; then
	// requests in flight are abandoned and what is left goes to the spool at
	// once, or to the dead-letter file without one. It keeps a stop against a
	// dead Elasticsearch well inside a service manager's stop timeout.
	StopGrace setting.Duration `toml:"stop_grace"`
}

// DefaultConfiguration returns the defaults: an Elasticsearch on this host,
// daily indices "flowdex-YYYY.MM.DD" in UTC, bulk requests of 5000 documents
// or 5 MiB or every 5 seconds, two in flight, ten retries (about 45 s of
// backoff), a 1 GiB spool when one is set, taking over a request after 30 s,
// 15 s to deliver once told to stop, a minute for Elasticsearch to be ready at
// start, no node discovery (every 5 minutes when turned on).
func DefaultConfiguration() Configuration {
	return Configuration{
		URLs:             []string{"http://127.0.0.1:9200"},
		DiscoverInterval: setting.Duration{Duration: 5 * time.Minute},
		Index:            "flowdex-%Y.%m.%d",
		Template:         true,
		Replicas:         -1,
		FlushDocs:        5000,
		FlushBytes:       5 << 20,
		FlushInterval:    setting.Duration{Duration: 5 * time.Second},
		Workers:          2,
		RequestTimeout:   setting.Duration{Duration: time.Minute},
		StartTimeout:     setting.Duration{Duration: time.Minute},
		MaxRetries:       10,
		BackoffMin:       100 * time.Millisecond,
		BackoffMax:       10 * time.Second,
		SpoolMaxBytes:    1 << 30,
		SpoolAfter:       setting.Duration{Duration: 30 * time.Second},
		StopGrace:        setting.Duration{Duration: 15 * time.Second},
	}
}

// LogValue shows the configuration without its password and API key: they
// show as "REDACTED" when set, "" when not.
func (c Configuration) LogValue() slog.Value {
	pw, key := "", ""
	if c.Password != "" {
		pw = "REDACTED"
	}
	if c.APIKey != "" {
		key = "REDACTED"
	}
	urls := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		urls[i] = RedactURL(u)
	}
	return slog.GroupValue(
		slog.Any("urls", urls),
		slog.Bool("discover_nodes", c.DiscoverNodes),
		slog.Duration("discover_interval", c.DiscoverInterval.Duration),
		slog.String("username", c.Username),
		slog.String("password", pw),
		slog.String("api_key", key),
		slog.String("ca_cert", c.CACert),
		slog.Bool("tls_insecure_skip_verify", c.InsecureSkipVerify),
		slog.String("index", c.Index),
		slog.String("template_name", c.TemplateName),
		slog.String("index_body_file", c.IndexBodyFile),
		slog.Int("flush_docs", c.FlushDocs),
		slog.Int("flush_bytes", c.FlushBytes),
		slog.Duration("flush_interval", c.FlushInterval.Duration),
		slog.Int("workers", c.Workers),
		slog.Duration("request_timeout", c.RequestTimeout.Duration),
		slog.Duration("start_timeout", c.StartTimeout.Duration),
		slog.Int("max_retries", c.MaxRetries),
		slog.String("dead_letter_file", c.DeadLetterFile),
		slog.Duration("spool_after", c.SpoolAfter.Duration),
		slog.Duration("stop_grace", c.StopGrace.Duration),
	)
}

// RedactURL hides the user information (a password) of a URL, also of one
// that does not parse or has no scheme ("elastic:secret@host:9200", which
// url.Parse reads as scheme "elastic").
func RedactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	from := 0
	if i := strings.Index(s[:at], "://"); i >= 0 {
		from = i + 3
	}
	return s[:from] + "xxxxx" + s[at:]
}

// compiled is what New derives from a valid Configuration.
type compiled struct {
	index           *strftime.Pattern
	templatePattern string // e.g. "flows-*"
	templateName    string
	template        []byte // the PUT _index_template body; nil when Template is false
	caPEM           []byte // CACert's content

	addrFields addrFields // of template: checked by encode
}

// Validate reports every setting New would refuse that it can see without
// reading a file, each a setting.KeyError naming its key.
func (c Configuration) Validate() error {
	_, errs := c.check()
	return errors.Join(errs...)
}

// check is Validate, giving also the index pattern when it is valid.
func (c Configuration) check() (*strftime.Pattern, []error) {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, setting.Errorf(key, format, args...)) }
	positive := func(key string, d setting.Duration, example string) {
		if d.Duration <= 0 {
			bad(key, "%s: expected a positive duration, e.g. %q", d, example)
		}
	}
	if len(c.URLs) == 0 {
		bad("urls", "no URL (expected e.g. [\"http://127.0.0.1:9200\"])")
	}
	for _, s := range c.URLs {
		shown := RedactURL(s)
		if !strings.Contains(s, "://") {
			bad("urls", "%q has no scheme (expected http:// or https:// before the host, e.g. %q)", shown, "http://"+shown)
			continue
		}
		u, err := url.Parse(s)
		switch {
		case err != nil:
			bad("urls", "%q is not a URL (expected e.g. \"http://127.0.0.1:9200\")", shown)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("urls", "%q: the scheme must be http or https", shown)
		case u.Host == "":
			bad("urls", "%q has no host (expected e.g. \"http://127.0.0.1:9200\")", shown)
		}
	}
	count := func(vs ...string) int {
		n := 0
		for _, v := range vs {
			if v != "" {
				n++
			}
		}
		return n
	}
	passwords, keys := count(c.Password, c.PasswordFile, c.PasswordEnv), count(c.APIKey, c.APIKeyFile, c.APIKeyEnv)
	switch {
	case passwords > 1:
		bad("password", "give one of password, password_file and password_env")
	case passwords > 0 && c.Username == "":
		bad("password", "a password without a username (expected username too)")
	}
	switch {
	case keys > 1:
		bad("api_key", "give one of api_key, api_key_file and api_key_env")
	case keys > 0 && (passwords > 0 || c.Username != ""):
		bad("api_key", "an API key and a username/password: give one way to authenticate")
	}
	if c.FlushDocs < -1 {
		bad("flush_docs", "%d is not a document count (expected -1 for no limit, or more)", c.FlushDocs)
	}
	if c.FlushBytes <= 0 {
		bad("flush_bytes", "%d: expected a positive size, e.g. 5242880", c.FlushBytes)
	}
	positive("flush_interval", c.FlushInterval, "5s")
	if c.Workers < 1 {
		bad("workers", "%d: expected 1 or more", c.Workers)
	}
	positive("request_timeout", c.RequestTimeout, "1m")
	positive("start_timeout", c.StartTimeout, "1m")
	if c.DiscoverInterval.Duration < time.Second {
		// a node list changes when nodes join or leave: minutes
		bad("discover_interval", "%s: expected 1s or more, e.g. \"5m\"", c.DiscoverInterval)
	}
	if c.MaxRetries < 0 {
		bad("max_retries", "%d: expected 0 or more", c.MaxRetries)
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff must be 0 < BackoffMin (%s) <= BackoffMax (%s)", c.BackoffMin, c.BackoffMax)) // not keys: the program's own
	}
	if c.Shards < 0 {
		bad("shards", "%d: expected 0 (Elasticsearch's default) or more", c.Shards)
	}
	if c.Replicas < -1 {
		bad("replicas", "%d: expected -1 (Elasticsearch's default) or more", c.Replicas)
	}
	errs = append(errs, spool.CheckLimits(c.SpoolMaxBytes, c.SpoolAfter)...)
	positive("stop_grace", c.StopGrace, "15s")
	var index *strftime.Pattern
	if c.Index == "" {
		bad("index", "no index name (expected e.g. \"flows-%%Y.%%m.%%d\")")
	} else if p, err := strftime.Compile(c.Index); err != nil {
		bad("index", "%q: %v", c.Index, err)
	} else if err := validateIndex(p); err != nil {
		bad("index", "%q: %v", c.Index, err)
	} else {
		index = p
	}
	if c.Template && index != nil {
		if index.Prefix() == "" {
			bad("index", "%q starts with a time code: its template would match every index; "+
				"begin the name with a fixed prefix such as \"flows-\", or give template = false", c.Index)
		} else if name := c.templateName(index); name != "" {
			if err := validateName(name); err != nil {
				bad("template_name", "%q: %v", name, err)
			}
		}
		if c.IndexBodyFile != "" && (c.Shards != 0 || c.Replicas != -1 || c.RefreshInterval != "") {
			bad("index_body_file", "shards, replicas and refresh_interval cannot be combined with an index body file: set them in %s", c.IndexBodyFile)
		}
	} else if c.IndexBodyFile != "" && !c.Template {
		bad("index_body_file", "an index body file needs the template (expected template = true)")
	}
	return index, errs
}

// templateName is the index template's name: TemplateName, or one derived
// from the index's prefix.
func (c Configuration) templateName(index *strftime.Pattern) string {
	if c.TemplateName != "" {
		return c.TemplateName
	}
	return defaultTemplateName(index.Prefix())
}

// validate checks c, reads the files and secrets it names, and derives what
// the sink needs from it.
func (c *Configuration) validate() (*compiled, error) {
	index, errs := c.check()
	bad := func(key, format string, args ...any) { errs = append(errs, setting.Errorf(key, format, args...)) }
	out := &compiled{index: index}
	var err error
	if c.Password, err = setting.Secret("password", c.Password, c.PasswordFile, c.PasswordEnv); err != nil {
		errs = append(errs, err)
	}
	if c.APIKey, err = setting.Secret("api_key", c.APIKey, c.APIKeyFile, c.APIKeyEnv); err != nil {
		errs = append(errs, err)
	}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		switch {
		case err != nil:
			bad("ca_cert", "%v", err) // "open X: no such file or directory"
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			bad("ca_cert", "%s: no PEM certificate in it", c.CACert)
		default:
			out.caPEM = pem
		}
	}
	if c.DeadLetterFile != "" {
		// found now rather than when the first rejected document needs it:
		// the directory exists, or Start can make it under an existing one
		if err := spool.CheckDir(filepath.Dir(c.DeadLetterFile)); err != nil {
			bad("dead_letter_file", "%s: %v", c.DeadLetterFile, err)
		}
	}
	if c.SpoolDir != "" {
		if err := spool.CheckDir(c.SpoolDir); err != nil {
			bad("spool_dir", "%s: %v", c.SpoolDir, err)
		}
	}
	if index != nil {
		out.templatePattern = templatePattern(index)
	}
	if c.Template && index != nil && index.Prefix() != "" {
		out.templateName = c.templateName(index)
		if c.IndexBodyFile != "" {
			data, err := os.ReadFile(c.IndexBodyFile)
			if err != nil {
				bad("index_body_file", "%v", err)
			} else if out.template, err = indexBodyTemplate(data, out.templatePattern, c.TemplatePriority); err != nil {
				bad("index_body_file", "%s: %v", c.IndexBodyFile, err)
			}
		} else {
			out.template = buildTemplate(templateOptions{
				pattern:         out.templatePattern,
				priority:        c.TemplatePriority,
				shards:          c.Shards,
				replicas:        c.Replicas,
				refreshInterval: c.RefreshInterval,
				labelMaps:       c.LabelMaps,
			})
		}
	}
	out.addrFields = newAddrFields(ignoredAddressFields(out.template))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// defaultTemplateName is "flowdex-" and the index prefix without its trailing
// separators: "flows-%Y.%m.%d" gives "flowdex-flows".
func defaultTemplateName(prefix string) string {
	p := strings.TrimRight(prefix, "-_.+")
	if p == "" || p == "flowdex" {
		return "flowdex"
	}
	if strings.HasPrefix(p, "flowdex-") {
		return p // "flowdex-flows", not "flowdex-flowdex-flows"
	}
	return "flowdex-" + p
}
