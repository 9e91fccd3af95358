package elasticsearch

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/flowdex/flowdex/sink/elasticsearch/internal/strftime"
)

// Configuration of an Elasticsearch sink. Start from DefaultConfiguration: the
// zero value is not valid.
type Configuration struct {
	// URLs of the Elasticsearch nodes (p2es ES_URL); requests are spread over
	// them and a node that fails is skipped for a while.
	URLs []string
	// Username and Password for HTTP basic authentication (p2es ES_AuthType
	// "basic", ES_UserName, ES_Password). The password is never logged.
	Username string
	Password string
	// APIKey authenticates with an Elasticsearch API key (the base64
	// "encoded" value), instead of a username and password. Never logged.
	APIKey string
	// CACert is a PEM file of certificate authorities trusted for https URLs,
	// besides the system's. Certificates are always verified unless
	// InsecureSkipVerify, which Start warns about.
	CACert             string
	InsecureSkipVerify bool

	// Index is the index name, with Python strftime codes (p2es ES_IndexName),
	// rendered for each document from the time its pipeline gives it (see
	// Write) in IndexLocation.
	Index string
	// IndexLocation is the time zone the index name is rendered in: UTC by
	// default; time.Local for p2es's habit.
	IndexLocation *time.Location
	// DocType is p2es ES_Type. Mapping types are gone since Elasticsearch 7
	// (typed bulk URLs were removed in 8): it is accepted and ignored, with a
	// warning.
	DocType string

	// Template installs an index template for the index at Start.
	Template bool
	// TemplateName names it; empty: "flowdex-" and the index prefix.
	TemplateName string
	// TemplatePriority of the composable template; 0 leaves it unset.
	TemplatePriority int
	// IndexBodyFile is p2es ES_IndexTemplateFileName: a JSON index-creation body
	// ({"settings":…, "mappings":…}) that replaces flowdex's mappings. It is
	// installed as the template of the index pattern, so every new index gets it.
	IndexBodyFile string
	// Shards, Replicas and RefreshInterval are the template's
	// index.number_of_shards, number_of_replicas and refresh_interval: 0, -1
	// and "" leave Elasticsearch's defaults.
	Shards          int
	Replicas        int
	RefreshInterval string

	// FlushDocs sends a bulk request when it holds this many documents (p2es
	// ES_FlushSize); 0 or less: no count limit.
	FlushDocs int
	// FlushBytes sends a bulk request before its body would exceed this size
	// (a larger single document is sent alone).
	FlushBytes int
	// FlushInterval sends what is buffered at least this often.
	FlushInterval time.Duration
	// Workers is the number of bulk requests in flight at once.
	Workers int
	// RequestTimeout bounds one bulk request; a request that times out is retried.
	RequestTimeout time.Duration

	// MaxRetries is how many times a failed bulk request, or a document
	// Elasticsearch refused for overload (429, 5xx), is sent again.
	MaxRetries int
	// BackoffMin and BackoffMax bound the exponential backoff between retries.
	BackoffMin time.Duration
	BackoffMax time.Duration

	// DeadLetterFile receives, one JSON object per line, the documents
	// Elasticsearch rejected or that could not be delivered after the retries.
	// It is created when first needed and appended to. Empty: such documents
	// are only logged and counted as failed.
	DeadLetterFile string

	// SpoolDir keeps, on disk, the bulk requests Elasticsearch could not take
	// (unreachable, overloaded past the retries, or the sink stopping): they
	// are sent again, oldest first, when it answers, also after a restart.
	// While anything is spooled, new requests join the queue on disk, so the
	// order is kept and memory stays bounded whatever the outage length.
	// Empty: no spool; such documents go to the dead-letter file.
	SpoolDir string
	// SpoolMaxBytes caps the spool; a request that does not fit is
	// dead-lettered, with an error saying the spool is full.
	SpoolMaxBytes int64
}

// DefaultConfiguration returns the defaults: a local Elasticsearch, daily
// indices "flows-YYYY.MM.DD" in UTC, bulk requests of 5000 documents or 5 MB or
// every 5 seconds, two in flight, ten retries (about 45 s of backoff).
func DefaultConfiguration() Configuration {
	return Configuration{
		URLs:           []string{"http://localhost:9200"},
		Index:          "flows-%Y.%m.%d",
		IndexLocation:  time.UTC,
		Template:       true,
		Replicas:       -1,
		FlushDocs:      5000,
		FlushBytes:     5_000_000,
		FlushInterval:  5 * time.Second,
		Workers:        2,
		RequestTimeout: time.Minute,
		MaxRetries:     10,
		BackoffMin:     100 * time.Millisecond,
		BackoffMax:     10 * time.Second,
		SpoolMaxBytes:  1 << 30,
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
		urls[i] = redactURL(u)
	}
	return slog.GroupValue(
		slog.Any("urls", urls),
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
		slog.Duration("flush_interval", c.FlushInterval),
		slog.Int("workers", c.Workers),
		slog.Int("max_retries", c.MaxRetries),
		slog.String("dead_letter_file", c.DeadLetterFile),
	)
}

// redactURL hides a password written in a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// compiled is what New derives from a valid Configuration.
type compiled struct {
	index           *strftime.Pattern
	templatePattern string // e.g. "flows-*"
	templateName    string
	template        []byte // the PUT _index_template body; nil when Template is false
	caPEM           []byte // CACert's content
}

// validate checks c and derives what the sink needs from it.
func (c *Configuration) validate() (*compiled, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	out := &compiled{}

	if len(c.URLs) == 0 {
		bad("no Elasticsearch URL")
	}
	for _, s := range c.URLs {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			bad("URL %q: %v", redactURL(s), err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("URL %q: the scheme must be http or https", redactURL(s))
		case u.Host == "":
			bad("URL %q: no host", redactURL(s))
		}
	}
	if c.Password != "" && c.Username == "" {
		bad("a password without a username")
	}
	if c.APIKey != "" && (c.Username != "" || c.Password != "") {
		bad("an API key and a username/password: give one way to authenticate")
	}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		switch {
		case err != nil:
			bad("ca_cert: %v", err) // "open X: no such file or directory"
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			bad("ca_cert %s: no PEM certificate in it", c.CACert)
		default:
			out.caPEM = pem
		}
	}
	if c.FlushBytes <= 0 {
		bad("flush bytes must be positive, not %d", c.FlushBytes)
	}
	if c.FlushInterval <= 0 {
		bad("flush interval must be positive, not %s", c.FlushInterval)
	}
	if c.Workers < 1 {
		bad("workers must be at least 1, not %d", c.Workers)
	}
	if c.RequestTimeout <= 0 {
		bad("request timeout must be positive, not %s", c.RequestTimeout)
	}
	if c.MaxRetries < 0 {
		bad("max retries must not be negative, not %d", c.MaxRetries)
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		bad("backoff must be 0 < min (%s) <= max (%s)", c.BackoffMin, c.BackoffMax)
	}
	if c.Shards < 0 {
		bad("shards must not be negative, not %d", c.Shards)
	}
	if c.Replicas < -1 {
		bad("replicas must be -1 (Elasticsearch's default) or more, not %d", c.Replicas)
	}

	if c.Index == "" {
		bad("no index name")
	} else if p, err := strftime.Compile(c.Index); err != nil {
		bad("index %q: %v", c.Index, err)
	} else if err := validateIndex(p); err != nil {
		bad("index %q: %v", c.Index, err)
	} else {
		out.index = p
		out.templatePattern = templatePattern(p)
	}

	if c.Template && out.index != nil {
		switch {
		case out.index.Prefix() == "":
			bad("index %q starts with a time code: its template would match every index; "+
				"begin the name with a fixed prefix such as \"flows-\", or disable the template", c.Index)
		default:
			out.templateName = c.TemplateName
			if out.templateName == "" {
				out.templateName = defaultTemplateName(out.index.Prefix())
			}
			if err := validateName(out.templateName); err != nil {
				bad("template name %q: %v", out.templateName, err)
			}
		}
		var body []byte
		if c.IndexBodyFile != "" {
			if c.Shards != 0 || c.Replicas != -1 || c.RefreshInterval != "" {
				bad("shards, replicas and refresh interval cannot be combined with an index body file: set them in %s", c.IndexBodyFile)
			}
			data, err := os.ReadFile(c.IndexBodyFile)
			if err != nil {
				bad("index body file: %v", err)
			} else if body, err = indexBodyTemplate(data, out.templatePattern, c.TemplatePriority); err != nil {
				bad("index body file %s: %v", c.IndexBodyFile, err)
			}
		} else {
			body = buildTemplate(templateOptions{
				pattern:         out.templatePattern,
				priority:        c.TemplatePriority,
				shards:          c.Shards,
				replicas:        c.Replicas,
				refreshInterval: c.RefreshInterval,
			})
		}
		out.template = body
	} else if c.IndexBodyFile != "" {
		bad("an index body file needs the template enabled")
	}
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
