package netflow

import (
	"net/netip"
	"sync"

	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/collector/exporter"
)

// exporterState is what the decoder keeps about one exporter address, in
// its entry of the input's exporter table: templates and sampling rates,
// keyed like nfacctd does (address without port, version, source id /
// observation domain, template id). An exporter that keeps nothing yet gets
// a pooled stand-in for each datagram.
type exporterState struct {
	addr         netip.Addr
	entry        *exporter.Entry // its entry in the table (Other past the bound)
	override     uint32          // configured sampling rate, 0 = none
	maxTemplates int             // new templates beyond it are refused; 0: none kept

	mu        sync.RWMutex
	templates map[templateKey]*template
	samplers  map[samplerKey]uint32

	log     *ratelog.Limiter // warnings about this exporter; shared by the stand-ins
	standIn bool             // a pooled stand-in for one datagram: nothing is kept in it
}

type templateKey struct {
	version uint16
	domain  uint32
	id      uint16
}

// samplerKey names a sampling rate learnt from option data: per source id /
// observation domain, or for the whole exporter when the option had system
// scope (nfacctd's two status tables).
type samplerKey struct {
	domain uint32
	global bool
	id     uint64
}

func newExporter(addr netip.Addr, entry *exporter.Entry, override uint32, maxTemplates int) *exporterState {
	return &exporterState{
		addr:         addr,
		entry:        entry,
		override:     override,
		maxTemplates: maxTemplates,
		log:          &ratelog.Limiter{Every: warnInterval},
		templates:    make(map[templateKey]*template),
		samplers:     make(map[samplerKey]uint32),
	}
}

func (e *exporterState) template(k templateKey) *template {
	e.mu.RLock()
	t := e.templates[k]
	e.mu.RUnlock()
	return t
}

// samplingRate returns the rate of sampler id in domain, else of the
// exporter-wide sampler id; ok is false when neither is known.
func (e *exporterState) samplingRate(domain uint32, id uint64) (rate uint32, ok bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if rate, ok = e.samplers[samplerKey{domain: domain, id: id}]; ok {
		return rate, true
	}
	rate, ok = e.samplers[samplerKey{global: true, id: id}]
	return rate, ok
}

// setSamplingRate keeps a rate; e is one Decoder.keep returned (a stand-in
// has no map to keep it in).
func (e *exporterState) setSamplingRate(k samplerKey, rate uint32) {
	e.mu.Lock()
	e.samplers[k] = rate
	e.mu.Unlock()
}

// Template outcomes, for the counters.
type addResult uint8

const (
	tplAdded addResult = iota
	tplRefreshed
	tplRefused
	tplIgnored   // padding that looks like a template record
	tplOverLimit // a new template past maxTemplates
)

// addTemplate stores a template, replacing one with the same key.
func (e *exporterState) addTemplate(t *template) addResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.templates[t.key]
	if old == nil && len(e.templates) >= e.maxTemplates {
		return tplOverLimit
	}
	e.templates[t.key] = t
	if old != nil && old.sameLayout(t) {
		return tplRefreshed
	}
	return tplAdded
}

// withdrawOne removes a template (IPFIX withdrawal) and reports whether it
// was known.
func (e *exporterState) withdrawOne(k templateKey) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.templates[k]; !ok {
		return false
	}
	delete(e.templates, k)
	return true
}

// withdrawAll removes all data templates, or all options templates, of a
// domain (IPFIX template id 2 in set 2, 3 in set 3) and returns how many.
func (e *exporterState) withdrawAll(version uint16, domain uint32, options bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for k, t := range e.templates {
		if k.version == version && k.domain == domain && t.options == options {
			delete(e.templates, k)
			n++
		}
	}
	return n
}
