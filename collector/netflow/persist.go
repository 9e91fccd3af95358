package netflow

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

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
// TemplatesFile it does nothing. It streams: one exporter's list of
// template pointers is the most it holds, not a copy of the store and its
// JSON (which took 2.2 GB for a store of 4096 large templates).
func (d *Decoder) Save() error {
	path := d.cfg.TemplatesFile
	if path == "" {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("netflow: templates: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := d.write(tmp); err != nil {
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

// write writes the file's JSON (fileFormat) to w, one template or sampler
// a line, sorted so that files diff well.
func (d *Decoder) write(w io.Writer) error {
	var exporters []*exporterState
	d.exporters.Each(func(entry *exporter.Entry) {
		if e, ok := entry.State().(*exporterState); ok {
			exporters = append(exporters, e)
		}
	})
	slices.SortFunc(exporters, func(a, b *exporterState) int { return a.addr.Compare(b.addr) })

	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "{\"format\": %d,\n\"templates\": [\n", fileFormatVersion)
	var (
		templates []*template // one exporter's; templates are never changed once stored
		line      []byte      // one template's or sampler's JSON, reused
		sep       string
	)
	for _, e := range exporters {
		e.mu.RLock()
		templates = templates[:0]
		for _, t := range e.templates {
			templates = append(templates, t)
		}
		e.mu.RUnlock()
		slices.SortFunc(templates, func(a, b *template) int {
			return cmp.Or(cmp.Compare(a.key.version, b.key.version), cmp.Compare(a.key.domain, b.key.domain),
				cmp.Compare(a.key.id, b.key.id))
		})
		for _, t := range templates {
			line = appendTemplate(append(line[:0], sep...), e.addr, t)
			sep = ",\n"
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
	}
	bw.WriteString("],\n\"samplers\": [\n")
	sep = ""
	var samplers []fileSampler
	for _, e := range exporters {
		e.mu.RLock()
		samplers = samplers[:0]
		for k, rate := range e.samplers {
			samplers = append(samplers, fileSampler{Exporter: e.addr, Domain: k.domain, Global: k.global, ID: k.id, Rate: rate})
		}
		e.mu.RUnlock()
		slices.SortFunc(samplers, func(a, b fileSampler) int {
			return cmp.Or(cmp.Compare(a.Domain, b.Domain), compareBool(a.Global, b.Global), cmp.Compare(a.ID, b.ID))
		})
		for _, fs := range samplers {
			line = appendSampler(append(line[:0], sep...), fs)
			sep = ",\n"
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
	}
	bw.WriteString("\n]}\n")
	return bw.Flush()
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

// appendTemplate appends t of exporter as a fileTemplate's JSON; by hand,
// for a save that allocates nothing per template.
func appendTemplate(b []byte, exporter netip.Addr, t *template) []byte {
	b = append(b, `{"exporter":"`...)
	b = exporter.AppendTo(b)
	b = append(b, `","version":`...)
	b = strconv.AppendUint(b, uint64(t.key.version), 10)
	b = append(b, `,"domain":`...)
	b = strconv.AppendUint(b, uint64(t.key.domain), 10)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, uint64(t.key.id), 10)
	if t.options {
		b = append(b, `,"options":true`...)
	}
	if scopes := t.scopes(); len(scopes) > 0 {
		b = appendFields(append(b, `,"scopes":`...), scopes)
	}
	b = appendFields(append(b, `,"fields":`...), t.optionFields())
	return append(b, '}')
}

func appendFields(b []byte, fields []goflow.Field) []byte {
	b = append(b, '[')
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":`...)
		b = strconv.AppendUint(b, uint64(f.Type), 10)
		b = append(b, `,"length":`...)
		b = strconv.AppendUint(b, uint64(f.Length), 10)
		if f.Pen != 0 {
			b = append(b, `,"pen":`...)
			b = strconv.AppendUint(b, uint64(f.Pen), 10)
		}
		if f.PenProvided {
			b = append(b, `,"enterprise":true`...)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendSampler(b []byte, s fileSampler) []byte {
	b = append(b, `{"exporter":"`...)
	b = s.Exporter.AppendTo(b)
	b = append(b, `","domain":`...)
	b = strconv.AppendUint(b, uint64(s.Domain), 10)
	if s.Global {
		b = append(b, `,"global":true`...)
	}
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, s.ID, 10)
	b = append(b, `,"rate":`...)
	b = strconv.AppendUint(b, uint64(s.Rate), 10)
	return append(b, '}')
}

func fromFile(fields []fileField) []goflow.Field {
	out := make([]goflow.Field, len(fields))
	for i, f := range fields {
		out[i] = goflow.Field{Type: f.Type, Length: f.Length, Pen: f.PEN, PenProvided: f.Enterprise}
	}
	return out
}

// Load reads TemplatesFile into a decoder made with DeferLoad, which may be
// decoding already: the templates and sampling rates it learnt from the
// exporters meanwhile are newer than the file's and stay. A missing file is
// a first start.
func (d *Decoder) Load() error {
	if d.cfg.TemplatesFile == "" {
		return nil
	}
	return d.load(d.cfg.TemplatesFile)
}

// load reads the file at path, streaming: one template at a time, never the
// whole file (one at the default bounds is 97 MB).
func (d *Decoder) load(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netflow: templates: %w", err)
	}
	defer f.Close()
	start := time.Now()
	templates, samplers, err := d.read(bufio.NewReaderSize(f, 64<<10))
	if err != nil {
		return fmt.Errorf("netflow: templates: %s: %w", path, err)
	}
	d.logger.Info("templates loaded", "file", path, "templates", templates, "samplers", samplers,
		"duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// read reads a file's JSON (fileFormat) from r, the format first, and keeps
// what it holds; it returns how many templates and samplers it read.
func (d *Decoder) read(r io.Reader) (templates, samplers int, err error) {
	dec := json.NewDecoder(r)
	delim := func(want json.Delim) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok != want {
			return fmt.Errorf("found %v where %v was expected", tok, want)
		}
		return nil
	}
	if err := delim('{'); err != nil {
		return 0, 0, err
	}
	format := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, err
		}
		key, _ := tok.(string)
		if key == "format" {
			if err := dec.Decode(&format); err != nil {
				return 0, 0, err
			}
			continue
		}
		if format != fileFormatVersion {
			return 0, 0, fmt.Errorf("unknown format %d", format)
		}
		switch key {
		case "templates", "samplers":
			if err := delim('['); err != nil {
				return 0, 0, err
			}
			for dec.More() {
				var err error
				if key == "templates" {
					var ft fileTemplate
					if err = dec.Decode(&ft); err == nil {
						err = d.loadTemplate(ft, templates)
					}
					templates++
				} else {
					var fs fileSampler
					if err = dec.Decode(&fs); err == nil {
						err = d.loadSampler(fs)
					}
					samplers++
				}
				if err != nil {
					return 0, 0, err
				}
			}
			if err := delim(']'); err != nil {
				return 0, 0, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, 0, err
			}
		}
	}
	if format != fileFormatVersion {
		return 0, 0, fmt.Errorf("unknown format %d", format)
	}
	return templates, samplers, delim('}')
}

// loadTemplate keeps template i of the file, unless its exporter sent one
// with the same key since the start; the bounds apply as to received ones
// (a file from a build without them, or with other bounds).
func (d *Decoder) loadTemplate(ft fileTemplate, i int) error {
	if !ft.Exporter.IsValid() {
		return fmt.Errorf("template %d: no exporter", i)
	}
	if ft.Version != versionV9 && ft.Version != versionIPFIX {
		return fmt.Errorf("template %d: version %d", i, ft.Version)
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
	t, err := newTemplate(templateKey{ft.Version, ft.Domain, ft.ID}, record, d.cfg.compileOptions())
	if err != nil {
		return fmt.Errorf("template %d (exporter %s, id %d): %w", i, ft.Exporter, ft.ID, err)
	}
	e := d.lookup(ft.Exporter.Unmap(), d.exporters.Get(ft.Exporter))
	defer d.release(e)
	into := e
	if k := d.keep(e); k != nil {
		into = k
	}
	switch into.loadTemplate(t) {
	case tplOverLimit:
		d.counters.tplOverLimit.Add(1)
	case tplOverBytes:
		d.counters.tplOverBytes.Add(1)
	case tplAdded:
		d.counters.tplLoaded.Add(1)
	}
	return nil
}

// loadSampler keeps a sampling rate of the file, unless its exporter sent
// one for the same sampler since the start.
func (d *Decoder) loadSampler(fs fileSampler) error {
	if !fs.Exporter.IsValid() {
		return errors.New("sampler without exporter")
	}
	k := samplerKey{domain: fs.Domain, global: fs.Global, id: fs.ID}
	if fs.Global {
		k.domain = 0
	}
	e := d.lookup(fs.Exporter.Unmap(), d.exporters.Get(fs.Exporter))
	defer d.release(e)
	if kept := d.keep(e); kept != nil {
		if r := kept.loadSamplingRate(k, fs.Rate); r != samplerKept {
			d.samplerRefused(kept, r, k)
		}
	}
	return nil
}
