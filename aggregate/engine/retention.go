package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/sink/elasticsearch/retention"
)

// retentionTiming, when set (tests), replaces the daemon's delay before the
// first retention run and the interval between runs: the configuration
// refuses intervals under a minute.
var retentionTiming struct{ delay, interval time.Duration }

// newRetention makes the retention of elasticsearch output name (nil when
// it has none).
func newRetention(name string, o *config.ElasticsearchOutput, logger *slog.Logger) (*retention.Retention, error) {
	if o.MaxAge.Duration <= 0 {
		return nil, nil
	}
	rc := o.RetentionConfiguration
	if retentionTiming.interval > 0 {
		rc.Interval.Duration = retentionTiming.interval
	}
	if retentionTiming.delay > 0 {
		rc.Delay = retentionTiming.delay
	}
	return retention.New(o.Configuration, rc, logger.With("output", name))
}

// startRetention starts the retention of every elasticsearch output that has
// one: the daemon's job, not ingest's. A failure to start is logged; the
// data path does not depend on it.
func (e *Engine) startRetention(ctx context.Context) {
	for _, o := range e.outputs {
		es, ok := o.output.(*esOutput)
		if !ok || es.retention == nil {
			continue
		}
		if err := es.retention.Start(ctx); err != nil {
			e.logger.Error("retention not started", "output", o.name, "error", err)
			continue
		}
		rc := es.retention.Configuration()
		e.logger.Info("retention started", "output", o.name, "retention", rc.MaxAge, "interval", rc.Interval, "first_run_in", rc.Delay)
	}
}

// Retention is the retention of elasticsearch output name of cfg, for a
// one-shot run (flowdex retention): nil when it has none.
func Retention(cfg *config.Config, name string, logger *slog.Logger) (*retention.Retention, error) {
	o, ok := cfg.Outputs[name].(*config.ElasticsearchOutput)
	if !ok {
		return nil, fmt.Errorf("no elasticsearch output %q", name)
	}
	es, err := newElasticsearch(name, o, logger)
	if err != nil {
		return nil, err
	}
	return es.retention, nil
}
