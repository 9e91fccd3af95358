// Package exporter holds what flowdex knows and counts per exporter (a
// router's NetFlow/IPFIX export address, an sFlow agent): the sampling rates
// configured over what the exporters say, the allow-list, and the table of
// per-exporter counters the flow inputs keep.
package exporter

import (
	"fmt"
	"net/netip"

	"github.com/flowdex/flowdex/aggregate/setting"
)

// SamplingOverride sets the sampling rate of the exporters in a prefix,
// whatever they say (pmacct's sampling_map).
type SamplingOverride struct {
	Exporters setting.Prefix `toml:"exporters"` // an address or a prefix
	Rate      uint32         `toml:"rate"`      // one packet in Rate was sampled
}

// SamplingOverrides are tried in order: the first matching entry wins.
type SamplingOverrides []SamplingOverride

// Rate returns the configured sampling rate of addr, 0 when none applies.
func (s SamplingOverrides) Rate(addr netip.Addr) uint32 {
	addr = addr.Unmap()
	for _, o := range s {
		if o.Exporters.Contains(addr) {
			return o.Rate
		}
	}
	return 0
}

// Validate reports an entry without a prefix or a rate.
func (s SamplingOverrides) Validate() error {
	for i, o := range s {
		switch {
		case !o.Exporters.IsValid():
			return setting.Errorf(fmt.Sprintf("sampling#%d.exporters", i), "missing (expected an address or a prefix)")
		case o.Rate == 0:
			return setting.Errorf(fmt.Sprintf("sampling#%d.rate", i), "missing rate (expected 1 or more: one packet in rate was sampled)")
		}
	}
	return nil
}
