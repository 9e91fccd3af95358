package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/webview"
)

// httpServer serves /metrics, /healthz and /readyz, and whatever else is
// mounted on its mux (the web view).
type httpServer struct {
	srv    *http.Server
	ln     net.Listener
	mux    *http.ServeMux
	e      *Engine
	logger *slog.Logger
	web    string // the output the web view reads, "" without one
	hosts  *hostGuard
}

// newHTTPServer listens on addr now, so that a port in use fails the start,
// and serves once start is called.
func newHTTPServer(addr string, e *Engine, logger *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	h := &httpServer{ln: ln, mux: http.NewServeMux(), e: e, logger: logger}
	reg := newRegistry(e)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	h.mux.HandleFunc("GET /readyz", h.readyz)
	if name := e.cfg.HTTP.WebOutput; name != "" && *e.cfg.HTTP.Web {
		view, err := newWebView(e, name, logger)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("http: web view: %w", err)
		}
		h.mux.Handle("/", view)
		h.web = name
	}
	h.hosts = newHostGuard(addr, e.cfg.HTTP.AllowedHosts, h.mux, logger)
	h.srv = &http.Server{Handler: h.hosts, ReadHeaderTimeout: 10 * time.Second}
	return h, nil
}

// hostGuard answers only requests whose Host header is a name of this
// server: a page of another site, opened in a browser on a host that can
// reach the server, may rebind its own name to the server's address (DNS
// rebinding) and read the metrics and the web view as same-origin; its
// requests still carry its name. IP literals are accepted, since such a
// page cannot send one, and so are localhost, the listen address's host
// and [http] allowed_hosts. On a wildcard address without allowed_hosts,
// any name is accepted: the server is exposed on purpose (README).
type hostGuard struct {
	any     bool
	names   []string // lowercase, without a trailing dot
	next    http.Handler
	logger  *slog.Logger
	log     ratelog.Limiter
	refused atomic.Uint64
}

func newHostGuard(listen string, allowed []string, next http.Handler, logger *slog.Logger) *hostGuard {
	g := &hostGuard{next: next, logger: logger, names: []string{"localhost"}}
	g.log.Every = 10 * time.Second
	host, _, _ := net.SplitHostPort(listen) // checked by the configuration
	if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
		g.any = len(allowed) == 0
	} else if err != nil {
		g.names = append(g.names, canonicalHost(host))
	}
	for _, n := range allowed {
		g.any = g.any || n == "*"
		g.names = append(g.names, canonicalHost(n))
	}
	return g
}

// canonicalHost is a host name compared case-insensitively, a trailing dot
// (the root) dropped.
func canonicalHost(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// allowed reports whether a request's Host (with or without a port) names
// this server.
func (g *hostGuard) allowed(hostport string) bool {
	if g.any || hostport == "" { // HTTP/1.0 without Host: not a browser's
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return slices.Contains(g.names, canonicalHost(host))
}

func (g *hostGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.allowed(r.Host) {
		g.next.ServeHTTP(w, r)
		return
	}
	n := g.refused.Add(1)
	if ok, suppressed := g.log.Allow(); ok {
		g.logger.Warn("http: request refused: its Host is not a name of this server (add it to [http] allowed_hosts if it is)",
			"host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path, "refused", n, "suppressed_since_last", suppressed)
	}
	http.Error(w, "flowdex: Host "+strconv.Quote(r.Host)+" is not a name of this server; its [http] allowed_hosts lists the names it answers to", http.StatusMisdirectedRequest)
}

// Addr is the address served, with the port chosen when the configuration gave 0.
func (h *httpServer) Addr() string { return h.ln.Addr().String() }

func (h *httpServer) start() {
	go func() {
		if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.logger.Error("http server stopped", "address", h.Addr(), "error", err)
		}
	}()
	if h.web != "" {
		h.logger.Info("http server listening", "address", h.Addr(), "paths", "/metrics /healthz /readyz", "web_view", "http://"+h.Addr()+"/", "web_output", h.web)
		return
	}
	h.logger.Info("http server listening", "address", h.Addr(), "paths", "/metrics /healthz /readyz")
}

// newWebView serves the web view over the indices of Elasticsearch output name.
func newWebView(e *Engine, name string, logger *slog.Logger) (*webview.View, error) {
	for _, o := range e.outputs {
		es, ok := o.output.(*esOutput)
		if !ok || o.name != name {
			continue
		}
		searcher, err := elasticsearch.NewSearcher(es.sinkConfig)
		if err != nil {
			return nil, err
		}
		return webview.New(webview.Configuration{Searcher: searcher, Indices: searcher.Pattern(), Logger: logger.With("output", name)})
	}
	return nil, fmt.Errorf("no elasticsearch output %q", name)
}

func (h *httpServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
}

// outputHealth is one output's part of /readyz.
type outputHealth struct {
	Started   bool   `json:"started"`
	Spooling  bool   `json:"spooling,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// DeadLettered: that error sent documents to the dead-letter file
	DeadLettered bool `json:"dead_lettered,omitempty"`
}

// readyz answers 200 when flowdex takes traffic and can deliver it: inputs
// running and every Elasticsearch output started, its last bulk request a
// success or a spool configured to take what Elasticsearch cannot. Otherwise 503, with
// the reasons in the body.
// bgpPeer is a BGP session on /readyz.
type bgpPeer struct {
	Peer   string `json:"peer"`
	ASN    uint32 `json:"asn"`
	State  string `json:"state"`
	Routes int    `json:"routes"`
}

// bmpRouter is a BMP session on /readyz, with its monitored peers.
type bmpRouter struct {
	Router  string    `json:"router"`
	SysName string    `json:"sys_name"`
	Routes  int       `json:"routes"`
	Peers   []bmpPeer `json:"peers"`
}

// bmpPeer is a peer a BMP router monitors.
type bmpPeer struct {
	Peer   string `json:"peer"`
	ASN    uint32 `json:"asn"`
	Up     bool   `json:"up"`
	Routes int    `json:"routes"`
}

func (h *httpServer) readyz(w http.ResponseWriter, _ *http.Request) {
	body := struct {
		Ready   bool                    `json:"ready"`
		Inputs  bool                    `json:"inputs_running"`
		Outputs map[string]outputHealth `json:"outputs"`
		BGP     []bgpPeer               `json:"bgp_peers,omitempty"`   // informational: a peer down is no reason to stop flows
		BMP     []bmpRouter             `json:"bmp_routers,omitempty"` // informational too
	}{Inputs: h.e.inputsUp(), Outputs: map[string]outputHealth{}}
	if h.e.bgp != nil {
		for _, p := range h.e.bgp.Peers() {
			body.BGP = append(body.BGP, bgpPeer{Peer: p.Address.String(), ASN: p.ASN, State: p.State, Routes: p.Routes})
		}
	}
	if h.e.bmp != nil {
		for _, r := range h.e.bmp.Routers() {
			br := bmpRouter{Router: r.Address.String(), SysName: r.SysName, Routes: r.Routes, Peers: []bmpPeer{}}
			for _, p := range r.Peers {
				br.Peers = append(br.Peers, bmpPeer{Peer: p.Address.String(), ASN: p.ASN, Up: p.Up, Routes: p.Routes})
			}
			body.BMP = append(body.BMP, br)
		}
	}
	body.Ready = body.Inputs
	for _, o := range h.e.outputs {
		es, ok := o.output.(*esOutput)
		if !ok {
			continue
		}
		st := es.Health()
		body.Outputs[o.name] = outputHealth{Started: st.Started, Spooling: st.Spooling, LastError: st.LastError, DeadLettered: st.DeadLettered}
		if !st.Delivers() {
			body.Ready = false
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(body)
}
