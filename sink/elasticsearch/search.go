package elasticsearch

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/flowdex/flowdex/internal/strftime"
)

// Searcher runs searches over the indices an output writes, with the sink's
// connection settings (nodes, TLS, credentials): what the web view reads.
type Searcher struct {
	cfg     Configuration
	client  *Client
	pattern string
}

// NewSearcher checks cfg (the sink's) and makes a client; nothing is
// contacted before Search.
func NewSearcher(cfg Configuration) (*Searcher, error) {
	cfg.Template = false // searching needs neither the template nor its checks
	cfg.IndexBodyFile = ""
	c, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	if err := searchable(cfg.Index, c.index); err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	client, err := newClient(&cfg, c, nil, 4, nil)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	return &Searcher{cfg: cfg, client: client, pattern: c.templatePattern}, nil
}

// Searchable reports whether the indices an output names index writes can be
// searched apart from the rest of the cluster: nil, or why not.
func Searchable(index string) error {
	p, err := strftime.Compile(index)
	if err != nil {
		return fmt.Errorf("index %q: %w", index, err)
	}
	return searchable(index, p)
}

func searchable(index string, p *strftime.Pattern) error {
	if strings.Trim(p.Prefix(), ".-_+") == "" {
		// its pattern would be "*", ".*" or the like: every index of the
		// cluster (system ones included), not the output's
		return fmt.Errorf("index %q has no fixed prefix of letters or digits before its time codes: searching its indices would search every index; "+
			"begin the name with a prefix such as \"flows-\"", index)
	}
	return nil
}

// Pattern is the wildcard that matches every index the output writes.
func (s *Searcher) Pattern() string { return s.pattern }

// Search posts body to _search over Pattern (no index yet is no error) and
// returns Elasticsearch's status and answer.
func (s *Searcher) Search(ctx context.Context, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout.Duration)
	defer cancel()
	allow, ignore := true, true
	status, answer, err := do(ctx, s.client, esapi.SearchRequest{
		Index: []string{s.pattern}, Body: bytes.NewReader(body),
		AllowNoIndices: &allow, IgnoreUnavailable: &ignore,
	})
	if err != nil {
		return 0, nil, reachError(RedactURL(s.cfg.URLs[0]), err)
	}
	if status != http.StatusOK {
		return status, answer, fmt.Errorf("elasticsearch: search: %s", errorBody(status, answer))
	}
	return status, answer, nil
}
