package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowdex/flowdex/aggregate/cache"
	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/engine/config"
	"github.com/flowdex/flowdex/aggregate/filter"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/networks"
	"github.com/flowdex/flowdex/aggregate/pretag"
	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/collector/datagram"
	"github.com/flowdex/flowdex/collector/exporter"
	"github.com/flowdex/flowdex/collector/netflow"
	"github.com/flowdex/flowdex/collector/pcap"
	"github.com/flowdex/flowdex/collector/sflow"
)

// flowPipeline is a pipeline that aggregates flows, as one pmacct plugin does:
// records go into its cache, and at every refresh the cache is written out.
type flowPipeline struct {
	*pipeline
	cache   *cache.Cache
	agg     flow.Aggregate
	format  flow.Format
	history bool
	refresh time.Duration
	// cacheEntries is pmacct's print_cache_entries: the cache is flushed
	// at once when it holds that many aggregates
	cacheEntries int
	times        []flowTime // timestamp_fields the documents have, in order

	mu  sync.Mutex // one flush at a time: doc and ids are reused
	doc document.Document
	// instance is random, drawn at creation, in the origin of the flushes'
	// ids: collectors' refreshes are due at the same instants of the clock
	// and their timers fire microseconds apart, so two collectors with the
	// same pipeline name can flush in the same nanosecond (an estimate: one
	// flush pair in 10^4 or 10^5, more with a coarse clock), and the
	// second's documents would then take the first's ids, which
	// Elasticsearch would drop as already there.
	instance string
}

// newFlowPipeline makes the aggregation of pipeline pc around p; an error
// is a setting.KeyError naming the key at fault.
func newFlowPipeline(p *pipeline, pc *config.Pipeline) (*flowPipeline, error) {
	agg, err := flow.ParseAggregate(pc.Aggregate)
	if err != nil {
		return nil, setting.Key("aggregate", err)
	}
	history, err := cache.ParseHistory(pc.History)
	if err != nil {
		return nil, setting.Key("history", err)
	}
	cc := cache.Configuration{
		Aggregate:       agg,
		History:         history,
		HistoryOffset:   pc.HistoryOffset.Duration,
		MaxEntries:      pc.CacheEntries,
		PostTag:         pc.PostTag,
		NoMaskIfZero:    pc.NoMaskIfZero,
		PostTag2:        pc.PostTag2,
		HistoryRoundoff: pc.HistoryRoundoff,
		Location:        time.Local,
		Renormalize:     pc.Renormalize,
		TimeNew:         pc.TimeNew,
		SamplingRate:    pc.SamplingRate,
		TimestampsSecs:  pc.Secs,
	}
	if pc.UTC {
		cc.Location = time.UTC
	}
	if pc.Filter != "" {
		if cc.Filter, err = filter.Compile(pc.Filter); err != nil {
			return nil, setting.Key("filter", err)
		}
	}
	if cc.Tags, err = pc.PreTagFilters(); err != nil {
		return nil, err
	}
	if pc.NetworksFile != "" {
		if cc.Networks, err = networks.Load(pc.NetworksFile); err != nil {
			return nil, setting.Key("networks_file", err)
		}
	}
	if p.enricher != nil {
		cc.Geo = p.enricher // its geoip_database, for the GeoIP primitives
	}
	cc.NetworksMask, cc.NetworksNoLPM, cc.NetworksFilter = pc.NetworksMask, pc.NetworksNoLPM, pc.NetworksFilter
	for _, s := range []struct {
		key, value string
		to         *cache.Source
	}{{"net_source", pc.NetSource, &cc.NetSource}, {"as_source", pc.ASSource, &cc.ASSource}, {"peer_src_as_source", pc.PeerSrcASSource, &cc.PeerSrcASSource}} {
		if s.value != "" {
			if *s.to, err = cache.ParseSource(s.value); err != nil {
				return nil, setting.Key(s.key, err) // the configuration's check said so already
			}
		}
	}
	var salt [8]byte
	_, _ = rand.Read(salt[:]) // never fails (crypto/rand)
	return &flowPipeline{
		instance:     hex.EncodeToString(salt[:]),
		pipeline:     p,
		cache:        cache.New(cc),
		agg:          agg,
		format:       pc.Format,
		history:      history.Enabled(),
		refresh:      pc.Refresh.Duration,
		cacheEntries: pc.CacheEntries,
		times:        flowTimes(pc.TimestampFields, agg, history.Enabled()),
	}, nil
}

// flowTime is a time an aggregate's document holds.
type flowTime uint8

const (
	timeInserted flowTime = iota // stamp_inserted: the bin's start
	timeUpdated                  // stamp_updated: the flush
	timeStart                    // timestamp_start
	timeEnd                      // timestamp_end
	timeArrival                  // timestamp_arrival
	timeExport                   // timestamp_export
)

// flowTimes are the timestamp fields an aggregate's document has, of names,
// in their order.
func flowTimes(names []string, agg flow.Aggregate, history bool) []flowTime {
	var times []flowTime
	for _, n := range names {
		switch {
		case n == "stamp_inserted" && history:
			times = append(times, timeInserted)
		case n == "stamp_updated" && history:
			times = append(times, timeUpdated)
		case n == "timestamp_start" && agg.Set.Has(flow.TimestampStart):
			times = append(times, timeStart)
		case n == "timestamp_end" && agg.Set.Has(flow.TimestampEnd):
			times = append(times, timeEnd)
		case n == "timestamp_arrival" && agg.Set.Has(flow.TimestampArrival):
			times = append(times, timeArrival)
		case n == "timestamp_export" && agg.Set.Has(flow.TimestampExport):
			times = append(times, timeExport)
		}
	}
	return times
}

// recordTime is an aggregate's time: its first known time of fp.times, else
// the flush's.
func (fp *flowPipeline) recordTime(e *cache.Entry, flushed time.Time) time.Time {
	for _, ft := range fp.times {
		var us int64
		switch ft {
		case timeInserted:
			us = e.Bin * 1e6
		case timeUpdated:
			return time.Unix(flushed.Unix(), 0) // as stamp_updated is written
		case timeStart:
			us = e.TimestampStart
		case timeEnd:
			us = e.TimestampEnd
		case timeArrival:
			us = e.TimestampArrival
		case timeExport:
			us = e.TimestampExport
		}
		if us != 0 { // 0: unknown, pmacct's "0000-00-00 00:00:00"
			return time.UnixMicro(us)
		}
	}
	return flushed
}

// flush writes out and empties the cache. Every partial bin is a document of its
// own: the id names the pipeline (and its instance), the flush and the entry's
// place in it, so a bin written at two refreshes gives two documents that sum up,
// as pmacct's records do, and a retried bulk request cannot index one twice.
func (fp *flowPipeline) flush(ctx context.Context, now time.Time, c *counters, logger *slog.Logger) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	ids := fp.flushIDs(now)
	var updated int64
	if fp.history {
		updated = now.Unix()
	}
	n := 0
	fp.cache.Flush(func(e *cache.Entry) {
		n++
		fp.format.Document(&fp.doc, fp.agg, &e.Key,
			flow.Counters{TCPFlags: e.TCPFlags, Packets: e.Packets, Bytes: e.Bytes, Flows: e.Flows, Events: e.Events},
			flow.Stamps{Inserted: e.Bin, Updated: updated})
		if fp.enricher != nil { // before the transformations, which may rename what it adds
			fp.enricher.Enrich(&fp.doc)
		}
		if fp.program != nil {
			fp.program.Apply(&fp.doc)
		}
		id := ids.make(n, nil)
		t := fp.recordTime(e, now)
		c.records.Add(1)
		for _, o := range fp.outputs {
			if err := o.Write(ctx, &fp.doc, id, t); err != nil {
				c.writeErrors.Add(1)
				logger.Error("write failed", "pipeline", fp.name, "output", o.name, "error", err)
			}
		}
	})
	if n > 0 {
		fp.pipeline.flush(ctx, logger)
		logger.Debug("pipeline flushed", "pipeline", fp.name, "entries", n)
	}
}

// flushIDs makes the ids of the flush at now.
func (fp *flowPipeline) flushIDs(now time.Time) *idMaker {
	return newIDMaker(fp.name + "|" + fp.instance + "|" + strconv.FormatInt(now.UnixNano(), 10))
}

// refreshLoop flushes at every refresh, on pmacct's schedule: deadlines are the
// start minute plus multiples of the refresh time.
func (fp *flowPipeline) refreshLoop(ctx context.Context, c *counters, logger *slog.Logger) {
	start := time.Now()
	base := start.Truncate(time.Minute)
	next := base.Add((start.Sub(base)/fp.refresh + 1) * fp.refresh)
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case now := <-t.C:
			// the outputs get a context of their own: a flush under way at shutdown completes
			fp.flush(context.WithoutCancel(ctx), now, c, logger)
			next = next.Add(fp.refresh)
		case <-fp.cache.Full():
			t.Stop()
			logger.Info("cache_entries reached: flushing now", "pipeline", fp.name, "cache_entries", fp.cacheEntries)
			fp.flush(context.WithoutCancel(ctx), time.Now(), c, logger)
		}
	}
}

// flowInput is a NetFlow/IPFIX, sFlow or pcap input: sockets, a replayed
// capture or libpcap, a decoder, and the pipelines its records go to.
type flowInput struct {
	cfg       config.FlowInput
	name      string
	pipelines []*flowPipeline
	decode    func(payload []byte, from netip.Addr, entry *exporter.Entry, received time.Time, emit func(*flow.Record)) error
	netflow   *netflow.Decoder // nil but for NetFlow
	sflow     *sflow.Decoder   // nil but for sFlow
	listener  atomic.Pointer[datagram.Listener]
	capt      atomic.Pointer[pcap.Capture]
	open      func(path string) (io.ReadCloser, error) // a replay's capture, counted for Progress
	logger    *slog.Logger

	allow []setting.Prefix // exporters accepted; none: any (exporters = [] too)

	pretag     atomic.Pointer[pretag.Map] // nil without a pre_tag_map; replaced by a reload
	pretagPath string
	bgp        *bgpLookup // nil without [bgp] or a pipeline of BGP primitives

	bound  atomic.Bool // receiving: socket bound, capture open, replay begun
	loaded atomic.Bool // NetFlow: the templates file was read (else it is not overwritten)
	// exporters keeps each exporter's counters and, for NetFlow, the
	// decoder's templates: the decoder's table
	exporters                      *exporter.Table
	rejectedLog                    ratelog.Limiter // of datagrams refused by the allow-list
	emitters                       sync.Pool       // *countingEmitter
	datagrams, malformed, rejected atomic.Uint64
	records                        atomic.Uint64 // decoded, whatever the table kept of the exporters
}

// newFlowInput makes flow input in; an error is a setting.KeyError naming
// the key at fault.
func newFlowInput(in config.FlowInput, pipelines []*flowPipeline, open func(string) (io.ReadCloser, error), logger *slog.Logger) (*flowInput, error) {
	name := in.Common().Name
	fi := &flowInput{cfg: in, name: name, pipelines: pipelines, open: open, logger: logger.With("input", name)}
	fi.rejectedLog.Every = time.Second
	fi.emitters.New = func() any {
		e := &countingEmitter{fi: fi}
		e.emit = e.add
		return e
	}
	if fi.pretagPath = in.Targets().PreTagMap; fi.pretagPath != "" {
		m, err := fi.loadPretag()
		if err != nil {
			return nil, setting.Key("pre_tag_map", err)
		}
		fi.pretag.Store(m)
	}
	switch in := in.(type) {
	case *config.NetFlowInput:
		fi.allow = in.Exporters
		nc := in.Configuration
		nc.DeferLoad = true // run loads the templates once the sockets are bound
		d, err := netflow.New(nc, fi.logger)
		if err != nil {
			return nil, setting.Key("templates_file", err)
		}
		fi.netflow, fi.decode, fi.exporters = d, d.DecodeFrom, d.Exporters()
	case *config.SFlowInput:
		fi.allow = in.Exporters
		d, err := sflow.New(in.Configuration, fi.logger)
		if err != nil {
			return nil, err
		}
		fi.sflow = d
		fi.decode = func(payload []byte, from netip.Addr, _ *exporter.Entry, received time.Time, emit func(*flow.Record)) error {
			return d.Decode(payload, from, received, emit)
		}
		fi.exporters = exporter.NewTable(0)
	case *config.PcapInput:
		// packets are read and parsed by the capture itself (run)
		fi.exporters = exporter.NewTable(0)
	}
	return fi, nil
}

func (fi *flowInput) loadPretag() (*pretag.Map, error) {
	return pretag.Load(fi.pretagPath, config.PretagOptions(fi.cfg))
}

// reloadPretag reads the pre_tag_map again; a map that does not load
// leaves the one in use.
func (fi *flowInput) reloadPretag() {
	m, err := fi.loadPretag()
	if err != nil {
		fi.logger.Error("pre_tag_map reload failed, the previous map stays in use", "file", fi.pretagPath, "error", err)
		return
	}
	fi.pretag.Store(m)
	fi.logger.Info("pre_tag_map reloaded", "file", fi.pretagPath, "rules", m.Rules())
}

// emit hands r to the pipelines; s is the calling goroutine's.
func (fi *flowInput) emit(r *flow.Record, s *cache.Scratch) {
	if fi.bgp != nil {
		fi.bgp.fill(r) // before the map, as pmacct's core
	}
	if m := fi.pretag.Load(); m != nil {
		m.Apply(r)
	}
	for _, p := range fi.pipelines {
		p.cache.AddWith(r, s)
	}
}

// handle decodes one datagram. A malformed one is counted and logged with its
// exporter, at most once a second per exporter.
func (fi *flowInput) handle(d *datagram.Datagram) {
	if len(fi.allow) > 0 && !fi.allowed(d.Source.Addr()) {
		// before any decoding: a stranger can neither cost CPU nor add an
		// exporter to the template store, and it is counted per input, not
		// in the exporter table (a spoofed flood must not take the slots of
		// real exporters)
		fi.rejected.Add(1)
		if ok, suppressed := fi.rejectedLog.Allow(); ok {
			fi.logger.Warn("datagram from an exporter not in exporters; dropped", "exporter", d.Source.String(),
				"suppressed_since_last", suppressed)
		}
		return
	}
	fi.datagrams.Add(1)
	ec := fi.exporters.Get(d.Source.Addr())
	ec.Datagrams.Add(1)
	em := fi.emitters.Get().(*countingEmitter)
	err := fi.decode(d.Payload, d.Source.Addr(), ec, d.Received, em.emit)
	ec.Records.Add(em.n)
	fi.records.Add(em.n)
	em.n = 0
	fi.emitters.Put(em)
	if err == nil {
		return
	}
	fi.malformed.Add(1)
	ec.Malformed.Add(1)
	if ok, suppressed := ec.Log.Allow(); ok {
		fi.logger.Warn("malformed datagram", "exporter", d.Source.String(), "bytes", len(d.Payload),
			"error", err, "suppressed_since_last", suppressed)
	}
}

func (fi *flowInput) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range fi.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// run receives until ctx is done (sockets, interfaces) or the pcap ends (replay, file).
func (fi *flowInput) run(ctx context.Context) error {
	if c, ok := fi.cfg.(*config.PcapInput); ok {
		return fi.capture(ctx, c)
	}
	in := config.ReceiveOf(fi.cfg)
	if in.Replay != "" {
		f, err := fi.open(in.Replay)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer f.Close()
		fi.loadTemplates()
		fi.bound.Store(true)
		if d := in.ReplayDelay.Duration; d > 0 {
			fi.logger.Info("replay waits", "delay", d)
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil
			}
		}
		st, err := datagram.ReplayReader(ctx, f, in.ReplaySpeed, fi.handle)
		if err != nil {
			err = fmt.Errorf("replay %s: %w", in.Replay, err)
		}
		fi.logger.Info("replay finished", "file", in.Replay, "packets", st.Packets, "datagrams", fi.datagrams.Load(),
			"malformed", fi.malformed.Load(), "rejected_exporters", fi.rejected.Load(), "skipped", st.Skipped())
		fi.logDecoderStats()
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	l, err := datagram.New(in.Configuration, fi.handle, fi.logger)
	if err != nil {
		return err
	}
	if err := l.Start(); err != nil {
		return err
	}
	fi.listener.Store(l)
	fi.bound.Store(true)
	fi.logger.Info("listening", "addresses", fmt.Sprint(l.Addrs()))
	// after binding: a file at the bounds takes seconds to read, and the
	// datagrams meanwhile are decoded (their data before their template is
	// loaded counted as without template, as after a start without file)
	fi.loadTemplates()
	// templates are saved as they come, so that a crash loses at most a minute of them
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-tick.C:
			fi.saveTemplates()
		}
	}
	// what the kernel queued is decoded; the port stays bound until close
	l.Drain()
	fi.logDecoderStats()
	return nil
}

// close closes an input's sockets, last of all at stop: what arrived after
// the drain (the caches were being written out, nothing could aggregate it)
// was accepted by the kernel rather than refused, and is counted here.
func (fi *flowInput) close() error {
	l := fi.listener.Load()
	if l == nil {
		return nil
	}
	err := l.Close()
	st := l.Stats()
	unread := unreadBytes(st)
	level := slog.LevelInfo
	if st.Unhandled > 0 || unread > 0 {
		level = slog.LevelWarn
	}
	fi.logger.Log(context.Background(), level, "input stopped", "datagrams", fi.datagrams.Load(), "malformed", fi.malformed.Load(),
		"rejected_exporters", fi.rejected.Load(),
		"received", st.Received, "dropped_queue_full", st.Dropped, "dropped_by_kernel", st.KernelDrops,
		"truncated", st.Truncated, "read_errors", st.ReadErrors,
		"dropped_at_shutdown", st.Unhandled, "unread_bytes_at_close", unread)
	return err
}

// unreadBytes is what the kernel still held when the sockets closed.
func unreadBytes(st datagram.Stats) uint64 {
	var n uint64
	for _, s := range st.Sockets {
		n += s.KernelQueued
	}
	return n
}

// logDecoderStats says what the decoder made of the datagrams, including the
// data that came before its template, per exporter.
func (fi *flowInput) logDecoderStats() {
	if fi.netflow == nil {
		return
	}
	st := fi.netflow.Stats()
	fi.logger.Info("netflow decoder", "records", st.Records, "option_records", st.OptionRecords,
		"templates_added", st.TemplatesAdded, "templates_refused", st.TemplatesRefused,
		"templates_withdrawn", st.TemplatesWithdrawn, "templates_over_limit", st.TemplatesOverLimit,
		"templates_over_bytes", st.TemplatesOverBytes, "sampling_rates_refused", st.SamplersOverLimit, "store_bytes", st.StoreBytes,
		"untracked_exporter_datagrams", st.ExportersOverLimit, "evicted_exporters", st.ExportersEvicted,
		"unsupported_version", st.UnsupportedVersion, "custom_fields_short", st.CustomShort, "custom_fields_cut", st.CustomCut)
	for exporter, n := range st.NoTemplate {
		fi.logger.Warn("data sets without their template (dropped)", "exporter", exporterName(exporter), "sets", n)
	}
}

// loadTemplates reads the NetFlow templates file, if any. One that cannot
// be read does not stop the input, which the exporters' next templates
// (minutes) make whole again: it is reported, and left as it is for the
// operator to look at.
func (fi *flowInput) loadTemplates() {
	if fi.netflow == nil {
		return
	}
	if err := fi.netflow.Load(); err != nil {
		fi.logger.Error("cannot read the templates file; templates are learnt again from the exporters, and the file is not overwritten",
			"input", fi.name, "error", err)
		return
	}
	fi.loaded.Store(true)
}

// saveTemplates keeps NetFlow v9/IPFIX templates for the next start; not
// over a file that could not be read.
func (fi *flowInput) saveTemplates() {
	nf, ok := fi.cfg.(*config.NetFlowInput)
	if !ok || nf.TemplatesFile == "" || !fi.loaded.Load() {
		return
	}
	if err := fi.netflow.Save(); err != nil {
		fi.logger.Error("saving templates failed", "file", nf.TemplatesFile, "error", err)
	}
}

// capture runs a pcap input: libpcap on an interface or a file, as pmacctd.
func (fi *flowInput) capture(ctx context.Context, in *config.PcapInput) error {
	pc := in.Configuration
	// pmacctd tracks fragments for every plugin as soon as one needs ports
	for _, p := range fi.pipelines {
		if p.agg.Set.Has(flow.SrcPort) || p.agg.Set.Has(flow.DstPort) || p.agg.Set.Has(flow.TCPFlags) ||
			p.agg.Set.Has(flow.Flows) || p.agg.Sum == flow.SumPort {
			pc.Fragments = true
		}
	}
	c, err := pcap.Open(pc, fi.logger)
	if err != nil {
		return err
	}
	fi.capt.Store(c)
	fi.bound.Store(true)
	fi.logger.Info("capturing", "interface", in.Interface, "file", pc.File, "filter", in.Filter)
	var scratch cache.Scratch // Run emits from one goroutine
	err = c.Run(ctx, func(r *flow.Record) { fi.emit(r, &scratch) })
	st := c.Stats()
	fi.logger.Info("capture stopped", "packets", st.Packets, "records", st.Records, "not_ip", st.NotIP,
		"truncated", st.Truncated, "received", st.Received, "dropped_by_kernel", st.KernelDrops,
		"dropped_by_interface", st.InterfaceDrops)
	if pc.Fragments {
		level := slog.LevelInfo
		if st.FragmentsOrphaned > 0 || st.FragmentsUntracked > 0 {
			level = slog.LevelWarn
		}
		fi.logger.Log(ctx, level, "ip fragments", "held_for_first", st.FragmentsHeld,
			"orphaned_packets", st.FragmentsOrphaned, "orphaned_bytes", st.FragmentBytesOrphaned,
			"untracked_table_full", st.FragmentsUntracked)
	}
	return err
}
