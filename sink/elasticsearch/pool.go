package elasticsearch

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
)

// Probing of a node set aside: first after probeMin, then twice as long
// after each probe that gets no answer, up to probeMax; each probe waits
// probeTimeout at most.
const (
	probeMin     = time.Second
	probeMax     = 10 * time.Second
	probeTimeout = 5 * time.Second
)

// nodePool is the node pool of a Client, in place of elastictransport's:
// requests go to the nodes in turn; a node that gives no answer (refused,
// reset, timed out) is set aside, and takes requests again as soon as it
// answers a probe (HEAD /, any status: its HTTP server is up). The
// transport's own pool keeps a failed node out for a minute, then twice as
// long after each failure, up to 32 minutes, and then tries it with a real
// request: a node restarted after a crash stayed unused for that long, and a
// node that hangs cost a request its full timeout at each try.
//
// When every node is set aside, requests still go to them in turn: the
// caller's retries, backoff and spool pace them, as with a single node.
type nodePool struct {
	transport http.RoundTripper // for probes
	logger    *slog.Logger      // nil: no logs

	mu    sync.Mutex
	nodes []*poolNode
	next  int
}

type poolNode struct {
	conn    *elastictransport.Connection
	name    string        // URL without password, for logs
	down    bool          // set aside
	wait    time.Duration // before the next probe
	probeAt time.Time
	probing bool
}

var _ elastictransport.ConnectionPool = (*nodePool)(nil)

func newNodePool(conns []*elastictransport.Connection, transport http.RoundTripper, logger *slog.Logger) *nodePool {
	p := &nodePool{transport: transport, logger: logger}
	for _, c := range conns {
		p.nodes = append(p.nodes, &poolNode{conn: c, name: c.URL.Redacted()})
	}
	return p
}

// ConcurrentSafe tells elastictransport that the pool needs no lock of its own.
func (p *nodePool) ConcurrentSafe() {}

// Next is the next node in turn that is not set aside; if all are, the
// next in turn. Probes that are due start here: a pool that takes no
// requests (its sink stopped) probes nothing.
func (p *nodePool) Next() (*elastictransport.Connection, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.nodes)
	if n == 0 {
		return nil, errors.New("no node")
	}
	now := time.Now()
	for _, nd := range p.nodes {
		if nd.down && !nd.probing && !now.Before(nd.probeAt) {
			nd.probing = true
			go p.probe(nd)
		}
	}
	for i := range n {
		nd := p.nodes[(p.next+i)%n]
		if !nd.down {
			p.next = (p.next + i + 1) % n
			return nd.conn, nil
		}
	}
	nd := p.nodes[p.next%n]
	p.next = (p.next + 1) % n
	return nd.conn, nil
}

// OnFailure sets the node of a request that got no answer aside.
func (p *nodePool) OnFailure(c *elastictransport.Connection) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	nd := p.find(c)
	if nd == nil || nd.down {
		return nil
	}
	nd.down, nd.wait = true, probeMin
	nd.probeAt = time.Now().Add(nd.wait)
	if p.logger != nil {
		p.logger.Warn("elasticsearch: node not answering; requests go to the other nodes until it answers again",
			"node", nd.name, "answering", p.answering())
	}
	return nil
}

// OnSuccess takes a node set aside back (a request sent to it while every
// node was set aside got an answer).
func (p *nodePool) OnSuccess(c *elastictransport.Connection) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if nd := p.find(c); nd != nil && nd.down {
		p.back(nd)
	}
	return nil
}

// URLs are the nodes not set aside.
func (p *nodePool) URLs() []*url.URL {
	p.mu.Lock()
	defer p.mu.Unlock()
	var urls []*url.URL
	for _, nd := range p.nodes {
		if !nd.down {
			urls = append(urls, nd.conn.URL)
		}
	}
	return urls
}

// find is the node of c: the same connection, or one of the same URL.
func (p *nodePool) find(c *elastictransport.Connection) *poolNode {
	for _, nd := range p.nodes {
		if nd.conn == c || nd.conn.Cmp(c) {
			return nd
		}
	}
	return nil
}

// answering counts the nodes not set aside.
func (p *nodePool) answering() int {
	n := 0
	for _, nd := range p.nodes {
		if !nd.down {
			n++
		}
	}
	return n
}

// back takes a node set aside back.
func (p *nodePool) back(nd *poolNode) {
	nd.down = false
	if p.logger != nil {
		p.logger.Info("elasticsearch: node answers again; it takes requests again", "node", nd.name, "answering", p.answering())
	}
}

// probe sends HEAD / to a node set aside: any answer takes it back; else
// the next probe waits twice as long.
func (p *nodePool) probe(nd *poolNode) {
	err := p.head(nd.conn.URL)
	p.mu.Lock()
	defer p.mu.Unlock()
	nd.probing = false
	if !nd.down {
		return
	}
	if err == nil {
		p.back(nd)
		return
	}
	nd.wait = min(2*nd.wait, probeMax)
	nd.probeAt = time.Now().Add(nd.wait)
}

// head sends HEAD / to u, without credentials: any status is an answer.
func (p *nodePool) head(u *url.URL) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	target := *u
	target.User = nil
	target.Path += "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, target.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", userAgent)
	res, err := p.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	return res.Body.Close()
}

// update makes urls the pool's nodes: a node already there (same scheme,
// host and port) keeps its state, the others are added, and the nodes not in
// urls are removed (a request in flight to one finishes). It returns the
// names of the nodes added and removed.
func (p *nodePool) update(urls []*url.URL) (added, removed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	nodes := make([]*poolNode, 0, len(urls))
	for _, u := range urls {
		if slices.ContainsFunc(nodes, func(nd *poolNode) bool { return sameNode(nd.conn.URL, u) }) {
			continue
		}
		i := slices.IndexFunc(p.nodes, func(nd *poolNode) bool { return sameNode(nd.conn.URL, u) })
		if i >= 0 {
			nodes = append(nodes, p.nodes[i])
			continue
		}
		nd := &poolNode{conn: &elastictransport.Connection{URL: u}, name: u.Redacted()}
		nodes = append(nodes, nd)
		added = append(added, nd.name)
	}
	for _, nd := range p.nodes {
		if !slices.Contains(nodes, nd) {
			removed = append(removed, nd.name)
		}
	}
	if len(nodes) == 0 {
		return nil, nil // never empty: callers give at least the configured nodes
	}
	p.nodes = nodes
	p.next %= len(nodes)
	return added, removed
}

// sameNode tells whether a and b are the URLs of one node.
func sameNode(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && a.Host == b.Host
}

// all are the URLs of every node, set aside or not.
func (p *nodePool) all() []*url.URL {
	p.mu.Lock()
	defer p.mu.Unlock()
	urls := make([]*url.URL, len(p.nodes))
	for i, nd := range p.nodes {
		urls[i] = nd.conn.URL
	}
	return urls
}

// count gives the number of nodes and of those set aside.
func (p *nodePool) count() (nodes, aside int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.nodes), len(p.nodes) - p.answering()
}
