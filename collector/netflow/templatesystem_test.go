package netflow

// The reference path of the tests: goflow2's own message decoder on flowdex's
// template store.

import (
	"net/netip"
	"sync"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"
)

// templateSystem is an exporter's template store seen through goflow2's
// interface, so that goflow2's own message decoder can run on it (the
// reference path of the tests). It applies the same guards as Decode.
type templateSystem struct {
	d    *Decoder
	addr netip.Addr
}

var _ goflow.NetFlowTemplateSystem = templateSystem{}

func (d *Decoder) templateSystem(addr netip.Addr) templateSystem {
	return templateSystem{d: d, addr: addr.Unmap()}
}

// state is the exporter's state, a stand-in while it keeps nothing (given
// back by the caller).
func (ts templateSystem) state() *exporterState {
	return ts.d.lookup(ts.addr, ts.d.exporters.Get(ts.addr))
}

func (ts templateSystem) AddTemplate(version uint16, domain uint32, id uint16, record any) error {
	e := ts.state()
	defer ts.d.release(e)
	ts.d.addGoflowTemplate(e, version, domain, id, record, nil)
	return nil
}

func (ts templateSystem) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	e := ts.state()
	defer ts.d.release(e)
	if t := e.template(templateKey{version, domain, id}); t != nil {
		return goflowOf(t), nil
	}
	return nil, goflow.ErrorTemplateNotFound
}

func (ts templateSystem) RemoveTemplate(version uint16, domain uint32, id uint16) (any, error) {
	e := ts.state()
	defer ts.d.release(e)
	e.mu.Lock()
	defer e.mu.Unlock()
	k := templateKey{version, domain, id}
	if t, ok := e.templates[k]; ok {
		delete(e.templates, k)
		return goflowOf(t), nil
	}
	return nil, goflow.ErrorTemplateNotFound
}

func (ts templateSystem) GetTemplates() goflow.FlowBaseTemplateSet {
	e := ts.state()
	defer ts.d.release(e)
	e.mu.RLock()
	defer e.mu.RUnlock()
	set := make(goflow.FlowBaseTemplateSet, len(e.templates))
	for k, t := range e.templates {
		set[uint64(k.version)<<48|uint64(k.domain)<<16|uint64(k.id)] = goflowOf(t)
	}
	return set
}

// goflowRecords are the templates as goflow2 stores them, made once each.
var goflowRecords sync.Map // *template -> any

func goflowOf(t *template) any {
	if r, ok := goflowRecords.Load(t); ok {
		return r
	}
	r, _ := goflowRecords.LoadOrStore(t, t.goflowRecord())
	return r
}

// goflowRecord rebuilds the template as goflow2 decodes it, from the
// normalised fields, so that a reloaded template equals a received one.
func (t *template) goflowRecord() any {
	switch {
	case !t.options:
		return goflow.TemplateRecord{TemplateId: t.key.id, FieldCount: uint16(len(t.fields)), Fields: t.fields}
	case t.key.version == versionV9:
		return goflow.NFv9OptionsTemplateRecord{
			TemplateId:   t.key.id,
			ScopeLength:  uint16(4 * t.nScope),
			OptionLength: uint16(4 * (len(t.fields) - t.nScope)),
			Scopes:       t.scopes(),
			Options:      t.optionFields(),
		}
	default:
		return goflow.IPFIXOptionsTemplateRecord{
			TemplateId:      t.key.id,
			FieldCount:      uint16(len(t.fields)),
			ScopeFieldCount: uint16(t.nScope),
			Scopes:          t.scopes(),
			Options:         t.optionFields(),
		}
	}
}
