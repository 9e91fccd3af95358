package netflow

import (
	"net/netip"
	"sync/atomic"

	"github.com/flowdex/flowdex/collector/exporter"
)

// Stats are the decoder's counters since New.
type Stats struct {
	Datagrams          uint64 // handed to Decode
	DatagramsV5        uint64
	DatagramsV9        uint64
	DatagramsIPFIX     uint64
	UnsupportedVersion uint64 // neither 5, 9 nor 10 (also counted in Malformed)
	Malformed          uint64 // datagrams for which Decode returned an error

	Records       uint64 // flow records emitted
	OptionRecords uint64 // option data records read (sampling tables), not emitted
	UnknownSets   uint64 // sets with a reserved set id, skipped

	// Fields of custom primitives (flow.DefineCustom) not read as they came.
	CustomShort uint64 // of another length than the primitive's len: left out of the record
	CustomCut   uint64 // of variable length, longer than flowdex keeps (flow.VarLenCap): cut

	TemplatesAdded     uint64 // new or changed (data and options templates)
	TemplatesRefreshed uint64 // sent again unchanged
	TemplatesRefused   uint64 // zero record length, or template id below 256
	TemplatesWithdrawn uint64 // IPFIX withdrawals of a known template
	TemplatesLoaded    uint64 // read from TemplatesFile by New
	TemplatesOverLimit uint64 // new templates refused (received or loaded): the exporter has MaxTemplates, or is past MaxExporters
	TemplatesOverBytes uint64 // new or changed templates refused (received or loaded): past TemplatesMaxBytes or TemplatesMaxBytesPerExporter
	SamplersOverLimit  uint64 // sampling rates of new sampler ids refused (received or loaded): past MaxSamplers or the byte bounds
	StoreBytes         uint64 // estimated memory of the templates and sampling rates kept now
	ExportersOverLimit uint64 // datagrams from exporters past MaxExporters (no template of theirs is kept)
	ExportersEvicted   uint64 // exporters that kept nothing, removed to make room for one with a template

	// NoTemplate counts, per exporter, the data sets skipped because their
	// template was unknown (not yet received, or withdrawn).
	NoTemplate map[netip.Addr]uint64
}

type counters struct {
	datagrams, v5, v9, ipfix, unsupported, malformed atomic.Uint64
	records, optionRecords, unknownSets              atomic.Uint64
	tplAdded, tplRefreshed, tplRefused, tplWithdrawn atomic.Uint64
	tplLoaded, tplOverLimit, exportersOverLimit      atomic.Uint64
	tplOverBytes, samplersOverLimit                  atomic.Uint64
	customShort, customCut                           atomic.Uint64
}

// Stats returns a copy of the counters.
func (d *Decoder) Stats() Stats {
	c := &d.counters
	s := Stats{
		Datagrams:          c.datagrams.Load(),
		DatagramsV5:        c.v5.Load(),
		DatagramsV9:        c.v9.Load(),
		DatagramsIPFIX:     c.ipfix.Load(),
		UnsupportedVersion: c.unsupported.Load(),
		Malformed:          c.malformed.Load(),
		Records:            c.records.Load(),
		OptionRecords:      c.optionRecords.Load(),
		UnknownSets:        c.unknownSets.Load(),
		CustomShort:        c.customShort.Load(),
		CustomCut:          c.customCut.Load(),
		TemplatesAdded:     c.tplAdded.Load(),
		TemplatesRefreshed: c.tplRefreshed.Load(),
		TemplatesRefused:   c.tplRefused.Load(),
		TemplatesWithdrawn: c.tplWithdrawn.Load(),
		TemplatesLoaded:    c.tplLoaded.Load(),
		TemplatesOverLimit: c.tplOverLimit.Load(),
		TemplatesOverBytes: c.tplOverBytes.Load(),
		SamplersOverLimit:  c.samplersOverLimit.Load(),
		StoreBytes:         uint64(max(d.store.used.Load(), 0)),
		ExportersOverLimit: c.exportersOverLimit.Load(),
		ExportersEvicted:   d.exporters.Evicted(),
		NoTemplate:         make(map[netip.Addr]uint64),
	}
	d.exporters.Each(func(e *exporter.Entry) {
		if n := e.TemplateMisses.Load(); n > 0 {
			s.NoTemplate[e.Addr] = n // the zero address: exporters past the bound
		}
	})
	return s
}
