package netflow

import (
	"errors"
	"slices"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"
)

// Set ids of template sets.
const (
	v9TemplateSet           = 0
	v9OptionsTemplateSet    = 1
	ipfixTemplateSet        = 2
	ipfixOptionsTemplateSet = 3
	firstDataSet            = 256

	varLength     = 0xFFFF // IPFIX variable-length field
	enterpriseBit = 0x8000
)

// template is a data or options template, with its record layout and, for
// data templates, the compiled extraction plan.
type template struct {
	key     templateKey
	options bool
	// fields is the record layout: for options templates the scope fields
	// then the option fields. Types have no enterprise bit.
	fields []goflow.Field
	nScope int // options templates: fields[:nScope] are the scopes

	fixed bool  // no variable-length field
	size  int   // record length when fixed, else the minimum length
	offs  []int // fixed templates: offset of each field in a record
	lens  []int // fixed templates: length of each field
	plan  plan  // data templates

	raw []byte // the template record as received, nil when unknown

	cost int64 // memory(), charged to the exporter while stored
}

var (
	errTemplateID   = errors.New("template id below 256")
	errZeroTemplate = errors.New("template with zero record length")
)

// newTemplate builds a template from a record decoded by goflow2
// (TemplateRecord, NFv9OptionsTemplateRecord or IPFIXOptionsTemplateRecord).
func newTemplate(k templateKey, record any, o compileOptions) (*template, error) {
	if k.id < firstDataSet {
		return nil, errTemplateID
	}
	t := &template{key: k}
	switch r := record.(type) {
	case goflow.TemplateRecord:
		t.fields = normalize(r.Fields)
	case goflow.NFv9OptionsTemplateRecord:
		t.options = true
		t.fields = normalize(append(slices.Clip(r.Scopes), r.Options...))
		t.nScope = len(r.Scopes)
	case goflow.IPFIXOptionsTemplateRecord:
		t.options = true
		t.fields = normalize(append(slices.Clip(r.Scopes), r.Options...))
		t.nScope = len(r.Scopes)
	default:
		return nil, errors.New("unknown template record type")
	}
	t.fixed = true
	for _, f := range t.fields {
		if f.Length == varLength {
			t.fixed = false
			t.size++ // at least the length octet
			continue
		}
		t.size += int(f.Length)
	}
	// goflow2 v2.2.6 loops forever on a data set whose template has a zero
	// record length; nothing could be read with it anyway.
	if t.fixed && t.size == 0 {
		return nil, errZeroTemplate
	}
	if t.fixed {
		t.offs = make([]int, len(t.fields))
		t.lens = make([]int, len(t.fields))
		off := 0
		for i, f := range t.fields {
			t.offs[i], t.lens[i] = off, int(f.Length)
			off += int(f.Length)
		}
	}
	if !t.options {
		t.plan = compile(k.version, t.fields, o)
		t.plan.flowsetID = k.id
	}
	return t, nil
}

// normalize copies fields, without the enterprise bit that goflow2 leaves in
// the types of IPFIX options templates.
func normalize(fields []goflow.Field) []goflow.Field {
	out := make([]goflow.Field, len(fields))
	for i, f := range fields {
		if f.PenProvided {
			f.Type &^= enterpriseBit
		} else {
			f.Pen = 0
		}
		out[i] = f
	}
	return out
}

func (t *template) scopes() []goflow.Field       { return t.fields[:t.nScope:t.nScope] }
func (t *template) optionFields() []goflow.Field { return t.fields[t.nScope:] }

func (t *template) sameLayout(o *template) bool {
	return t.options == o.options && t.nScope == o.nScope && slices.Equal(t.fields, o.fields)
}

// layout finds the offset and length of every field of the record at the
// start of b, for templates with variable-length fields. It returns the
// record length, or -1 when the record does not fit in b.
func (t *template) layout(b []byte, offs, lens []int) int {
	off := 0
	for i, f := range t.fields {
		n := int(f.Length)
		if f.Length == varLength {
			if off >= len(b) {
				return -1
			}
			n = int(b[off])
			off++
			if n == 255 {
				if off+2 > len(b) {
					return -1
				}
				n = int(b[off])<<8 | int(b[off+1])
				off += 2
			}
		}
		if off+n > len(b) {
			return -1
		}
		offs[i], lens[i] = off, n
		off += n
	}
	return off
}
