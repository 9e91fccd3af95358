package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpServer serves /metrics, /healthz and /readyz, and whatever else is
// mounted on its mux (the web view).
type httpServer struct {
	srv    *http.Server
	ln     net.Listener
	mux    *http.ServeMux
	g      *graph
	ready  atomic.Bool // inputs running, not stopping
	logger *slog.Logger
}

// newHTTPServer listens on addr now, so that a port in use fails the start,
// and serves once start is called.
func newHTTPServer(addr string, g *graph, c *counters, logger *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	h := &httpServer{ln: ln, mux: http.NewServeMux(), g: g, logger: logger}
	reg := newRegistry(g, c)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	h.mux.HandleFunc("GET /readyz", h.readyz)
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
	h.logger.Info("http server listening", "address", h.Addr(), "paths", "/metrics /healthz /readyz")
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
}

// readyz answers 200 when flowdex takes traffic and can deliver it: inputs
// running and every Elasticsearch output started, its last bulk request a
// success or its spool taking what Elasticsearch cannot. Otherwise 503, with
// the reasons in the body.
func (h *httpServer) readyz(w http.ResponseWriter, _ *http.Request) {
	body := struct {
		Ready   bool                    `json:"ready"`
		Inputs  bool                    `json:"inputs_running"`
		Outputs map[string]outputHealth `json:"outputs"`
	}{Inputs: h.ready.Load(), Outputs: map[string]outputHealth{}}
	body.Ready = body.Inputs
	for _, o := range h.g.outputs {
		es, ok := o.output.(*esOutput)
		if !ok {
			continue
		}
		st := es.Health()
		body.Outputs[o.name] = outputHealth{Started: st.Started, Spooling: st.Spooling, LastError: st.LastError}
		if !st.Started || st.LastError != "" && !st.Spooling {
			body.Ready = false
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(body)
}
