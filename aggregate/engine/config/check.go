package config

import (
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/cache"
	customfile "github.com/flowdex/flowdex/aggregate/custom"
	"github.com/flowdex/flowdex/aggregate/filter"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/pretag"
	"github.com/flowdex/flowdex/aggregate/routes"
	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/sink/elasticsearch/retention"
)

// check runs the components' own checks on their tables and the checks that
// span tables, recording every mistake.
func (l *loader) check() {
	c := l.c
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		l.fail([]string{"log", "level"}, "unknown level %q (expected debug, info, warn or error)", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		l.fail([]string{"log", "format"}, "unknown format %q (expected text or json)", c.Log.Format)
	}
	if len(c.Inputs) == 0 {
		l.errs = append(l.errs, &Error{File: c.File, Msg: "no [[input]] (expected at least one, e.g. type = \"pmacct\")"})
	}
	if s := c.HTTP.Listen; s != "" {
		if _, port, err := net.SplitHostPort(s); err != nil || !isPort(port) {
			l.fail([]string{"http", "listen"}, "%q is not a host and port (expected e.g. %q, or \"[::1]:8090\")", s, DefaultHTTPListen)
		}
	}
	if b := c.BGP; b != nil {
		if _, port, err := net.SplitHostPort(b.Listen); err != nil || !isPort(port) {
			l.fail([]string{"bgp", "listen"}, "%q is not a host and port (expected e.g. \"0.0.0.0:179\")", b.Listen)
		}
		if _, err := b.Configuration(); err != nil {
			path := []string{"bgp"}
			var ke *setting.KeyError
			if errors.As(err, &ke) {
				path, err = append(path, strings.Split(ke.Key, ".")...), ke.Err
			}
			l.fail(path, "%v", err)
		}
	}
	if b := c.BMP; b != nil {
		if _, port, err := net.SplitHostPort(b.Listen); err != nil || !isPort(port) {
			l.fail([]string{"bmp", "listen"}, "%q is not a host and port (expected e.g. \"0.0.0.0:1790\")", b.Listen)
		}
		if _, err := b.Configuration(); err != nil {
			path := []string{"bmp"}
			var ke *setting.KeyError
			if errors.As(err, &ke) {
				path, err = append(path, strings.Split(ke.Key, ".")...), ke.Err
			}
			l.fail(path, "%v", err)
		}
	}
	for _, h := range c.HTTP.AllowedHosts {
		if !validAllowedHost(h) {
			l.fail([]string{"http", "allowed_hosts"}, "%q is not a host name (expected a name such as \"flowdex.example.net\", without scheme nor port, or \"*\" for any)", h)
		}
	}
	if w := c.HTTP.WebOutput; w != "" {
		if _, ok := c.Outputs[w].(*ElasticsearchOutput); !ok {
			l.fail([]string{"http", "web_output"}, "%q is not an elasticsearch output (expected one of the [output.NAME] tables with type = \"elasticsearch\")", w)
		}
	}
	// before the pipelines, whose aggregate lists may name them
	var custom []flow.CustomField
	if f := c.AggregatePrimitives; f != "" {
		all, err := customfile.Load(f)
		if err != nil {
			l.fail([]string{"aggregate_primitives"}, "%v", err)
		}
		custom = c.aggregated(all)
	}
	if err := flow.DefineCustom(custom); err != nil {
		l.fail([]string{"aggregate_primitives"}, "the pipelines aggregate on %s: %v", flowNames(custom), err)
	}
	pipelines := map[string]bool{}
	for i := range c.Pipelines {
		l.checkPipeline(i, pipelines)
	}
	l.labelMaps()
	inputs := map[string]bool{}
	for i, in := range c.Inputs {
		name := in.Common().Name
		if inputs[name] {
			l.fail(at("input", i, "name"), "input %q defined twice", name)
		}
		inputs[name] = true
		l.checkInput(i, in, pipelines)
	}
	printFiles := map[string]string{}
	spoolDirs, deadLetters := map[string]string{}, map[string]string{}
	for _, name := range c.outputNames() {
		path := func(key string) []string { return []string{"output", name, key} }
		// two senders of one spool, whatever their types, would collide on
		// segment names and each send the other's records (a second process
		// is refused by its lock)
		spoolDir := func(d string) {
			if d == "" {
				return
			}
			if a, err := filepath.Abs(d); err == nil {
				d = a
			}
			if other, ok := spoolDirs[d]; ok {
				l.fail(path("spool_dir"), "outputs %q and %q both spool to %q (expected a spool_dir of its own for each)", other, name, d)
			}
			spoolDirs[d] = name
		}
		switch o := c.Outputs[name].(type) {
		case *PrintOutput:
			l.checkPurgeFiles(name, o)
			// two writers on one file would interleave their buffers mid-line
			f := o.Path
			if other, ok := printFiles[f]; ok {
				l.fail(path("file"), "outputs %q and %q both print to %q", other, name, o.Path)
			}
			printFiles[f] = name
			l.failErr(o.Configuration.Validate(), "output", name)
		case *KafkaOutput:
			l.failErr(o.Configuration.Validate(), "output", name)
			spoolDir(o.SpoolDir)
		case *ElasticsearchOutput:
			l.checkElasticsearch(o, path)
			spoolDir(o.SpoolDir)
			// a dead-letter file cuts a torn record off after a short write: a
			// second writer's records would go with it
			if o.DeadLetterFile != "" {
				f := o.DeadLetterFile
				if a, err := filepath.Abs(f); err == nil {
					f = a
				}
				if other, ok := deadLetters[f]; ok {
					l.fail(path("dead_letter_file"), "outputs %q and %q both dead-letter to %q (expected a dead_letter_file of its own for each)", other, name, f)
				}
				deadLetters[f] = name
			}
		}
	}
}

// checkPurgeFiles gives a print output that writes the files of each purge
// (csv, markers, names with time codes...) its one pipeline's time zone: the
// purges of two pipelines would mix in its files.
func (l *loader) checkPurgeFiles(name string, o *PrintOutput) {
	c := l.c
	var feeding []string
	for i := range c.Pipelines {
		if slices.Contains(c.Pipelines[i].Outputs, name) {
			feeding = append(feeding, c.Pipelines[i].Name)
			o.UTC = c.Pipelines[i].UTC
		}
	}
	if o.Format == "formatted" {
		for i := range c.Pipelines {
			if !slices.Contains(c.Pipelines[i].Outputs, name) {
				continue
			}
			agg, err := flow.ParseAggregate(c.Pipelines[i].Aggregate)
			if err != nil {
				continue // the pipeline's check says why
			}
			agg.Set.Each(func(p flow.Primitive) {
				in := p.Info()
				if in.Kind == flow.KindLabel || in.Custom != nil && in.Custom.Len == flow.VarLen {
					l.fail([]string{"output", name, "format"}, "pipeline %q aggregates on %s, of variable length, which pmacct's formatted table cannot hold (expected csv or json)", c.Pipelines[i].Name, in.Name)
				}
			})
		}
	}
	if len(feeding) > 1 && o.Configuration.PurgeFiles() {
		l.fail([]string{"output", name, "file"}, "pipelines %s write to it, and its files are written purge by purge (format, markers, append, latest_file, trigger_exec or a name with %% or $): expected one pipeline", strings.Join(feeding, ", "))
	}
}

// labelMaps sets LabelMaps on the Elasticsearch outputs of the pipelines
// that write labels as maps, and fails an output that some pipelines write
// labels to as maps and others as strings.
func (l *loader) labelMaps() {
	c := l.c
	asMap := map[string]map[bool]string{} // output -> encoding -> a pipeline
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if !slices.ContainsFunc(p.Aggregate, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), "label") }) {
			continue
		}
		for _, o := range p.Outputs {
			if asMap[o] == nil {
				asMap[o] = map[bool]string{}
			}
			if other, ok := asMap[o][!p.LabelMap]; ok {
				l.fail(at("pipeline", i, "pre_tag_label_encode_as_map"), "pipelines %q and %q write label to output %q, one as a map and one as a string: one Elasticsearch field cannot be both (expected the same pre_tag_label_encode_as_map, or outputs of their own)", other, p.Name, o)
			}
			asMap[o][p.LabelMap] = p.Name
			if es, ok := c.Outputs[o].(*ElasticsearchOutput); ok && p.LabelMap {
				es.LabelMaps = true
			}
		}
	}
}

// checkSources checks where pipeline i takes nets and AS numbers from.
func (l *loader) checkSources(i int) {
	p := &l.c.Pipelines[i]
	for _, s := range []struct {
		key, value string
		as         bool
	}{{"net_source", p.NetSource, false}, {"as_source", p.ASSource, true}, {"peer_src_as_source", p.PeerSrcASSource, true}} {
		if s.value == "" {
			continue
		}
		src, err := cache.ParseSource(s.value)
		switch {
		case err != nil:
			l.fail(at("pipeline", i, s.key), "%v", err)
		case s.key == "peer_src_as_source" && src != cache.SourceRecord && src != cache.SourceBGP:
			l.fail(at("pipeline", i, s.key), "%q (expected netflow, sflow or bgp, as pmacct's bgp_peer_src_as_type; its map is not there)", s.value)
		case src == cache.SourceMask && s.as:
			l.fail(at("pipeline", i, s.key), "%q: masks make no AS numbers (expected netflow, sflow, file, longest or bgp)", s.value)
		case src == cache.SourceBGP && l.c.BGP == nil && l.c.BMP == nil:
			l.fail(at("pipeline", i, s.key), "%q needs a [bgp] or [bmp] table (pmacct's bgp_daemon or bmp_daemon)", s.value)
		case (src == cache.SourceFile || src == cache.SourceLongest) && p.NetworksFile == "":
			// pmacct stops at "file"; it takes "longest" as "netflow"
			l.fail(at("pipeline", i, s.key), "%q needs the pipeline's networks_file", s.value)
		case src == cache.SourceMask && p.NetworksMask == 0:
			l.fail(at("pipeline", i, s.key), "\"mask\" needs networks_mask (1 to 128)")
		}
	}
	if p.NetworksMask > 128 {
		l.fail(at("pipeline", i, "networks_mask"), "%d: expected 1 to 128", p.NetworksMask)
	}
	for key, set := range map[string]bool{"networks_file_no_lpm": p.NetworksNoLPM, "networks_file_filter": p.NetworksFilter} {
		if set && p.NetworksFile == "" {
			l.fail(at("pipeline", i, key), "%s without networks_file", key)
		}
	}
}

// aggregated returns the custom primitives of fs that a pipeline aggregates
// on, in their file's order: only those take room in records.
func (c *Config) aggregated(fs []flow.CustomField) []flow.CustomField {
	used := map[string]bool{}
	for _, p := range c.Pipelines {
		for _, n := range p.Aggregate {
			used[strings.ToLower(strings.TrimSpace(n))] = true
		}
	}
	var out []flow.CustomField
	for _, f := range fs {
		if used[f.Name] {
			out = append(out, f)
		}
	}
	return out
}

func flowNames(fs []flow.CustomField) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// checkPipeline checks pipeline i and records its name.
func (l *loader) checkPipeline(i int, pipelines map[string]bool) {
	c := l.c
	p := &c.Pipelines[i]
	if pipelines[p.Name] {
		l.fail(at("pipeline", i, "name"), "pipeline %q defined twice", p.Name)
	}
	pipelines[p.Name] = true
	for j, o := range p.Outputs {
		switch {
		case slices.Contains(p.Outputs[:j], o):
			l.fail(at("pipeline", i, "outputs"), "output %q listed twice", o)
		case c.Outputs[o] == nil:
			l.fail(at("pipeline", i, "outputs"), "unknown output %q (expected one of the [output.NAME] tables: %s)", o, strings.Join(c.outputNames(), ", "))
		}
	}
	for _, f := range p.TimestampFields {
		if f == "" {
			l.fail(at("pipeline", i, "timestamp_fields"), "an empty field name (expected names such as %q)", DefaultTimestampFields[0])
		}
	}
	if agg, err := flow.ParseAggregate(p.Aggregate); err != nil {
		l.fail(at("pipeline", i, "aggregate"), "%v", err)
	} else if p.GeoIPDatabase == "" {
		for _, geo := range []flow.Primitive{flow.SrcHostCountry, flow.DstHostCountry, flow.SrcHostPocode, flow.DstHostPocode, flow.SrcHostCoords, flow.DstHostCoords} {
			if agg.Set.Has(geo) {
				l.fail(at("pipeline", i, "aggregate"), "%s: a GeoIP primitive, which needs the pipeline's geoip_database (pmacct's geoipv2_file; without it pmacct writes \"\" or 0.0 in every record)", geo.Name())
				break
			}
		}
	}
	l.checkSources(i)
	if p.CacheEntries < 0 {
		l.fail(at("pipeline", i, "cache_entries"), "%d: expected 0 (no bound) or more", p.CacheEntries)
	}
	if h, err := cache.ParseHistory(p.History); err != nil {
		l.fail(at("pipeline", i, "history"), "%v", err)
	} else if off := p.HistoryOffset.Duration; off != 0 {
		switch {
		case !h.Enabled():
			l.fail(at("pipeline", i, "history_offset"), "history_offset without history")
		case off < 0 || h.Length > 0 && off >= h.Length || h.Months > 0 && off >= 28*24*time.Hour:
			l.fail(at("pipeline", i, "history_offset"), "%v: expected less than a bin (%s), and not negative", off, p.History)
		case off%time.Second != 0:
			l.fail(at("pipeline", i, "history_offset"), "%v: expected whole seconds", off)
		}
	}
	if err := cache.CheckRoundoff(p.HistoryRoundoff); err != nil {
		l.fail(at("pipeline", i, "history_roundoff"), "%v", err)
	}
	if p.HistoryRoundoff != "" && p.History == "" {
		l.fail(at("pipeline", i, "history_roundoff"), "history_roundoff without history")
	}
	if p.Refresh.Duration != 0 && p.Refresh.Duration < time.Second {
		l.fail(at("pipeline", i, "refresh"), "%v is too short (expected 1s or more; pmacct's default is 60s)", p.Refresh.Duration)
	}
	l.failErr(p.Format.Validate(), at("pipeline", i)...)
	if p.Filter != "" {
		if _, err := filter.Compile(p.Filter); err != nil {
			l.fail(at("pipeline", i, "filter"), "%v", err)
		}
	}
	if _, err := p.PreTagFilters(); err != nil {
		l.failErr(err, at("pipeline", i)...)
	}
}

// checkInput checks input i, of the pipelines named in pipelines.
func (l *loader) checkInput(i int, in Input, pipelines map[string]bool) {
	c := l.c
	path := at("input", i)
	switch in := in.(type) {
	case *PmacctInput:
		l.failErr(in.Configuration.Validate(), path...)
		l.checkRecordPipeline(path, in.Pipeline)
		return
	case *KafkaInput:
		l.failErr(in.Configuration.Validate(), path...)
		l.checkRecordPipeline(path, in.Pipeline)
		return
	case *NetFlowInput:
		l.checkReceive(path, &in.Receive)
		l.failErr(in.Configuration.Validate(), path...)
	case *SFlowInput:
		l.checkReceive(path, &in.Receive)
		l.failErr(in.Sampling.Validate(), path...)
	case *PcapInput:
		l.failErr(in.Configuration.Validate(), path...)
		if in.ExtSamplingRate > 0 {
			for _, name := range in.Pipelines {
				if p := c.Pipeline(name); p != nil && p.SamplingRate > 0 {
					l.fail(append(path, "ext_sampling_rate"), "pipeline %q samples the packets again (sampling_rate); pmacctd refuses both together (expected one of them)", name)
				}
			}
		}
	}
	fi := in.(FlowInput)
	_, pcap := in.(*PcapInput)
	_, isNetFlow := in.(*NetFlowInput)
	if m := fi.Targets().BGPAgentMap; m != "" {
		_, isPcap := fi.(*PcapInput)
		switch {
		case l.c.BGP == nil && l.c.BMP == nil:
			l.fail(append(path, "bgp_agent_map"), "a map of exporters to BGP peers or BMP routers, and there is no [bgp] nor [bmp] table (expected one, pmacct's bgp_daemon or bmp_daemon)")
		case isPcap:
			l.fail(append(path, "bgp_agent_map"), "a capture has no exporter to map (pmacctd's bgp_agent_map by filter is not there yet)")
		default:
			if _, err := routes.LoadAgentMap(m); err != nil {
				l.fail(append(path, "bgp_agent_map"), "%v", err)
			}
		}
	}
	if m := fi.Targets().PreTagMap; m != "" {
		if _, err := pretag.Load(m, PretagOptions(fi)); err != nil {
			l.fail(append(path, "pre_tag_map"), "%v", err)
		}
	}
	if len(fi.Targets().Pipelines) == 0 {
		l.fail(append(path, "pipelines"), "no pipeline takes flows (expected a [[pipeline]] that no pmacct input uses)")
	}
	for _, name := range fi.Targets().Pipelines {
		switch p := c.Pipeline(name); {
		case p == nil:
			l.fail(append(path, "pipelines"), "unknown pipeline %q", name)
		case l.pmacctInput(name) >= 0:
			l.fail(append(path, "pipelines"), "pipeline %q takes the pmacct records of input %q (expected a pipeline of its own for flows)", name, c.Inputs[l.pmacctInput(name)].Common().Name)
		case p.SamplingRate > 0 && !pcap:
			l.fail(append(path, "pipelines"), "pipeline %q samples packets (sampling_rate), and flows from exporters are sampled by them (expected sampling_rate only on pipelines fed by pcap inputs)", name)
		case !isNetFlow && slices.Contains(p.Aggregate, "class"):
			l.fail(append(path, "pipelines"), "pipeline %q aggregates on class, which flowdex takes from NetFlow/IPFIX application ids only (sfacctd and pmacctd take it from nDPI, which flowdex does not have; they refuse it without)", name)
		case fromBGP(p.Aggregate) != "" && c.BGP == nil && c.BMP == nil:
			l.fail(append(path, "pipelines"), "pipeline %q aggregates on %s, which comes from the routers' BGP routes (expected a [bgp] or [bmp] table, pmacct's bgp_daemon or bmp_daemon)", name, fromBGP(p.Aggregate))
		case fromBGP(p.Aggregate) != "" && pcap:
			l.fail(append(path, "pipelines"), "pipeline %q aggregates on %s, and a capture has no exporter whose BGP routes to look it up in (pmacct's bgp_agent_map, which flowdex does not have yet)", name, fromBGP(p.Aggregate))
		case pcap && p.NetworksFile == "":
			if need := fromNetworks(p.Aggregate, p.NetworksMask > 0); need != "" {
				l.fail(append(path, "pipelines"), "pipeline %q aggregates on %s, which a capture gets only from a networks_file: it would be 0 in every record (pmacctd refuses to start too; expected networks_file in the pipeline)", name, need)
			}
		}
	}
}

// fromBGP names the first primitive of aggregate that a BGP route lookup
// gives, "" if none.
func fromBGP(aggregate []string) string {
	agg, err := flow.ParseAggregate(aggregate)
	if err != nil {
		return ""
	}
	for _, p := range []flow.Primitive{flow.ASPath, flow.StdComm, flow.ExtComm, flow.LrgComm, flow.LocalPref, flow.MED,
		flow.SrcASPath, flow.SrcStdComm, flow.SrcExtComm, flow.SrcLrgComm, flow.SrcLocalPref, flow.SrcMED} {
		if agg.Set.Has(p) {
			return p.Name()
		}
	}
	return ""
}

// fromNetworks names the first primitive of aggregate that a packet does not
// carry, only a networks_file gives (AS numbers, nets and masks), "" if none.
func fromNetworks(aggregate []string, mask bool) string {
	agg, err := flow.ParseAggregate(aggregate)
	if err != nil {
		return "" // the pipeline's check says why
	}
	for _, p := range []flow.Primitive{flow.SrcAS, flow.DstAS, flow.SrcNet, flow.DstNet, flow.SrcMask, flow.DstMask} {
		if agg.Set.Has(p) && !(mask && p != flow.SrcAS && p != flow.DstAS) { // networks_mask gives nets and masks
			return p.Name()
		}
	}
	return ""
}

// checkRecordPipeline checks the pipeline of an input of pmacct records.
func (l *loader) checkRecordPipeline(path []string, name string) {
	switch p := l.c.Pipeline(name); {
	case p == nil:
		l.fail(append(path, "pipeline"), "unknown pipeline %q", name)
	case len(p.Aggregate) > 0:
		l.fail(append(path, "pipeline"), "pipeline %q aggregates flows, and pmacct records are aggregated already (expected a pipeline without aggregate)", name)
	}
}

// checkReceive checks how a NetFlow or sFlow input receives.
func (l *loader) checkReceive(path []string, r *Receive) {
	switch {
	case r.Replay != "" && len(r.Listen) > 0:
		l.fail(append(path, "replay"), "give listen or replay, not both")
	case r.Replay == "":
		l.failErr(r.Configuration.Validate(), path...)
	}
	if r.ReplaySpeed < 0 {
		l.fail(append(path, "replay_speed"), "%g is negative (expected 0 for as fast as possible, 1 for recorded speed)", r.ReplaySpeed)
	}
	if r.ReplayDelay.Duration > 0 && r.Replay == "" {
		l.fail(append(path, "replay_delay"), "without replay (it delays a replay's start)")
	}
}

// checkElasticsearch checks an elasticsearch output: the sink's own rules,
// then its retention against its index.
func (l *loader) checkElasticsearch(o *ElasticsearchOutput, path func(string) []string) {
	l.failErr(o.Configuration.Validate(), path("")[:2]...)
	r := o.MaxAge.Duration
	switch {
	case r == 0:
		if l.md.IsDefined(path("retention_interval")...) {
			l.fail(path("retention_interval"), "retention_interval without retention (expected retention, e.g. \"30d\")")
		}
		return
	case r < time.Hour:
		l.fail(path("retention"), "%v is too short (expected 1h or more, e.g. \"30d\")", r)
	case o.Interval.Duration < time.Minute:
		l.fail(path("retention_interval"), "%v is too short (expected 1m or more; default 1h)", o.Interval.Duration)
	}
	if err := retention.Check(o.Index); err != nil {
		l.fail(path("retention"), "cannot apply to index %q: %v", o.Index, err)
	}
}

func (c *Config) outputNames() []string {
	names := make([]string, 0, len(c.Outputs))
	for n := range c.Outputs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// isPort reports whether s is a port number (0 picks a free one).
func isPort(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

// pmacctInput is the index of the pmacct or kafka input feeding pipeline name, or -1.
func (l *loader) pmacctInput(name string) int {
	return slices.IndexFunc(l.c.Inputs, func(in Input) bool {
		p := RecordPipeline(in)
		return p != nil && *p == name
	})
}

// validAllowedHost reports whether h can be an entry of [http]
// allowed_hosts: "*", or a DNS name (letters, digits, '-', '_', dots).
// Addresses need no entry: every IP literal is accepted.
func validAllowedHost(h string) bool {
	if h == "*" {
		return true
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
