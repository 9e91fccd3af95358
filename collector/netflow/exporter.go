package netflow

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/collector/exporter"
)

// exporterState is what the decoder keeps about one exporter address, in
// its entry of the input's exporter table: templates and sampling rates,
// keyed like nfacctd does (address without port, version, source id /
// observation domain, template id). An exporter that keeps nothing yet gets
// a pooled stand-in for each datagram.
type exporterState struct {
	addr     netip.Addr
	entry    *exporter.Entry // its entry in the table (Other past the bound)
	override uint32          // configured sampling rate, 0 = none
	store    *store          // the decoder's bounds; nil in a stand-in, which keeps nothing

	mu        sync.RWMutex
	templates map[templateKey]*template
	samplers  map[samplerKey]uint32
	apps      map[samplerKey]uint32 // application ids (IE 95) to their names' flow.LabelID, from option data
	bytes     int64                 // estimated memory of templates and samplers, charged to store

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

func newExporter(addr netip.Addr, entry *exporter.Entry, override uint32, st *store) *exporterState {
	return &exporterState{
		addr:      addr,
		entry:     entry,
		override:  override,
		store:     st,
		log:       &ratelog.Limiter{Every: warnInterval},
		templates: make(map[templateKey]*template),
		samplers:  make(map[samplerKey]uint32),
		apps:      make(map[samplerKey]uint32),
	}
}

// store holds the decoder's bounds on what its exporters keep, and the
// bytes they keep in all.
type store struct {
	maxTemplates, maxSamplers  int   // per exporter
	maxExporterBytes, maxBytes int64 // per exporter, all exporters
	used                       atomic.Int64
}

// charge accounts delta more bytes to e (under e.mu), or reports that
// either bound refuses them. Less is always accepted.
func (e *exporterState) charge(delta int64) bool {
	if delta > 0 {
		if e.bytes+delta > e.store.maxExporterBytes {
			return false
		}
		for {
			used := e.store.used.Load()
			if used+delta > e.store.maxBytes {
				return false
			}
			if e.store.used.CompareAndSwap(used, used+delta) {
				break
			}
		}
	} else {
		e.store.used.Add(delta)
	}
	e.bytes += delta
	return true
}

// storeBytes is what e keeps, as charged.
func (e *exporterState) storeBytes() int64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.bytes
}

// samplerCost is the memory of one sampling rate in the map, as measured
// (TestStoreEstimates): key and value, the map's control bytes and its
// growth slack.
const samplerCost = 64

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

// appName returns the flow.LabelID of an application id's name, learnt
// from the option data of the domain, else of the exporter; 0 if unknown.
func (e *exporterState) appName(domain uint32, id uint64) uint32 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if n, ok := e.apps[samplerKey{domain: domain, id: id}]; ok {
		return n
	}
	return e.apps[samplerKey{global: true, id: id}]
}

// setAppName keeps an application's name under the sampling rates' bounds.
func (e *exporterState) setAppName(k samplerKey, name uint32) samplerResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.apps[k]; !ok {
		if len(e.apps) >= e.store.maxSamplers {
			return samplerOverLimit
		}
		if !e.charge(samplerCost) {
			return samplerOverBytes
		}
	}
	e.apps[k] = name
	return samplerKept
}

// Sampling rate outcomes, for the counters.
type samplerResult uint8

const (
	samplerKept samplerResult = iota
	samplerOverLimit
	samplerOverBytes
)

// setSamplingRate keeps a rate; e is one Decoder.keep returned (a stand-in
// has no map to keep it in). A new sampler id past maxSamplers or the byte
// bounds is refused; a known one always takes its new rate.
func (e *exporterState) setSamplingRate(k samplerKey, rate uint32) samplerResult {
	return e.putSamplingRate(k, rate, true)
}

// loadSamplingRate keeps a rate read from the templates file, unless the
// exporter's own is known already (Load runs while datagrams are decoded).
func (e *exporterState) loadSamplingRate(k samplerKey, rate uint32) samplerResult {
	return e.putSamplingRate(k, rate, false)
}

func (e *exporterState) putSamplingRate(k samplerKey, rate uint32, replace bool) samplerResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.samplers[k]; ok && !replace {
		return samplerKept
	} else if !ok {
		if len(e.samplers) >= e.store.maxSamplers {
			return samplerOverLimit
		}
		if !e.charge(samplerCost) {
			return samplerOverBytes
		}
	}
	e.samplers[k] = rate
	return samplerKept
}

// Template outcomes, for the counters.
type addResult uint8

const (
	tplAdded addResult = iota
	tplRefreshed
	tplRefused
	tplIgnored   // padding that looks like a template record
	tplOverLimit // a new template past maxTemplates
	tplOverBytes // past the store's byte bounds
)

// addTemplate stores a template, replacing one with the same key. A
// replacement the byte bounds refuse removes the template it replaces: data
// read with the old layout would be garbage.
func (e *exporterState) addTemplate(t *template) addResult {
	return e.putTemplate(t, true)
}

// loadTemplate stores a template read from the templates file, unless the
// exporter sent one with its key already (Load runs while datagrams are
// decoded): tplRefreshed then.
func (e *exporterState) loadTemplate(t *template) addResult {
	return e.putTemplate(t, false)
}

func (e *exporterState) putTemplate(t *template, replace bool) addResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.templates[t.key]
	if old != nil && !replace {
		return tplRefreshed
	}
	if old == nil && len(e.templates) >= e.store.maxTemplates {
		return tplOverLimit
	}
	t.cost = t.memory()
	delta := t.cost
	if old != nil {
		delta -= old.cost
	}
	if !e.charge(delta) {
		if old != nil {
			delete(e.templates, t.key)
			e.charge(-old.cost)
		}
		return tplOverBytes
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
	t, ok := e.templates[k]
	if !ok {
		return false
	}
	delete(e.templates, k)
	e.charge(-t.cost)
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
			e.charge(-t.cost)
			n++
		}
	}
	return n
}

// templateEntryCost is a template's share of the map beyond its own memory:
// key and pointer, control byte, growth slack.
const templateEntryCost = 64

// memory estimates what t keeps in memory, in bytes: the struct, its field
// list, offsets and lengths, compiled plan and raw record, and its map
// entry. TestStoreEstimates checks it against the heap.
func (t *template) memory() int64 {
	return int64(unsafe.Sizeof(*t)) + templateEntryCost +
		int64(cap(t.fields))*int64(unsafe.Sizeof(goflow.Field{})) +
		int64(cap(t.offs)+cap(t.lens))*int64(unsafe.Sizeof(0)) +
		int64(cap(t.plan.ops))*int64(unsafe.Sizeof(op{})) +
		int64(cap(t.raw))
}
