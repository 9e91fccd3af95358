// Package netflow decodes NetFlow v5, NetFlow v9 and IPFIX datagrams into
// flow.Record, with nfacctd's semantics for every primitive it fills.
//
// goflow2's decoders parse the template and options template sets and the
// option data records; flow data sets are read through templates compiled
// into field offsets, which is several times faster than goflow2's generic
// data path and allocates nothing per record (see bench_test.go).
// Templates are kept per exporter address (not per source port), can be
// persisted to a JSON file and reloaded.
package netflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/collector/exporter"
)

// Configuration of a Decoder.
type Configuration struct {
	// TemplatesFile holds templates (and learnt sampling rates) across
	// restarts: loaded by New, written by Save. Empty: memory only.
	TemplatesFile string `toml:"templates_file,omitempty"`
	// DeferLoad leaves TemplatesFile to Load, for a caller that binds its
	// sockets first: a file at the bounds takes seconds to read, and
	// exporters must not find the port closed meanwhile.
	DeferLoad bool `toml:"-"`
	// Sampling overrides the sampling rate of matching exporters: the first
	// matching entry wins, whatever the exporter says.
	Sampling exporter.SamplingOverrides `toml:"sampling,omitempty"`
	// TimeSecs is nfacctd_time_secs: the exporter sends seconds where
	// NetFlow v5/v9 expect milliseconds (first/last switched, uptime).
	TimeSecs bool `toml:"-"`
	// UseIPNextHop is pmacct's use_ip_next_hop: peer_dst_ip falls back to
	// the IP next hop (v5 nexthop, IE 15/62) when there is no BGP next hop.
	UseIPNextHop bool `toml:"-"`
	// UseExporterAddress takes peer_src_ip from a record's
	// exporterIPv4Address or exporterIPv6Address (IE 130, 131) when it has
	// one that is not zero, as pmacct 1.7.9 does (1.7.7 ignores them in data
	// records); the datagram's source otherwise.
	UseExporterAddress bool `toml:"use_exporter_address,omitempty"`
	// MaxExporters bounds the exporter table (0: exporter.DefaultMax);
	// MaxTemplates bounds the templates of one exporter (0:
	// DefaultMaxTemplates). Spoofed sources, or one source cycling through
	// domains and template ids, must not grow the decoder without end:
	// beyond the bounds templates are refused and counted
	// (Stats.TemplatesOverLimit, Stats.ExportersOverLimit).
	MaxExporters, MaxTemplates int `toml:"-"`
	// MaxSamplers bounds the sampling rates learnt from option data per
	// exporter (0: DefaultMaxSamplers): options carrying ever new sampler
	// ids must not grow the table without end. Rates of new ids past it are
	// refused and counted (Stats.SamplersOverLimit).
	MaxSamplers int `toml:"max_samplers"`
	// TemplatesMaxBytes and TemplatesMaxBytesPerExporter bound the memory
	// of the templates and sampling rates kept, in all and per exporter,
	// as estimated from their sizes (0: the defaults). The count bounds
	// alone let one exporter keep 4096 templates of 2,000 fields. Past
	// them new templates and sampling rates are refused and counted
	// (Stats.TemplatesOverBytes, Stats.SamplersOverLimit).
	TemplatesMaxBytes            int64 `toml:"templates_max_bytes"`
	TemplatesMaxBytesPerExporter int64 `toml:"templates_max_bytes_per_exporter"`
}

// DefaultMaxTemplates is above what one exporter with many line cards (one
// domain each) announces.
const DefaultMaxTemplates = 4096

// DefaultMaxSamplers is well above the sampler ids of one router (a few
// thousand at most: one per interface and direction).
const DefaultMaxSamplers = 16384

// The default byte bounds of the template store. The largest template that
// fits a datagram (9216 bytes: 2,298 fields) is estimated at 74,688 bytes
// (the heap holds 75,869: TestStoreEstimates), a usual one (30 fields) at
// 1,840, a sampling rate at 64. 16 MiB per exporter holds 224 of the
// largest or 9,000 usual ones; 128 MiB in all holds 1,797 of the largest,
// or 4096 exporters with 17 usual templates each. With the receive queues
// (4096 datagrams of 9 KiB per socket: 36 MiB), the caches and the outputs'
// buffers, a collector with 1 GiB keeps the store at an eighth of it; a save
// (streamed) adds one exporter's worth at most.
const (
	DefaultTemplatesMaxBytes            = 128 << 20
	DefaultTemplatesMaxBytesPerExporter = 16 << 20
)

// DefaultConfiguration returns the defaults: templates in memory, the
// exporters' own sampling rates, milliseconds, BGP next hops only, and the
// store's bounds.
func DefaultConfiguration() Configuration {
	return Configuration{
		MaxSamplers:                  DefaultMaxSamplers,
		TemplatesMaxBytes:            DefaultTemplatesMaxBytes,
		TemplatesMaxBytesPerExporter: DefaultTemplatesMaxBytesPerExporter,
	}
}

// Validate reports the settings New refuses, each a setting.KeyError
// naming its key.
func (cfg Configuration) Validate() error {
	var errs []error
	if err := cfg.Sampling.Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxSamplers < 0 {
		errs = append(errs, setting.Errorf("max_samplers", "%d is negative (expected 1 or more, 0 for the default %d)", cfg.MaxSamplers, DefaultMaxSamplers))
	}
	if cfg.TemplatesMaxBytes < 0 {
		errs = append(errs, setting.Errorf("templates_max_bytes", "%d is negative (expected bytes, 0 for the default %d)", cfg.TemplatesMaxBytes, DefaultTemplatesMaxBytes))
	}
	if cfg.TemplatesMaxBytesPerExporter < 0 {
		errs = append(errs, setting.Errorf("templates_max_bytes_per_exporter", "%d is negative (expected bytes, 0 for the default %d)",
			cfg.TemplatesMaxBytesPerExporter, DefaultTemplatesMaxBytesPerExporter))
	}
	return errors.Join(errs...)
}

// Decoder decodes NetFlow/IPFIX datagrams. It is safe for concurrent use.
type Decoder struct {
	cfg    Configuration
	logger *slog.Logger

	// exporters holds each exporter's state (templates, sampling rates)
	// and the counters the input keeps: one table per input
	exporters *exporter.Table

	store        store
	counters     counters
	overLimitLog ratelog.Limiter // the warning that exporters are past MaxExporters
	standInLog   ratelog.Limiter // warnings about exporters that keep nothing
	standIns     sync.Pool       // *exporterState, for exporters that keep nothing
	states       sync.Pool       // *state
}

// state is the per-call scratch space, pooled so that Decode does not
// allocate in the steady state.
type state struct {
	base  flow.Record // what every record of the datagram shares
	rec   flow.Record // handed to emit
	dirty bool        // rec has custom primitives set
	// Field layout of a record with variable-length fields.
	offs, lens [64]int
}

// reset sets the record handed to emit to the datagram's base, and returns
// it; its custom primitives are cleared only when the record will set some
// (custom) or the last one did: copying and clearing those bytes for every
// record costs a decoder that reads none 10-15%.
func (st *state) reset(custom bool) *flow.Record {
	r, b := &st.rec, &st.base
	r.Fixed = b.Fixed
	r.TCPFlags, r.Packets, r.Bytes, r.Flows = b.TCPFlags, b.Packets, b.Bytes, b.Flows
	r.MapFields = b.MapFields
	if custom || st.dirty {
		r.Custom = b.Custom
		st.dirty = custom
	}
	return r
}

// New returns a decoder. It does nothing but load cfg.TemplatesFile when
// set; a missing file is not an error (first start).
func New(cfg Configuration, logger *slog.Logger) (*Decoder, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("netflow: %w", err)
	}
	orDefault := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	orDefault(&cfg.MaxExporters, exporter.DefaultMax)
	orDefault(&cfg.MaxTemplates, DefaultMaxTemplates)
	orDefault(&cfg.MaxSamplers, DefaultMaxSamplers)
	if cfg.TemplatesMaxBytes <= 0 {
		cfg.TemplatesMaxBytes = DefaultTemplatesMaxBytes
	}
	if cfg.TemplatesMaxBytesPerExporter <= 0 {
		cfg.TemplatesMaxBytesPerExporter = DefaultTemplatesMaxBytesPerExporter
	}
	d := &Decoder{cfg: cfg, logger: logger, exporters: exporter.NewTable(cfg.MaxExporters)}
	d.store.maxTemplates, d.store.maxSamplers = cfg.MaxTemplates, cfg.MaxSamplers
	d.store.maxExporterBytes, d.store.maxBytes = cfg.TemplatesMaxBytesPerExporter, cfg.TemplatesMaxBytes
	d.overLimitLog.Every, d.standInLog.Every = warnInterval, warnInterval
	d.states.New = func() any { return new(state) }
	// a stand-in's store bounds are zero: it keeps nothing
	d.standIns.New = func() any { return &exporterState{log: &d.standInLog, standIn: true, store: &store{}} }
	if cfg.TemplatesFile != "" && !cfg.DeferLoad {
		if err := d.load(cfg.TemplatesFile); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Version numbers at the start of a datagram.
const (
	versionV5    = 5
	versionV9    = 9
	versionIPFIX = 10
)

// Exporters is the decoder's exporter table, for the input to keep its
// counters in.
func (d *Decoder) Exporters() *exporter.Table { return d.exporters }

// Decode decodes one UDP payload from exporter from, received at received,
// and calls emit for each flow data record. emit's record is reused: emit
// must copy what it keeps. Option data records feed the sampling tables and
// are not emitted. A malformed datagram gives an error naming the exporter,
// after the records decodable before the fault were emitted.
func (d *Decoder) Decode(payload []byte, from netip.Addr, received time.Time, emit func(*flow.Record)) error {
	return d.DecodeFrom(payload, from, d.exporters.Get(from), received, emit)
}

// DecodeFrom is Decode with from's entry in the exporter table looked up
// already.
func (d *Decoder) DecodeFrom(payload []byte, from netip.Addr, entry *exporter.Entry, received time.Time, emit func(*flow.Record)) error {
	d.counters.datagrams.Add(1)
	e := d.lookup(from.Unmap(), entry)
	defer d.release(e)
	if entry == d.exporters.Other() {
		d.counters.exportersOverLimit.Add(1)
		if ok, n := d.overLimitLog.Allow(); ok {
			d.logger.Warn("too many exporters: templates and sampling rates of this one are not kept",
				"exporter", e.addr, "max_exporters", d.cfg.MaxExporters, "untracked_datagrams", d.counters.exportersOverLimit.Load(),
				"suppressed_since_last", n)
		}
	}
	if len(payload) < 2 {
		d.counters.malformed.Add(1)
		return d.malformed(e, errShort)
	}
	st := d.states.Get().(*state)
	defer d.states.Put(st)

	var err error
	switch v := binary.BigEndian.Uint16(payload); v {
	case versionV5:
		d.counters.v5.Add(1)
		err = d.decodeV5(st, e, payload, received, emit)
	case versionV9:
		d.counters.v9.Add(1)
		err = d.decodeTemplated(st, e, payload, received, emit)
	case versionIPFIX:
		d.counters.ipfix.Add(1)
		err = d.decodeTemplated(st, e, payload, received, emit)
	default:
		d.counters.unsupported.Add(1)
		d.counters.malformed.Add(1)
		return d.malformed(e, fmt.Errorf("unsupported version %d", v))
	}
	if err != nil {
		d.counters.malformed.Add(1)
	}
	return err
}

// DecodeError is the error of a malformed datagram.
type DecodeError struct {
	Exporter netip.Addr
	Err      error
}

func (e *DecodeError) Error() string {
	return "netflow: exporter " + e.Exporter.String() + ": " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

var (
	errShort     = errors.New("datagram too short")
	errTruncated = errors.New("truncated datagram")
)

// lookup returns the state kept for an exporter, or a pooled stand-in that
// keeps nothing (v5 decodes, v9 and IPFIX data find no template) when it has
// none yet or shares the entry Other; release gives the stand-in back.
func (d *Decoder) lookup(addr netip.Addr, entry *exporter.Entry) *exporterState {
	if e, ok := entry.State().(*exporterState); ok {
		return e
	}
	e := d.standIns.Get().(*exporterState)
	e.addr, e.entry, e.override = addr, entry, d.cfg.Sampling.Rate(addr)
	return e
}

// keep returns the state in which to store a template or a sampling rate of
// e's exporter, made the first time; nil when the table keeps nothing more
// (every entry keeps something already).
func (d *Decoder) keep(e *exporterState) *exporterState {
	if !e.standIn {
		return e
	}
	addr := e.addr
	kept := d.exporters.Keep(addr, func(entry *exporter.Entry) any {
		return newExporter(addr, entry, d.cfg.Sampling.Rate(addr), &d.store)
	})
	if kept == nil {
		return nil
	}
	return kept.(*exporterState)
}

// kept returns the state kept for a stand-in's exporter once the exporter
// keeps something (a template or a sampling rate set by this datagram), e
// itself otherwise.
func (d *Decoder) kept(e *exporterState) *exporterState {
	if e.standIn {
		if k, ok := e.entry.State().(*exporterState); ok {
			return k
		}
	}
	return e
}

// release gives back a stand-in.
func (d *Decoder) release(e *exporterState) {
	if e.standIn {
		e.entry = nil
		d.standIns.Put(e)
	}
}

// warnInterval spaces the decoder's warnings about one exporter (refused
// templates) and about exporters past the bound: the counters carry the
// numbers, one line a minute names the source and the fault. A malformed
// datagram is the caller's to log: Decode returns its error.
const warnInterval = time.Minute
