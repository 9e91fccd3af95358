// Package elasticsearch writes documents to Elasticsearch with bulk requests:
// the sink that replaces pmacct-to-elasticsearch.
//
// Each document is indexed in the index its own time names (a strftime
// pattern such as "flows-%Y.%m.%d"), with @timestamp set from that time. Write
// encodes the document at once into a bulk body; bodies are sent by a few
// workers when they hold FlushDocs documents or FlushBytes bytes, or every
// FlushInterval. When every body is in flight, Write blocks: memory stays
// bounded and a slow Elasticsearch slows the reader down.
//
// Delivery: a document with an id is sent with the create action, so that a
// retried request cannot index it twice (a conflict counts as a duplicate).
// Requests that fail as a whole (network errors, 429, 5xx) and documents
// Elasticsearch refuses for overload (429, 5xx) are retried with exponential
// backoff; documents it rejects (mapping errors and the like), and those still
// failing after the retries, go to the dead-letter file. After Stop, every
// document written is counted in exactly one of Indexed, Duplicates, Failed or
// DeadLettered.
package elasticsearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/sink/spool"
)

// Stats counts documents and requests since New.
type Stats struct {
	Written      uint64 // documents accepted by Write
	Indexed      uint64 // documents Elasticsearch indexed
	Duplicates   uint64 // documents whose id was already indexed (create conflict, or found so after a cut request)
	Failed       uint64 // documents neither indexed nor dead-lettered
	DeadLettered uint64 // documents written to the dead-letter file
	Retried      uint64 // documents sent again (each new attempt counts)
	Requests     uint64 // bulk requests sent
	BulkErrors   uint64 // bulk requests that failed as a whole
	Spooled      uint64 // documents written to the spool (each time)
	Replayed     uint64 // documents read back from the spool and sent
	SpoolLost    uint64 // spooled documents lost to damaged records (a torn write, bytes changed on disk)
	// Unconfirmed counts documents among Failed and DeadLettered that a
	// request cut short (no answer) may have indexed after all, and that no
	// check could confirm either way: a replay of their dead-letter records,
	// with their ids, answers 409 for those Elasticsearch holds.
	Unconfirmed uint64
	// MalformedAddresses counts values of the template's ip fields that are
	// not addresses: their documents are indexed without them.
	MalformedAddresses uint64
	// Discoveries and DiscoveryFailures count node discoveries
	// (discover_nodes) that found nodes, and those that did not.
	Discoveries       uint64
	DiscoveryFailures uint64
	// Nodes is the number of nodes requests go to in turn (the configured
	// ones, or those discovered); NodesAside of them are set aside, not
	// answering.
	Nodes      int
	NodesAside int
	SpoolBytes int64 // what the spool holds now
	SpoolDocs  int64 // documents it holds now
	Queued     int64 // documents in memory: accepted by Write, not yet indexed, given up or spooled
	Latency    Latency
}

// Errors of Write.
var (
	ErrNotStarted = errors.New("elasticsearch sink: not started")
	ErrStopped    = errors.New("elasticsearch sink: stopped")
)

const (
	stateNew = iota
	stateStarted
	stateStopped
)

// Sink sends documents to Elasticsearch. Write is safe for concurrent use.
type Sink struct {
	cfg    Configuration
	c      *compiled
	logger *slog.Logger

	// transport, when set before Start, replaces the HTTP transport (tests).
	transport http.RoundTripper
	client    *Client
	// versionChecked is set once the setup has checked the server's
	// version (the setups run one after the other)
	versionChecked bool
	pool           atomic.Pointer[nodePool] // client's, for Stats; nil with one node and no discovery
	version        string

	// now is the clock that dates a document without a time of its own;
	// tests set it before Start.
	now func() time.Time

	encoders sync.Pool // *encoder: Write encodes before it takes the lock

	// lock (a channel, so that waiting for it can end with a context) guards
	// the fields below and the current batch
	lock    chan struct{}
	state   int
	cur     *batch
	scratch []byte // WriteRaw's encoding

	free     chan *batch // empty batches; Write waits here when all are in flight
	send     chan *batch // full batches for the workers
	stopping chan struct{}
	stopOnce sync.Once

	workers   sync.WaitGroup
	ticker    sync.WaitGroup
	runCtx    context.Context // cancelled when Stop gives up waiting
	cancelRun context.CancelFunc
	// sendCtx is runCtx, also cancelled when StopGrace is over (hurry): the
	// requests in flight then are abandoned
	sendCtx    context.Context
	cancelSend context.CancelFunc
	hurry      chan struct{} // closed when StopGrace is over: what is left is spooled at once
	hurryOnce  sync.Once
	stopWatch  func() bool                // stops the watch of Start's context
	graceTimer atomic.Pointer[time.Timer] // runs from the end of Start's context to hurryUp
	// pendingSetup is the setup Start did not wait for (Elasticsearch slow
	// to answer), which the drain takes over; nil when none
	pendingSetup chan error

	deadLetter *deadLetterFile
	spool      *spool.Spool  // nil without SpoolDir
	kick       chan struct{} // wakes the drain when something is spooled
	drainer    sync.WaitGroup
	// discoverer runs node discovery (discover_nodes) until stopDiscover;
	// discoverNow starts one at once
	discoverer   sync.WaitGroup
	stopDiscover context.CancelFunc
	discoverNow  chan struct{}
	needSetup    atomic.Bool     // Elasticsearch was unreachable at Start: version and template are to do
	spoolErr     ratelog.Limiter // log of spool failures
	rejected     ratelog.Limiter // log of documents Elasticsearch rejected
	gaveUp       ratelog.Limiter // log of documents given up after retries
	retrying     ratelog.Limiter // log of retried requests
	setupLog     ratelog.Limiter // log of retried setups
	addrs        addressCheck    // values of address fields that are not addresses (encode.go)

	written, indexed, duplicates, failed, deadLettered atomic.Uint64
	retried, requests, bulkErrors                      atomic.Uint64
	spooled, replayed, spoolLost, unconfirmed          atomic.Uint64
	discoveries, discoveryFailures                     atomic.Uint64
	queued                                             atomic.Int64
	latency                                            latency
	settle                                             settlement // for Sync
	// failing holds the error of the last bulk request that failed as a whole,
	// nil once a request succeeds (for health checks)
	failing atomic.Pointer[failure]
	started atomic.Bool // for Health, which must not wait for lock
}

// New checks the configuration and returns an inert sink: nothing is
// contacted before Start. A nil logger is slog.Default().
func New(cfg Configuration, logger *slog.Logger) (*Sink, error) {
	if logger == nil {
		logger = slog.Default()
	}
	cfg.URLs = append([]string(nil), cfg.URLs...)
	c, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	s := &Sink{cfg: cfg, c: c, logger: logger, now: time.Now, stopping: make(chan struct{}), hurry: make(chan struct{}),
		lock: make(chan struct{}, 1)}
	every := 10 * time.Second
	s.rejected.Every, s.gaveUp.Every, s.retrying.Every, s.spoolErr.Every, s.addrs.log.Every = every, every, every, every, every
	s.setupLog.Every = every
	if cfg.DeadLetterFile != "" {
		s.deadLetter = &deadLetterFile{path: cfg.DeadLetterFile}
	}
	return s, nil
}

// startWait is how long Start waits for Elasticsearch when a spool can take
// the documents meanwhile: the daemon's inputs open after Start, and every
// second they wait loses what the exporters send.
const startWait = time.Second

// Start connects to Elasticsearch, checks its version, installs the index
// template and starts the workers. With a spool, an Elasticsearch that does
// not answer within a second does not hold the start up: documents go to the
// spool until it answers, and the setup is finished then.
//
// The end of ctx tells the sink that the daemon is stopping (SIGTERM): from
// then on it has StopGrace to deliver, after which the requests in flight are
// abandoned and everything left goes to the spool (or the dead-letter file).
// Write and Stop work as before.
func (s *Sink) Start(ctx context.Context) error {
	s.lock <- struct{}{}
	defer s.unlock()
	if s.state != stateNew {
		return errors.New("elasticsearch: Start called twice")
	}
	if s.cfg.InsecureSkipVerify {
		s.logger.Warn("elasticsearch: TLS certificates are NOT verified (tls_insecure_skip_verify): anyone on the path can read and change what is sent")
	}
	client, err := newClient(&s.cfg, s.c, s.transport, s.cfg.Workers+2, s.logger)
	if err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	s.client = client
	s.pool.Store(client.pool)
	if s.cfg.SpoolDir != "" {
		if s.spool, err = openSpool(s.cfg.SpoolDir, s.cfg.SpoolMaxBytes); err != nil {
			return fmt.Errorf("elasticsearch: %w", err)
		}
		if b := s.spool.Bytes(); b > 0 {
			s.logger.Info("elasticsearch: the spool holds documents of an earlier run; sending them first", "dir", s.cfg.SpoolDir,
				"documents", s.spool.Entries(), "bytes", b)
		}
	}
	s.runCtx, s.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	s.sendCtx, s.cancelSend = context.WithCancel(s.runCtx)
	if err := s.startSetup(ctx); err != nil {
		s.cancelRun()
		if s.spool != nil {
			s.spool.Close() // releases the directory
		}
		return err
	}
	n := s.cfg.Workers + 1 // one being filled, one per worker in flight
	s.free = make(chan *batch, n)
	s.send = make(chan *batch, n)
	for range n {
		s.free <- &batch{}
	}
	s.stopWatch = context.AfterFunc(ctx, func() {
		s.graceTimer.Store(time.AfterFunc(s.cfg.StopGrace.Duration, s.hurryUp))
	})
	for range s.cfg.Workers {
		s.workers.Add(1)
		go s.work(&worker{})
	}
	s.ticker.Add(1)
	go s.tick()
	if s.cfg.DiscoverNodes {
		var dctx context.Context
		dctx, s.stopDiscover = context.WithCancel(s.runCtx)
		s.discoverNow = make(chan struct{}, 1)
		s.discoverer.Add(1)
		go s.discoverLoop(dctx, !s.needSetup.Load())
	}
	if s.spool != nil {
		s.kick = make(chan struct{}, 1)
		s.drainer.Add(1)
		go s.drain()
	}
	s.state = stateStarted
	s.started.Store(true)
	return nil
}

// startSetup runs the setup, retrying what may pass by itself (see
// setupRetrying) for StartTimeout. With a spool, it waits startWait at most
// and leaves the rest to the drain: an Elasticsearch not ready is an outage
// like any other. A permanent failure fails the start either way.
func (s *Sink) startSetup(ctx context.Context) error {
	if s.spool == nil {
		if err := s.setupRetrying(ctx, time.Now().Add(s.cfg.StartTimeout.Duration)); err != nil {
			return fmt.Errorf("elasticsearch: %w", err)
		}
		return nil
	}
	pending := make(chan error, 1)
	go func() { pending <- s.setupRetrying(s.sendCtx, time.Time{}) }()
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case err := <-pending:
		if err != nil {
			return fmt.Errorf("elasticsearch: %w", err)
		}
		return nil
	case <-t.C:
		s.logger.Warn("elasticsearch: not ready at start; spooling until it is", "waited", startWait, "dir", s.cfg.SpoolDir)
		s.pendingSetup = pending
	case <-ctx.Done():
		return fmt.Errorf("elasticsearch: %w", ctx.Err())
	}
	s.needSetup.Store(true)
	return nil
}

// setupRetrying runs the setup until it succeeds, fails for good (refused
// credentials, an old version, a rejected template, an untrusted
// certificate: an error that is not a transientError), ctx ends, or, unless
// until is zero, the next try would start after until. Between tries it
// waits BackoffMin, twice as long each time, up to BackoffMax. It is the one
// retry of the setup: the start's, and the drain's when Elasticsearch was not
// ready at start.
func (s *Sink) setupRetrying(ctx context.Context, until time.Time) error {
	parent := ctx
	if !until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until)
		defer cancel()
	}
	start := time.Now()
	wait := s.cfg.BackoffMin
	var last error // of the last try that start_timeout did not cut short
	for attempt := 1; ; attempt++ {
		err := s.setup(ctx)
		var transient *transientError
		switch {
		case err == nil:
			if attempt > 1 {
				s.logger.Info("elasticsearch: ready", "attempts", attempt, "waited", time.Since(start).Round(time.Millisecond))
			}
			return nil
		case !errors.As(err, &transient) || parent.Err() != nil:
			return err
		case !until.IsZero() && (ctx.Err() != nil || !time.Now().Add(wait).Before(until)):
			if ctx.Err() == nil || last == nil { // a try cut short says less than the one before (a 503, say)
				last = err
			}
			return fmt.Errorf("%w (still failing after %d attempts in %s; start_timeout is %s)", last, attempt,
				time.Since(start).Round(time.Millisecond), s.cfg.StartTimeout.Duration)
		}
		last = err
		if ok, suppressed := s.setupLog.Allow(); ok {
			s.logger.Warn("elasticsearch: not ready; trying again", "error", err, "attempt", attempt, "retry_in", wait,
				"similar_not_logged", suppressed)
		}
		if !s.pause(ctx, &wait) {
			return err
		}
	}
}

// hurryUp ends StopGrace: requests in flight are abandoned, and what is left
// is spooled (dead-lettered without a spool) instead of sent.
func (s *Sink) hurryUp() {
	s.hurryOnce.Do(func() {
		close(s.hurry)
		s.cancelSend()
		if st := s.Stats(); st.Queued > 0 {
			where := "spooled"
			if s.spool == nil {
				where = "dead-lettered"
			}
			s.logger.Warn("elasticsearch: stop_grace is over; what is not delivered is "+where, "stop_grace", s.cfg.StopGrace.Duration,
				"documents", st.Queued)
		}
	})
}

// hurried reports whether StopGrace is over.
func (s *Sink) hurried() bool {
	select {
	case <-s.hurry:
		return true
	default:
		return false
	}
}

// tlsConfig trusts the system's authorities and caPEM's.
func tlsConfig(cfg *Configuration, caPEM []byte) *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // off unless asked, with a warning
	if caPEM == nil {
		return tc
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(caPEM)
	tc.RootCAs = pool
	return tc
}

// setup reads the server's version, unless an earlier try did, and installs
// the index template.
func (s *Sink) setup(ctx context.Context) error {
	if !s.versionChecked {
		if err := s.checkVersion(ctx); err != nil {
			return err
		}
		s.versionChecked = true
		if s.cfg.DocType != "" {
			s.logger.Warn("elasticsearch: the document type (p2es ES_Type) is ignored: mapping types were removed in Elasticsearch 7",
				"doc_type", s.cfg.DocType, "version", s.version)
		}
	}
	if s.c.template != nil {
		if err := s.installTemplate(ctx); err != nil {
			return err
		}
	}
	return nil
}

// reachError says why a request got no answer: a transientError, unless
// the certificate does not verify or the server is not Elasticsearch,
// configuration errors that waiting does not cure.
func reachError(where string, err error) error {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) {
		return fmt.Errorf("%s: TLS: the server's certificate is not trusted (give ca_cert, the CA that signed it): %w", where, err)
	}
	if errors.Is(err, errUnknownProduct) {
		return fmt.Errorf("%s: %w", where, err)
	}
	return &transientError{fmt.Errorf("cannot reach %s: %w", where, err)}
}

// transientError is a failure of the setup that may pass by itself: no
// answer (refused, reset, timed out), or an answer of 429 or 5xx, which a
// node gives while its cluster forms. The setup is tried again (see
// setupRetrying); other failures end the start at once.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// answerFailure is err, a transientError when status may pass by itself.
func answerFailure(status int, err error) error {
	if retryableRequest(nil, status) {
		return &transientError{err}
	}
	return err
}

// checkVersion reads the server's version: from GET /, or, where that is
// missing (the integ-test distribution has no handler for it), from the local
// node's info.
func (s *Sink) checkVersion(ctx context.Context) error {
	urls := make([]string, len(s.cfg.URLs))
	for i, u := range s.cfg.URLs {
		urls[i] = RedactURL(u)
	}
	where := strings.Join(urls, ", ")
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout.Duration)
	defer cancel()

	var version string
	status, body, err := s.do(ctx, esapi.InfoRequest{FilterPath: []string{"version.number"}})
	if err != nil {
		return reachError(where, err)
	}
	if retryableRequest(nil, status) { // not the node info: it would say the same
		return answerFailure(status, fmt.Errorf("%s: cannot read the server version: %s", where, errorBody(status, body)))
	}
	if status == http.StatusOK {
		var r struct {
			Version struct {
				Number string `json:"number"`
			} `json:"version"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("%s: reading GET /: %w", where, err)
		}
		version = r.Version.Number
	} else if status != http.StatusUnauthorized {
		status, body, err = s.do(ctx, esapi.NodesInfoRequest{
			NodeID: []string{"_local"}, FilterPath: []string{"nodes.*.version"},
		})
		if err != nil {
			return reachError(where, err)
		}
		if status == http.StatusOK {
			var r struct {
				Nodes map[string]struct {
					Version string `json:"version"`
				} `json:"nodes"`
			}
			if err := json.Unmarshal(body, &r); err != nil {
				return fmt.Errorf("%s: reading the node info: %w", where, err)
			}
			for _, n := range r.Nodes {
				version = n.Version
			}
		}
	}
	switch {
	case status == http.StatusUnauthorized && s.cfg.APIKey != "":
		return fmt.Errorf("%s: authentication failed with the API key (check api_key): %s", where, errorBody(status, body))
	case status == http.StatusUnauthorized && s.user() == "":
		return fmt.Errorf("%s: authentication required, and no username is configured (give a username and password): %s", where, errorBody(status, body))
	case status == http.StatusUnauthorized:
		return fmt.Errorf("%s: authentication failed for user %q (check the username and password): %s", where, s.user(), errorBody(status, body))
	case status == http.StatusForbidden:
		s.logger.Warn("elasticsearch: not allowed to read the server version; assuming a supported one",
			"urls", urls, "error", errorBody(status, body))
		return nil
	case version == "":
		return answerFailure(status, fmt.Errorf("%s: cannot read the server version: %s", where, errorBody(status, body)))
	}
	major, minor, ok := parseVersion(version)
	if !ok {
		return fmt.Errorf("%s: unexpected server version %q", where, version)
	}
	if major < 7 || major == 7 && minor < 10 {
		return fmt.Errorf("%s runs Elasticsearch %s: 7.10 or later is needed (composable index templates, typeless APIs)", where, version)
	}
	s.version = version
	s.logger.Info("elasticsearch: connected", "urls", urls, "version", version)
	if major > 9 {
		s.logger.Warn("elasticsearch: this server version is newer than the ones flowdex was tested with (8 and 9)", "version", version)
	}
	return nil
}

// user is the configured user name, else the one of the first URL with
// credentials in it ("" if none).
func (s *Sink) user() string {
	if s.cfg.Username != "" {
		return s.cfg.Username
	}
	for _, u := range s.cfg.URLs {
		if pu, err := url.Parse(u); err == nil && pu.User != nil {
			return pu.User.Username()
		}
	}
	return ""
}

func parseVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

func (s *Sink) installTemplate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout.Duration)
	defer cancel()
	status, body, err := s.do(ctx, esapi.IndicesPutIndexTemplateRequest{
		Name: s.c.templateName,
		Body: bytes.NewReader(s.c.template),
	})
	if err != nil {
		return fmt.Errorf("installing index template %s: %w", s.c.templateName, reachError(s.client.Nodes(), err))
	}
	if status/100 != 2 {
		return answerFailure(status, fmt.Errorf("installing index template %s for %s: %s", s.c.templateName, s.c.templatePattern,
			errorBody(status, body)))
	}
	s.logger.Info("elasticsearch: index template installed", "template", s.c.templateName, "pattern", s.c.templatePattern)
	return nil
}

// do runs one request and reads the whole answer.
func (s *Sink) do(ctx context.Context, req esapi.Request) (int, []byte, error) {
	return do(ctx, s.client, req)
}

func do(ctx context.Context, client *Client, req esapi.Request) (int, []byte, error) {
	res, err := req.Do(ctx, client)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	return res.StatusCode, body, nil
}

// Write encodes the document, whose time is t, for the index t names, with
// @timestamp t, and queues it; a zero t is the time of Write. The document
// is not kept nor changed: the caller may reuse it. A non-empty id makes it
// a create with that _id. Write blocks while every bulk body is in flight,
// until ctx is done.
func (s *Sink) Write(ctx context.Context, doc *document.Document, id string, t time.Time) error {
	if t.IsZero() {
		t = s.now()
	}
	e, _ := s.encoders.Get().(*encoder)
	if e == nil {
		e = new(encoder)
	}
	defer s.encoders.Put(e)
	it := s.encode(e, doc, id, t)
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.unlock()
	return s.queueLocked(ctx, e.buf, it)
}

// acquire takes the lock of a started sink, for Write and WriteRaw.
func (s *Sink) acquire(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
	default:
		select {
		case s.lock <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopping:
			return ErrStopped
		}
	}
	switch s.state {
	case stateNew:
		s.unlock()
		return ErrNotStarted
	case stateStopped:
		s.unlock()
		return ErrStopped
	}
	return nil
}

// queueLocked adds the item encoded in enc to the current batch.
func (s *Sink) queueLocked(ctx context.Context, enc []byte, it item) error {
	if s.cur != nil && len(s.cur.buf)+len(enc) > s.cfg.FlushBytes {
		s.flushLocked()
	}
	if s.cur == nil {
		select {
		case s.cur = <-s.free:
		default:
			select {
			case s.cur = <-s.free:
			case <-ctx.Done():
				return ctx.Err()
			case <-s.stopping:
				return ErrStopped
			}
		}
	}
	if len(s.cur.items) == 0 {
		s.cur.docs.first = s.written.Load() + 1
	}
	s.cur.add(enc, it)
	s.written.Add(1)
	s.queued.Add(1)
	if len(s.cur.buf) >= s.cfg.FlushBytes || s.cfg.FlushDocs > 0 && len(s.cur.items) >= s.cfg.FlushDocs {
		s.flushLocked()
	}
	return nil
}

func (s *Sink) unlock() { <-s.lock }

// Flush hands what Write has buffered to the workers now instead of at the
// next FlushInterval: pipelines call it at the end of each purge.
func (s *Sink) Flush(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopping:
		return nil
	}
	defer s.unlock()
	if s.state == stateStarted {
		s.flushLocked()
	}
	return nil
}

// flushLocked hands the current batch to the workers. The send channel holds
// every batch there is, so this never blocks.
func (s *Sink) flushLocked() {
	if s.cur == nil {
		return
	}
	if len(s.cur.items) == 0 {
		s.free <- s.cur
	} else {
		s.cur.docs.last = s.written.Load()
		s.settle.sent(s.cur.docs)
		s.send <- s.cur
	}
	s.cur = nil
}

// tick sends what is buffered every FlushInterval.
func (s *Sink) tick() {
	defer s.ticker.Done()
	t := time.NewTicker(s.cfg.FlushInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			select {
			case s.lock <- struct{}{}:
				if s.state == stateStarted {
					s.flushLocked()
				}
				s.unlock()
			case <-s.stopping:
				return
			}
		case <-s.stopping:
			return
		}
	}
}

// Stop sends what is buffered and waits until every document is indexed,
// dead-lettered or counted as failed, retries included. If ctx ends first, the
// requests in flight are abandoned and their documents dead-lettered (or
// counted as failed), and Stop returns the context's error. Nothing is pending
// after Stop.
func (s *Sink) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.lock <- struct{}{} // a Write waiting for a batch gives up on s.stopping
	if s.state != stateStarted {
		s.state = stateStopped
		s.unlock()
		return nil
	}
	s.state = stateStopped
	s.flushLocked()
	close(s.send)
	s.unlock()
	s.ticker.Wait()
	if s.stopDiscover != nil {
		s.stopDiscover() // a discovery in flight is abandoned: it changes nothing then
		s.discoverer.Wait()
	}

	done := make(chan struct{})
	go func() {
		s.workers.Wait()
		s.drainer.Wait() // it ends after the record it is sending (s.stopping)
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.cancelRun()
		<-done
		err = fmt.Errorf("elasticsearch: stopped before every document was delivered: %w", ctx.Err())
	}
	s.cancelRun()
	s.stopWatch()
	if t := s.graceTimer.Load(); t != nil {
		t.Stop()
	}
	s.logSuppressed()
	if s.spool != nil {
		if cerr := s.spool.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("elasticsearch: %w", cerr))
		}
		if b := s.spool.Bytes(); b > 0 {
			s.logger.Warn("elasticsearch: documents left in the spool, sent at the next start", "dir", s.cfg.SpoolDir,
				"documents", s.spool.Entries(), "bytes", b)
		}
	}
	if s.deadLetter != nil {
		if cerr := s.deadLetter.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("elasticsearch: dead-letter file: %w", cerr))
		}
	}
	st := s.Stats()
	s.logger.Info("elasticsearch: stopped", "written", st.Written, "indexed", st.Indexed,
		"duplicates", st.Duplicates, "failed", st.Failed, "dead_lettered", st.DeadLettered,
		"retried", st.Retried, "requests", st.Requests, "bulk_errors", st.BulkErrors,
		"spooled", st.Spooled, "replayed", st.Replayed, "spool_lost", st.SpoolLost, "unconfirmed", st.Unconfirmed,
		"discoveries", st.Discoveries, "discovery_failures", st.DiscoveryFailures)
	return err
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	st := Stats{
		Written:      s.written.Load(),
		Indexed:      s.indexed.Load(),
		Duplicates:   s.duplicates.Load(),
		Failed:       s.failed.Load(),
		DeadLettered: s.deadLettered.Load(),
		Retried:      s.retried.Load(),
		Requests:     s.requests.Load(),
		BulkErrors:   s.bulkErrors.Load(),
		Spooled:      s.spooled.Load(),
		Replayed:     s.replayed.Load(),
		SpoolLost:    s.spoolLost.Load(),
		Unconfirmed:  s.unconfirmed.Load(),
		Queued:       s.queued.Load(),
		Latency:      s.latency.snapshot(),
	}
	st.MalformedAddresses = s.addrs.malformed.Load()
	st.Discoveries, st.DiscoveryFailures = s.discoveries.Load(), s.discoveryFailures.Load()
	st.Nodes = len(s.cfg.URLs)
	if p := s.pool.Load(); p != nil {
		st.Nodes, st.NodesAside = p.count()
	}
	if s.spool != nil {
		st.SpoolBytes, st.SpoolDocs = s.spool.Bytes(), s.spool.Entries()
	}
	return st
}

// TemplateName is the name of the index template Start installs ("" if none).
func (s *Sink) TemplateName() string { return s.c.templateName }

// TemplatePattern is the index pattern matching every index the sink writes.
func (s *Sink) TemplatePattern() string { return s.c.templatePattern }
