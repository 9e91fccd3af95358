package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	h.srv = &http.Server{Handler: h.mux, ReadHeaderTimeout: 10 * time.Second}
	return h, nil
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
func (h *httpServer) readyz(w http.ResponseWriter, _ *http.Request) {
	body := struct {
		Ready   bool                    `json:"ready"`
		Inputs  bool                    `json:"inputs_running"`
		Outputs map[string]outputHealth `json:"outputs"`
	}{Inputs: h.e.inputsUp(), Outputs: map[string]outputHealth{}}
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
