package main

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/cmd/config"
	"github.com/flowdex/flowdex/collector/sflow"
)

// newSFlowDecoder makes the decoder of an sflow input.
func newSFlowDecoder(overrides []config.SamplingOverride, logger *slog.Logger) (func([]byte, netip.Addr, time.Time, func(*flow.Record)) error, error) {
	sc := sflow.DefaultConfiguration()
	for _, s := range overrides {
		p, _ := config.ParsePrefix(s.Exporters)
		sc.Sampling = append(sc.Sampling, sflow.SamplingOverride{Exporters: p, Rate: s.Rate})
	}
	d, err := sflow.New(sc, logger)
	if err != nil {
		return nil, err
	}
	return d.Decode, nil
}
