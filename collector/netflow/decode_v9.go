package netflow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowdex/flowdex/aggregate/flow"
)

const (
	v9HeaderLen    = 20
	ipfixHeaderLen = 16
	setHeaderLen   = 4
)

// decodeTemplated decodes a NetFlow v9 or IPFIX datagram. The sets are
// walked here, to the end of the datagram: the v9 header count is not
// trusted (softflowd counts records, nfacctd and goflow2 stop after that
// many sets). Template and option sets go to goflow2's decoders, flow data
// sets through the compiled templates.
func (d *Decoder) decodeTemplated(st *state, e *exporterState, p []byte, received time.Time, emit func(*flow.Record)) error {
	h := header{version: binary.BigEndian.Uint16(p), timeSecs: d.cfg.TimeSecs}
	var body []byte
	var firstErr error
	if h.version == versionV9 {
		if len(p) < v9HeaderLen {
			return d.malformed(e, errShort)
		}
		h.uptime = binary.BigEndian.Uint32(p[4:])
		h.secs = binary.BigEndian.Uint32(p[8:])
		h.seq = binary.BigEndian.Uint32(p[12:])
		h.domain = binary.BigEndian.Uint32(p[16:])
		body = p[v9HeaderLen:]
	} else {
		if len(p) < ipfixHeaderLen {
			return d.malformed(e, errShort)
		}
		length := int(binary.BigEndian.Uint16(p[2:]))
		h.secs = binary.BigEndian.Uint32(p[4:])
		h.seq = binary.BigEndian.Uint32(p[8:])
		h.domain = binary.BigEndian.Uint32(p[12:])
		switch {
		case length < ipfixHeaderLen:
			return d.malformed(e, fmt.Errorf("IPFIX message length %d", length))
		case length > len(p):
			firstErr = fmt.Errorf("%w: IPFIX message length %d, %d octets received", errTruncated, length, len(p))
			body = p[ipfixHeaderLen:]
		default:
			body = p[ipfixHeaderLen:length]
		}
	}

	base := &st.base
	*base = flow.Record{}
	base.PeerSrcIP = e.addr
	base.TimestampArrival = received.UnixMicro()
	base.TimestampExport = int64(h.secs) * 1e6
	base.ExportProtoSeqno = h.seq
	base.ExportProtoSysID = h.domain
	base.ExportProtoVersion = h.version
	base.Flows = 1

	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	for len(body) >= setHeaderLen {
		id := binary.BigEndian.Uint16(body)
		length := int(binary.BigEndian.Uint16(body[2:]))
		if length < setHeaderLen {
			keep(fmt.Errorf("set %d: length %d", id, length))
			break
		}
		if length > len(body) {
			keep(fmt.Errorf("%w: set %d of length %d, %d octets left", errTruncated, id, length, len(body)))
			break
		}
		set := body[setHeaderLen:length]
		body = body[length:]

		switch {
		case id >= firstDataSet:
			t := e.template(templateKey{h.version, h.domain, id})
			switch {
			case t == nil:
				e.entry.TemplateMisses.Add(1)
			case t.options:
				if err := d.optionsDataSet(e, t, &h, set); err != nil {
					keep(fmt.Errorf("options data set %d: %w", id, err))
				}
				e = d.kept(e)
			default:
				if err := d.dataSet(st, e, t, &h, set, emit); err != nil {
					keep(fmt.Errorf("data set %d: %w", id, err))
				}
			}
		case h.version == versionV9 && id <= v9OptionsTemplateSet,
			h.version == versionIPFIX && (id == ipfixTemplateSet || id == ipfixOptionsTemplateSet):
			if err := d.templateSet(e, &h, id, set); err != nil {
				keep(fmt.Errorf("template set %d: %w", id, err))
			}
			e = d.kept(e) // the templates of this set serve the sets after it
		default:
			d.counters.unknownSets.Add(1)
		}
	}
	// Fewer than 4 octets left: padding, which v9 exporters put after the
	// last set; nothing could be in it.
	if firstErr != nil {
		return d.malformed(e, firstErr)
	}
	return nil
}

func (d *Decoder) malformed(e *exporterState, err error) error {
	return &DecodeError{Exporter: e.addr, Err: err}
}

// dataSet emits the records of a flow data set.
func (d *Decoder) dataSet(st *state, e *exporterState, t *template, h *header, set []byte, emit func(*flow.Record)) error {
	var smp samplingCache
	var n uint64
	defer func() { d.counters.records.Add(n) }()

	if t.fixed {
		v := view{offs: t.offs, lens: t.lens}
		for len(set) >= t.size {
			v.rec = set[:t.size]
			set = set[t.size:]
			d.fillRecord(st, e, t, &v, h, &smp)
			emit(&st.rec)
			n++
		}
		return nil // what is left is padding
	}

	// Variable-length fields: lay each record out first. Templates of up to
	// len(st.offs) fields do it on the state's scratch space.
	offs, lens := st.offs[:], st.lens[:]
	if len(t.fields) > len(offs) {
		offs, lens = make([]int, len(t.fields)), make([]int, len(t.fields))
	}
	v := view{offs: offs[:len(t.fields)], lens: lens[:len(t.fields)]}
	for len(set) >= t.size {
		size := t.layout(set, v.offs, v.lens)
		if size < 0 {
			return errRecordOverrun
		}
		v.rec = set[:size]
		set = set[size:]
		d.fillRecord(st, e, t, &v, h, &smp)
		emit(&st.rec)
		n++
	}
	return nil
}

var errRecordOverrun = errors.New("record overruns its set")

func (d *Decoder) fillRecord(st *state, e *exporterState, t *template, v *view, h *header, smp *samplingCache) {
	custom := len(t.plan.customs) > 0
	r := st.reset(custom)
	t.plan.fill(r, v, h)
	if t.plan.appID >= 0 && !t.plan.event {
		// nfacctd classifies traffic only, by the application's name
		// learnt from option data; "unknown" otherwise
		if k, ok := appKey(v.field(t.plan.appID)); ok {
			if n := e.appName(h.domain, k); n != 0 {
				r.Class = n
			}
		}
	}
	if custom {
		if mis := t.plan.fillCustom(r, v); mis != (customMisfit{}) {
			d.counters.customShort.Add(uint64(mis.short))
			d.counters.customCut.Add(uint64(mis.cut))
		}
	}
	r.SamplingRate = smp.rate(e, &t.plan, v, h.domain)
}

// samplingCache remembers the sampling rates looked up for one data set, so
// that records do not take the exporter's lock one by one.
type samplingCache struct {
	id                  uint64
	idRate, defaultRate uint32
	haveID, haveDefault bool
}

// rate returns a record's sampling rate in nfacctd's order
// (NF_sampling_rate_handler): the configured override; the rate of the
// record's sampler id (IE 48/302) from option data; the record's own
// interval (IE 34, 50 winning); option data without sampler id.
func (c *samplingCache) rate(e *exporterState, p *plan, v *view, domain uint32) uint32 {
	if e.override != 0 {
		return e.override
	}
	switch {
	case p.samplerID >= 0:
		id, _ := uintBE(v.field(p.samplerID))
		if !c.haveID || c.id != id {
			c.idRate, _ = e.samplingRate(domain, id)
			c.id, c.haveID = id, true
		}
		return c.idRate
	case p.interval >= 0 || p.randInterval >= 0:
		var rate uint64
		if p.interval >= 0 {
			rate, _ = uintBE(v.field(p.interval))
		}
		if p.randInterval >= 0 {
			if r, ok := uintBE(v.field(p.randInterval)); ok {
				rate = r
			}
		}
		return uint32(rate)
	}
	if !c.haveDefault {
		c.defaultRate, _ = e.samplingRate(domain, 0)
		c.haveDefault = true
	}
	return c.defaultRate
}

// optionsDataSet reads option data records with goflow2 and keeps the
// sampling rates they announce.
func (d *Decoder) optionsDataSet(e *exporterState, t *template, h *header, set []byte) error {
	records, err := goflow.DecodeOptionsDataSet(h.version, bytes.NewBuffer(set), t.scopes(), t.optionFields())
	d.counters.optionRecords.Add(uint64(len(records)))
	for i := range records {
		d.samplingOption(e, h, &records[i])
		d.appOption(e, h, &records[i])
	}
	return err
}

// appOption keeps the application name of an option data record, as nfacctd
// 1.7.7 does: applicationId (95) of 2, 3 or 5 octets, the first the
// classification engine, and a name in applicationName (96), its first 31
// octets up to a zero one; system scope makes it the exporter's, else the
// domain's.
func (d *Decoder) appOption(e *exporterState, h *header, r *goflow.OptionsDataRecord) {
	var id, name []byte
	for _, v := range r.OptionsValues {
		b, _ := v.Value.([]byte)
		switch {
		case v.PenProvided:
		case v.Type == ieApplicationID:
			id = b
		case v.Type == ieApplicationName:
			name = b
		}
	}
	key, ok := appKey(id)
	if !ok || len(name) == 0 {
		return
	}
	name = name[:min(len(name), 31)]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	k := samplerKey{domain: h.domain, id: key}
	for _, s := range r.ScopesValues {
		if !s.PenProvided && s.Type == scopeSystem {
			k = samplerKey{global: true, id: key}
			break
		}
	}
	kept := d.keep(e)
	if kept == nil {
		return
	}
	if flow.Labels() >= maxAppNames {
		d.samplerRefused(kept, samplerOverBytes, k) // the names of exporters' applications are never forgotten
		return
	}
	if res := kept.setAppName(k, flow.LabelID(string(name))); res != samplerKept {
		d.samplerRefused(kept, res, k)
	}
}

// maxAppNames bounds the names (and labels) the process keeps.
const maxAppNames = 1 << 16

// appKey reads an application id of 2, 3 or 5 octets, as nfacctd 1.7.7
// takes them: the octets after the engine's (4 octets, NBAR2's usual
// size, it refuses; so does flowdex).
func appKey(b []byte) (uint64, bool) {
	switch len(b) {
	case 2, 3, 5:
		var v uint64
		for _, c := range b[1:] {
			v = v<<8 | uint64(c)
		}
		return v, true
	}
	return 0, false
}

// samplingOption keeps the sampling rate of an option data record, as
// nfacctd does (src/nfacctd.c, options): a record is about sampling if it
// has a sampler id (48), or an interval (34), packet interval (305) or
// sampling size (309). Its rate is IE 34, or IE 50, or (305+306)/305, or
// 310/309; system scope makes it exporter-wide, else it is the domain's.
func (d *Decoder) samplingOption(e *exporterState, h *header, r *goflow.OptionsDataRecord) {
	if !hasOption(r, ieSamplerID) && !hasOption(r, ieSamplingInterval) &&
		!hasOption(r, ieSamplingPacketInterval) && !hasOption(r, ieSamplingSize) {
		return
	}
	k := samplerKey{domain: h.domain}
	for _, s := range r.ScopesValues {
		if !s.PenProvided && s.Type == scopeSystem {
			k = samplerKey{global: true}
			break
		}
	}
	if !k.global {
		if v, ok := optionUint(r, ieTemplateID); ok {
			k.id = v // nfacctd keys a template-scoped rate by the template id
		}
	}
	if v, ok := optionUint(r, ieSamplerID); ok {
		k.id = v
	} else if v, ok := optionUint(r, ieSelectorID); ok {
		k.id = v
	}

	var rate uint64
	if v, ok := optionUint(r, ieSamplingInterval); ok {
		rate = v
	}
	if v, ok := optionUint(r, ieSamplerRandomInterval); ok {
		rate = v
	} else if interval, ok := optionUint(r, ieSamplingPacketInterval); ok && hasOption(r, ieSamplingPacketSpace) {
		space, _ := optionUint(r, ieSamplingPacketSpace)
		if interval != 0 {
			rate = (interval + space) / interval
		}
	} else if size, ok := optionUint(r, ieSamplingSize); ok && hasOption(r, ieSamplingPopulation) {
		population, _ := optionUint(r, ieSamplingPopulation)
		if size != 0 {
			rate = population / size
		}
	}
	kept := d.keep(e)
	if kept == nil {
		return
	}
	if r := kept.setSamplingRate(k, uint32(rate)); r != samplerKept {
		d.samplerRefused(kept, r, k)
	}
}

// samplerRefused counts a sampling rate the bounds refused, and says so once
// a minute per exporter.
func (d *Decoder) samplerRefused(e *exporterState, r samplerResult, k samplerKey) {
	d.counters.samplersOverLimit.Add(1)
	if ok, n := e.log.Allow(); ok {
		why := "the exporter has too many sampler ids"
		if r == samplerOverBytes {
			why = "the template store is full"
		}
		d.logger.Warn("sampling rate refused: "+why, "exporter", e.addr, "domain", k.domain, "sampler", k.id,
			"max_samplers", e.store.maxSamplers, "exporter_bytes", e.storeBytes(), "store_bytes", e.store.used.Load(),
			"refused", d.counters.samplersOverLimit.Load(), "suppressed_since_last", n)
	}
}

// optionValue returns the first value of an IANA element in an option
// record, scopes first (nfacctd reads the first occurrence in options).
func optionValue(r *goflow.OptionsDataRecord, ie uint16) ([]byte, bool) {
	for _, values := range [2][]goflow.DataField{r.ScopesValues, r.OptionsValues} {
		for _, f := range values {
			if f.Type == ie && !f.PenProvided {
				b, _ := f.Value.([]byte)
				return b, true
			}
		}
	}
	return nil, false
}

func hasOption(r *goflow.OptionsDataRecord, ie uint16) bool {
	_, ok := optionValue(r, ie)
	return ok
}

func optionUint(r *goflow.OptionsDataRecord, ie uint16) (uint64, bool) {
	b, ok := optionValue(r, ie)
	if !ok {
		return 0, false
	}
	return uintBE(b)
}

// templateSet splits a template or options template set into its records
// and hands each to goflow2's decoder. Splitting first lets IPFIX
// withdrawals (4 octets, which goflow2 misreads in options template sets)
// and padding through, and bounds what goflow2 allocates for a lying field
// count by the set's real length.
func (d *Decoder) templateSet(e *exporterState, h *header, id uint16, set []byte) error {
	options := id == v9OptionsTemplateSet || id == ipfixOptionsTemplateSet
	for len(set) >= 4 {
		tid := binary.BigEndian.Uint16(set)
		count := int(binary.BigEndian.Uint16(set[2:]))
		if h.version == versionIPFIX && count == 0 {
			// Withdrawal (RFC 7011 8.1), or padding when tid is 0.
			d.withdraw(e, h, tid, options)
			set = set[4:]
			continue
		}
		size, err := templateRecordSize(h.version, id, set)
		if err != nil {
			return err
		}
		rec := set[:size]
		set = set[size:]
		// exporters resend their templates every few seconds: an unchanged one
		// is not decoded and compiled again
		if t := e.template(templateKey{h.version, h.domain, tid}); t != nil && t.options == options && bytes.Equal(t.raw, rec) {
			d.counters.tplRefreshed.Add(1)
			continue
		}

		var records []any
		buf := bytes.NewBuffer(rec)
		switch id {
		case v9TemplateSet, ipfixTemplateSet:
			rs, err := goflow.DecodeTemplateSet(h.version, buf)
			if err != nil {
				return err
			}
			for _, r := range rs {
				records = append(records, r)
			}
		case v9OptionsTemplateSet:
			rs, err := goflow.DecodeNFv9OptionsTemplateSet(buf)
			if err != nil {
				return err
			}
			for _, r := range rs {
				records = append(records, r)
			}
		default:
			rs, err := goflow.DecodeIPFIXOptionsTemplateSet(buf)
			if err != nil {
				return err
			}
			for _, r := range rs {
				records = append(records, r)
			}
		}
		for _, r := range records {
			d.addGoflowTemplate(e, h.version, h.domain, tid, r, rec)
		}
	}
	return nil
}

// templateRecordSize returns the length of the template record at the start
// of set.
func templateRecordSize(version, id uint16, set []byte) (int, error) {
	var size, fields int
	switch id {
	case v9OptionsTemplateSet:
		if len(set) < 6 {
			return 0, errTemplateOverrun
		}
		size = 6 + int(binary.BigEndian.Uint16(set[2:])) + int(binary.BigEndian.Uint16(set[4:]))
		if size > len(set) {
			return 0, errTemplateOverrun
		}
		return size, nil
	case ipfixOptionsTemplateSet:
		size, fields = 6, int(binary.BigEndian.Uint16(set[2:]))
	default:
		size, fields = 4, int(binary.BigEndian.Uint16(set[2:]))
	}
	for range fields {
		if size+4 > len(set) {
			return 0, errTemplateOverrun
		}
		if version == versionIPFIX && set[size]&0x80 != 0 {
			size += 4 // enterprise number
		}
		size += 4
	}
	if size > len(set) {
		return 0, errTemplateOverrun
	}
	return size, nil
}

var errTemplateOverrun = errors.New("template record overruns its set")

// withdraw applies an IPFIX template withdrawal record.
func (d *Decoder) withdraw(e *exporterState, h *header, tid uint16, options bool) {
	var n int
	switch {
	case tid >= firstDataSet:
		if e.withdrawOne(templateKey{h.version, h.domain, tid}) {
			n = 1
		}
	case tid == ipfixTemplateSet && !options, tid == ipfixOptionsTemplateSet && options:
		n = e.withdrawAll(h.version, h.domain, options)
	default:
		return // padding
	}
	d.counters.tplWithdrawn.Add(uint64(n))
	d.logger.Debug("IPFIX template withdrawal", "exporter", e.addr, "domain", h.domain,
		"template", tid, "removed", n)
}

// addGoflowTemplate stores a template record decoded by goflow2, refusing
// those that cannot be used.
// raw is the template record as it came, to recognise it when it is resent
// (nil when unknown).
func (d *Decoder) addGoflowTemplate(e *exporterState, version uint16, domain uint32, id uint16, record any, raw []byte) {
	if r, ok := record.(goflow.TemplateRecord); ok && len(r.Fields) == 0 && version == versionIPFIX {
		// A withdrawal, when goflow2 decoded the set (reference path).
		d.withdraw(e, &header{version: version, domain: domain}, id, false)
		return
	}
	k := templateKey{version, domain, id}
	t, err := newTemplate(k, record, d.cfg.compileOptions())
	if err == nil {
		t.raw = bytes.Clone(raw)
	}
	if err != nil {
		d.counters.tplRefused.Add(1)
		if ok, n := e.log.Allow(); ok {
			d.logger.Warn("template refused", "exporter", e.addr, "version", version,
				"domain", domain, "template", id, "error", err, "suppressed_since_last", n)
		}
		return
	}
	if k := d.keep(e); k != nil {
		e = k
	}
	switch e.addTemplate(t) {
	case tplAdded:
		d.counters.tplAdded.Add(1)
		d.logger.Debug("template added", "exporter", e.addr, "version", version,
			"domain", domain, "template", id, "options", t.options, "fields", len(t.fields))
	case tplRefreshed:
		d.counters.tplRefreshed.Add(1)
	case tplOverLimit:
		d.counters.tplOverLimit.Add(1)
		if ok, n := e.log.Allow(); ok {
			d.logger.Warn("template refused: the exporter has too many", "exporter", e.addr, "version", version,
				"domain", domain, "template", id, "max_templates", e.store.maxTemplates, "suppressed_since_last", n)
		}
	case tplOverBytes:
		d.counters.tplOverBytes.Add(1)
		if ok, n := e.log.Allow(); ok {
			d.logger.Warn("template refused: the template store is full", "exporter", e.addr, "version", version,
				"domain", domain, "template", id, "fields", len(t.fields), "template_bytes", t.cost,
				"exporter_bytes", e.storeBytes(), "store_bytes", e.store.used.Load(),
				"templates_max_bytes_per_exporter", e.store.maxExporterBytes, "templates_max_bytes", e.store.maxBytes,
				"suppressed_since_last", n)
		}
	}
}
