package netflow

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowdex/flowdex/collector/exporter"
)

// fileFormat is the layout of TemplatesFile. Sampling rates learnt from
// option data are kept too: without them records decoded after a restart
// would carry no rate until the exporter sends its options again.
type fileFormat struct {
	Format    int            `json:"format"`
	Templates []fileTemplate `json:"templates"`
	Samplers  []fileSampler  `json:"samplers,omitempty"`
}

const fileFormatVersion = 1

type fileTemplate struct {
	Exporter netip.Addr  `json:"exporter"`
	Version  uint16      `json:"version"`
	Domain   uint32      `json:"domain"`
	ID       uint16      `json:"id"`
	Options  bool        `json:"options,omitempty"`
	Scopes   []fileField `json:"scopes,omitempty"`
	Fields   []fileField `json:"fields"`
}

type fileField struct {
	Type   uint16 `json:"type"`
	Length uint16 `json:"length"`
	PEN    uint32 `json:"pen,omitempty"`
	// Enterprise is set for enterprise-specific fields (PEN may be 0).
	Enterprise bool `json:"enterprise,omitempty"`
}

type fileSampler struct {
	Exporter netip.Addr `json:"exporter"`
	Domain   uint32     `json:"domain"`
	Global   bool       `json:"global,omitempty"`
	ID       uint64     `json:"id"`
	Rate     uint32     `json:"rate"`
}

// Save writes the templates and sampling rates of all exporters to
// TemplatesFile, atomically (temporary file, then rename). Without a
// TemplatesFile it does nothing.
func (d *Decoder) Save() error {
	path := d.cfg.TemplatesFile
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(d.snapshot(), "", "\t")
	if err != nil {
		return fmt.Errorf("netflow: templates: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("netflow: templates: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("netflow: templates: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("netflow: templates: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("netflow: templates: writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("netflow: templates: %w", err)
	}
	return nil
}

// snapshot returns the state to save, sorted so that files diff well.
func (d *Decoder) snapshot() fileFormat {
	f := fileFormat{Format: fileFormatVersion, Templates: []fileTemplate{}}
	var exporters []*exporterState
	d.exporters.Each(func(entry *exporter.Entry) {
		if e, ok := entry.State().(*exporterState); ok {
			exporters = append(exporters, e)
		}
	})
	for _, e := range exporters {
		e.mu.RLock()
		for k, t := range e.templates {
			f.Templates = append(f.Templates, fileTemplate{
				Exporter: e.addr, Version: k.version, Domain: k.domain, ID: k.id,
				Options: t.options,
				Scopes:  toFile(t.scopes()),
				Fields:  toFile(t.optionFields()),
			})
		}
		for k, rate := range e.samplers {
			f.Samplers = append(f.Samplers, fileSampler{
				Exporter: e.addr, Domain: k.domain, Global: k.global, ID: k.id, Rate: rate,
			})
		}
		e.mu.RUnlock()
	}
	slices.SortFunc(f.Templates, func(a, b fileTemplate) int {
		return cmp.Or(a.Exporter.Compare(b.Exporter), cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.ID, b.ID))
	})
	slices.SortFunc(f.Samplers, func(a, b fileSampler) int {
		return cmp.Or(a.Exporter.Compare(b.Exporter), cmp.Compare(a.Domain, b.Domain),
			compareBool(a.Global, b.Global), cmp.Compare(a.ID, b.ID))
	})
	return f
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func toFile(fields []goflow.Field) []fileField {
	if len(fields) == 0 {
		return nil
	}
	out := make([]fileField, len(fields))
	for i, f := range fields {
		out[i] = fileField{Type: f.Type, Length: f.Length, PEN: f.Pen, Enterprise: f.PenProvided}
	}
	return out
}

func fromFile(fields []fileField) []goflow.Field {
	out := make([]goflow.Field, len(fields))
	for i, f := range fields {
		out[i] = goflow.Field{Type: f.Type, Length: f.Length, Pen: f.PEN, PenProvided: f.Enterprise}
	}
	return out
}

// load reads TemplatesFile. A missing file is a first start.
func (d *Decoder) load(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netflow: templates: %w", err)
	}
	var f fileFormat
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("netflow: templates: %s: %w", path, err)
	}
	if f.Format != fileFormatVersion {
		return fmt.Errorf("netflow: templates: %s: unknown format %d", path, f.Format)
	}
	for i, ft := range f.Templates {
		if !ft.Exporter.IsValid() {
			return fmt.Errorf("netflow: templates: %s: template %d: no exporter", path, i)
		}
		var record any
		switch {
		case !ft.Options:
			record = goflow.TemplateRecord{TemplateId: ft.ID, FieldCount: uint16(len(ft.Fields)), Fields: fromFile(ft.Fields)}
		case ft.Version == versionV9:
			record = goflow.NFv9OptionsTemplateRecord{TemplateId: ft.ID, Scopes: fromFile(ft.Scopes), Options: fromFile(ft.Fields)}
		default:
			record = goflow.IPFIXOptionsTemplateRecord{TemplateId: ft.ID, Scopes: fromFile(ft.Scopes), Options: fromFile(ft.Fields)}
		}
		if ft.Version != versionV9 && ft.Version != versionIPFIX {
			return fmt.Errorf("netflow: templates: %s: template %d: version %d", path, i, ft.Version)
		}
		t, err := newTemplate(templateKey{ft.Version, ft.Domain, ft.ID}, record, d.cfg.UseIPNextHop)
		if err != nil {
			return fmt.Errorf("netflow: templates: %s: template %d (exporter %s, id %d): %w",
				path, i, ft.Exporter, ft.ID, err)
		}
		e := d.lookup(ft.Exporter.Unmap(), d.exporters.Get(ft.Exporter))
		into := e
		if k := d.keep(e); k != nil {
			into = k
		}
		// refusals: a file from a build without the bounds, or other bounds
		switch into.addTemplate(t) {
		case tplOverLimit:
			d.counters.tplOverLimit.Add(1)
		case tplOverBytes:
			d.counters.tplOverBytes.Add(1)
		default:
			d.counters.tplLoaded.Add(1)
		}
		d.release(e)
	}
	for _, s := range f.Samplers {
		if !s.Exporter.IsValid() {
			return fmt.Errorf("netflow: templates: %s: sampler without exporter", path)
		}
		k := samplerKey{domain: s.Domain, global: s.Global, id: s.ID}
		if s.Global {
			k.domain = 0
		}
		e := d.lookup(s.Exporter.Unmap(), d.exporters.Get(s.Exporter))
		if kept := d.keep(e); kept != nil {
			if r := kept.setSamplingRate(k, s.Rate); r != samplerKept {
				d.samplerRefused(kept, r, k)
			}
		}
		d.release(e)
	}
	d.logger.Info("templates loaded", "file", path, "templates", len(f.Templates), "samplers", len(f.Samplers))
	return nil
}
