package elasticsearch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	tpversion "github.com/elastic/elastic-transport-go/v8/elastictransport/version"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Client sends requests to the nodes of a Configuration, with its credentials
// and TLS settings. It is go-elasticsearch's client without the root package:
// the client's transport (elastictransport: authentication, retries off;
// with several nodes, flowdex's node pool, which skips a failed node until it
// answers again) runs the esapi request types
// the sink uses. The root package's API tables (esapi.New, typedapi) reference
// every endpoint of the API: for the seven requests here, flowdex linked 859
// more packages and 7.4 MB more binary. What the root client adds to the transport is done
// here the same way: its User-Agent and X-Elastic-Client-Meta headers, the
// compatibility header when ELASTIC_CLIENT_APIVERSIONING is true, and the
// check that the server is Elasticsearch.
type Client struct {
	transport *elastictransport.Client
	pool      *nodePool   // nil with one node and no discovery: elastictransport's
	seeds     []*url.URL  // the configured nodes
	nodes     string      // the nodes' URLs, passwords hidden, for messages
	compat    bool        // send the compatibility header (ELASTIC_CLIENT_APIVERSIONING)
	genuine   atomic.Bool // a 2xx answer said X-Elastic-Product: Elasticsearch
}

const (
	headerClientMeta    = "X-Elastic-Client-Meta"
	compatibilityHeader = "application/vnd.elasticsearch+json;compatible-with=8"
)

// errUnknownProduct is go-elasticsearch's error for a server that does not
// say it is Elasticsearch.
var errUnknownProduct = errors.New("the client noticed that the server is not Elasticsearch and we do not support this unknown product")

var (
	// userAgent is go-elasticsearch's: "go-elasticsearch/8.19.7 (linux amd64; Go 1.26.8)"
	userAgent = "go-elasticsearch/" + esapi.Version + " (" + runtime.GOOS + " " + runtime.GOARCH + "; Go " +
		regexp.MustCompile(`go(\d+\.\d+\..+)`).ReplaceAllString(runtime.Version(), "$1") + ")"
	// clientMeta is go-elasticsearch's X-Elastic-Client-Meta: client, Go,
	// transport and HTTP client versions ("es=8.19.7,go=1.26.8,t=8.9.0,hc=1.26.8")
	clientMeta = []string{"es=" + metaVersion(esapi.Version) + ",go=" + metaVersion(runtime.Version()) +
		",t=" + metaVersion(tpversion.Transport) + ",hc=" + metaVersion(runtime.Version())}
	compatibility = []string{compatibilityHeader}
)

var reMetaVersion = regexp.MustCompile("([0-9.]+)(.*)")

// metaVersion is a version as X-Elastic-Client-Meta writes it: the numbers,
// and "p" for anything after them (a pre-release).
func metaVersion(v string) string {
	m := reMetaVersion.FindStringSubmatch(v)
	switch {
	case len(m) != 3 || strings.Contains(v, "devel"):
		return "0.0p"
	case m[2] != "":
		return m[1] + "p"
	}
	return m[1]
}

// NewClient checks cfg (the sink's; its template settings are not needed
// here) and makes a client for its nodes, credentials and TLS settings that
// keeps up to idle connections per node open: how retention talks to the
// sink's Elasticsearch. Nothing is contacted.
func NewClient(cfg Configuration, idle int) (*Client, error) {
	cfg.Template = false
	cfg.IndexBodyFile = ""
	c, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	client, err := newClient(&cfg, c, nil, idle, nil)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	return client, nil
}

// newClient makes a client for cfg's nodes, credentials and TLS settings (the
// sink's, the searcher's and retention's); transport, when not nil, replaces
// the HTTP one (tests). With several nodes, or node discovery, requests go
// through a nodePool, and logger (nil: none) says when a node is set aside
// and when it is back. Nothing is contacted.
func newClient(cfg *Configuration, c *compiled, transport http.RoundTripper, idlePerHost int, logger *slog.Logger) (*Client, error) {
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = idlePerHost
		t.TLSClientConfig = tlsConfig(cfg, c.caPEM)
		transport = t
	}
	urls := make([]*url.URL, 0, len(cfg.URLs))
	redacted := make([]string, 0, len(cfg.URLs))
	for _, s := range cfg.URLs {
		redacted = append(redacted, RedactURL(s))
		u, err := url.Parse(strings.TrimRight(s, "/"))
		if err != nil {
			return nil, fmt.Errorf("URL %q: %w", RedactURL(s), err)
		}
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		return nil, errors.New("no Elasticsearch URL")
	}
	user, password := cfg.Username, cfg.Password
	if urls[0].User != nil {
		// as go-elasticsearch does: the first URL's credentials are those of
		// every node that has none in its own URL
		user = urls[0].User.Username()
		password, _ = urls[0].User.Password()
	}
	opts := []elastictransport.Option{
		elastictransport.WithUserAgent(userAgent),
		elastictransport.WithURLs(urls...),
		elastictransport.WithDisableRetry(), // callers retry themselves, with backoff and per document
		elastictransport.WithTransport(transport),
	}
	var pool *nodePool
	if len(urls) > 1 || cfg.DiscoverNodes {
		opts = append(opts, elastictransport.WithConnectionPoolFunc(func(conns []*elastictransport.Connection, _ elastictransport.Selector) elastictransport.ConnectionPool {
			pool = newNodePool(conns, transport, logger)
			return pool
		}))
	}
	if cfg.APIKey != "" {
		opts = append(opts, elastictransport.WithAPIKey(cfg.APIKey))
	} else if user != "" || password != "" {
		opts = append(opts, elastictransport.WithBasicAuth(user, password))
	}
	tp, err := elastictransport.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	compat, _ := strconv.ParseBool(os.Getenv("ELASTIC_CLIENT_APIVERSIONING"))
	return &Client{transport: tp, pool: pool, seeds: urls, nodes: strings.Join(redacted, ", "), compat: compat}, nil
}

// Nodes names the nodes, for messages: their URLs, passwords hidden.
func (c *Client) Nodes() string { return c.nodes }

// Do sends req and reads the whole answer. An error is a request that got no
// answer: it names the nodes, and says so when their certificate is not
// trusted.
func (c *Client) Do(ctx context.Context, req esapi.Request) (status int, body []byte, err error) {
	status, body, err = do(ctx, c, req)
	if err != nil {
		return 0, nil, reachError(c.nodes, err)
	}
	return status, body, nil
}

// ErrorMessage says what an answer that is not a success reports: its
// status, and Elasticsearch's error type, reason and causes, else the start
// of the body.
func ErrorMessage(status int, body []byte) string { return errorBody(status, body) }

// Perform sends req to the next live node (esapi's Transport). Until a 2xx
// answer says the server is Elasticsearch, a 2xx answer that does not is an
// error, as in go-elasticsearch.
func (c *Client) Perform(req *http.Request) (*http.Response, error) {
	if c.compat {
		if req.Body != nil {
			req.Header["Content-Type"] = compatibility
		}
		req.Header["Accept"] = compatibility
	}
	req.Header[headerClientMeta] = clientMeta
	res, err := c.transport.Perform(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 == 2 && !c.genuine.Load() {
		if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
			res.Body.Close()
			return nil, errUnknownProduct
		}
		c.genuine.Store(true)
	}
	return res, nil
}
