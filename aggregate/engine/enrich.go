package engine

import (
	"log/slog"
	"maps"
	"slices"

	"github.com/flowdex/flowdex/aggregate/enrich"
)

// enrichers returns the pipelines' enrichers by pipeline name.
func (e *Engine) enrichers() map[string]*enrich.Enricher {
	m := map[string]*enrich.Enricher{}
	for name, p := range e.pipelines {
		if p.enricher != nil {
			m[name] = p.enricher
		}
	}
	return m
}

// logEnrichment logs the enrichment files each pipeline uses.
func (e *Engine) logEnrichment(msg string) {
	for _, name := range slices.Sorted(maps.Keys(e.enrichers())) {
		logLoaded(e.logger, msg, name, e.pipelines[name].enricher)
	}
}

// logEnrichmentStats logs the enrichment counters of each pipeline.
func (e *Engine) logEnrichmentStats() {
	for _, name := range slices.Sorted(maps.Keys(e.enrichers())) {
		s := e.pipelines[name].enricher.Stats()
		e.logger.Info("enrichment stopped", "pipeline", name, "documents", s.Documents,
			"geo_hits", s.GeoHits, "geo_misses", s.GeoMisses, "asn_hits", s.ASNHits, "asn_misses", s.ASNMisses,
			"service_hits", s.ServiceHits, "service_misses", s.ServiceMisses,
			"interface_hits", s.InterfaceHits, "interface_misses", s.InterfaceMisses,
			"bad_addresses", s.BadAddresses, "lookup_errors", s.LookupErrors,
			"reloads", s.Reloads, "reload_errors", s.ReloadErrors)
	}
}

// Reload reads every flow input's pre_tag_map and every pipeline's
// enrichment files again (SIGHUP). A map or files that do not load leave
// the ones in use.
func (e *Engine) Reload() {
	logger := e.logger
	for _, fi := range e.flowInputs {
		if fi.pretagPath != "" {
			fi.reloadPretag()
		}
	}
	es := e.enrichers()
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
