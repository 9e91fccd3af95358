package elasticsearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// discoverLoop runs node discovery at once (when Elasticsearch was not
// ready at start, once the drain has set it up), then every
// DiscoverInterval, until ctx ends (Stop).
func (s *Sink) discoverLoop(ctx context.Context, now bool) {
	defer s.discoverer.Done()
	t := time.NewTicker(s.cfg.DiscoverInterval.Duration)
	defer t.Stop()
	for {
		if now {
			s.discover(ctx)
		}
		select {
		case <-t.C:
		case <-s.discoverNow:
		case <-ctx.Done():
			return
		}
		now = true
	}
}

// discover asks the cluster for its nodes and makes them the pool's. When
// that fails, or finds no node to send requests to, the configured nodes are
// put back beside those the pool has, and none is removed: the configured
// ones are the operator's way in (a name that follows the cluster, say), and
// a failed discovery says nothing of which nodes went away.
func (s *Sink) discover(ctx context.Context) {
	pool := s.client.pool
	urls, err := s.client.discoverNodes(ctx, s.cfg.RequestTimeout.Duration)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping
		}
		s.discoveryFailures.Add(1)
		urls = append(pool.all(), s.client.seeds...)
		s.logger.Warn("elasticsearch: node discovery failed; requests go to the nodes known and the configured ones",
			"error", err, "retry_in", s.cfg.DiscoverInterval.Duration)
	} else {
		s.discoveries.Add(1)
	}
	added, removed := pool.update(urls)
	if len(added) > 0 || len(removed) > 0 {
		n, _ := pool.count()
		s.logger.Info("elasticsearch: node set changed", "added", added, "removed", removed, "nodes", n)
	}
}

// discoverNodes asks a node for the cluster's nodes (GET /_nodes/http) and
// returns those requests can go to, with the scheme of the configured nodes.
// A node that gives no answer or an error is set aside (for no answer) and
// the next one asked, each within timeout, up to one try per node.
func (c *Client) discoverNodes(ctx context.Context, timeout time.Duration) ([]*url.URL, error) {
	tries, _ := c.pool.count()
	var err error
	for range max(tries, 1) {
		var status int
		var body []byte
		rctx, cancel := context.WithTimeout(ctx, timeout)
		status, body, err = c.Do(rctx, esapi.NodesInfoRequest{
			Metric:     []string{"http"},
			FilterPath: []string{"nodes.*.name", "nodes.*.roles", "nodes.*.http.publish_address"},
		})
		cancel()
		switch {
		case err == nil && status == http.StatusOK:
			return parseNodes(body, c.seeds[0].Scheme)
		case err == nil:
			err = errors.New(errorBody(status, body))
		case ctx.Err() != nil:
			return nil, err
		}
	}
	return nil, err
}

// parseNodes reads the answer of GET /_nodes/http: the publish address of
// each node that serves HTTP and is not a dedicated master (master-eligible
// without a data or ingest role), as a URL of scheme, in name order.
// Elasticsearch writes the address "host/ip:port" when the node was given a
// host name: the name is kept, for TLS certificates that name hosts.
func parseNodes(body []byte, scheme string) ([]*url.URL, error) {
	var r struct {
		Nodes map[string]struct {
			Name  string   `json:"name"`
			Roles []string `json:"roles"`
			HTTP  struct {
				PublishAddress string `json:"publish_address"`
			} `json:"http"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("reading GET /_nodes/http: %w", err)
	}
	type node struct {
		name string
		url  *url.URL
	}
	var nodes []node
	masters := 0
	for id, n := range r.Nodes {
		if dedicatedMaster(n.Roles) {
			masters++
			continue
		}
		addr := n.HTTP.PublishAddress
		if addr == "" {
			continue // HTTP off on that node
		}
		name, addr, named := strings.Cut(addr, "/")
		if !named {
			addr = name
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("GET /_nodes/http: node %s (%s): publish address %q: %w", n.Name, id, n.HTTP.PublishAddress, err)
		}
		if named && name != "" {
			host = name
		}
		nodes = append(nodes, node{n.Name + id, &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}})
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("GET /_nodes/http named no node to send requests to (%d nodes, %d of them dedicated masters)", len(r.Nodes), masters)
	}
	slices.SortFunc(nodes, func(a, b node) int { return strings.Compare(a.name, b.name) })
	urls := make([]*url.URL, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url
	}
	return urls, nil
}

// dedicatedMaster tells whether a node of roles is master-eligible and
// holds no data nor runs ingest pipelines: such nodes are kept free of
// client requests, as the official clients do.
func dedicatedMaster(roles []string) bool {
	if !slices.Contains(roles, "master") {
		return false
	}
	for _, r := range roles {
		if r == "ingest" || r == "data" || strings.HasPrefix(r, "data_") {
			return false
		}
	}
	return true
}
