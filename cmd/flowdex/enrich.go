package main

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/flowdex/flowdex/aggregate/enrich"
)

// enrichers returns the pipelines' enrichers by pipeline name.
func (f *graph) enrichers() map[string]*enrich.Enricher {
	m := map[string]*enrich.Enricher{}
	for name, p := range f.pipelines {
		if p.enricher != nil {
			m[name] = p.enricher
		}
	}
	return m
}

// watchEnrichment logs the enrichment files in use and reloads them at every
// SIGHUP (which then no longer ends the process) until the returned function
// is called; that one logs the enrichment counters.
func (f *graph) watchEnrichment(ctx context.Context, logger *slog.Logger) (stop func()) {
	for _, name := range slices.Sorted(maps.Keys(f.enrichers())) {
		logLoaded(logger, "enrichment loaded", name, f.pipelines[name].enricher)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				f.reloadEnrichment(logger)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
		for _, name := range slices.Sorted(maps.Keys(f.enrichers())) {
			s := f.pipelines[name].enricher.Stats()
			logger.Info("enrichment stopped", "pipeline", name, "documents", s.Documents,
				"geo_hits", s.GeoHits, "geo_misses", s.GeoMisses, "asn_hits", s.ASNHits, "asn_misses", s.ASNMisses,
				"service_hits", s.ServiceHits, "service_misses", s.ServiceMisses,
				"interface_hits", s.InterfaceHits, "interface_misses", s.InterfaceMisses,
				"bad_addresses", s.BadAddresses, "lookup_errors", s.LookupErrors,
				"reloads", s.Reloads, "reload_errors", s.ReloadErrors)
		}
	}
}

// reloadEnrichment reads every pipeline's enrichment files again. A pipeline
// whose files fail to load keeps the ones it had.
func (f *graph) reloadEnrichment(logger *slog.Logger) {
	es := f.enrichers()
	if len(es) == 0 {
		logger.Info("SIGHUP: no enrichment files to reload")
		return
	}
	for _, name := range slices.Sorted(maps.Keys(es)) {
		if err := es[name].Reload(); err != nil {
			logger.Error("enrichment reload failed, the previous files stay in use", "pipeline", name, "error", err)
			continue
		}
		logLoaded(logger, "enrichment reloaded", name, es[name])
	}
}

func logLoaded(logger *slog.Logger, msg, pipeline string, e *enrich.Enricher) {
	for _, l := range e.Loaded() {
		attrs := []any{"pipeline", pipeline, "kind", l.Kind, "file", l.File, "entries", l.Entries}
		if !l.Built.IsZero() {
			attrs = append(attrs, "type", l.Type, "built", l.Built.UTC())
		}
		logger.Info(msg, attrs...)
	}
}
