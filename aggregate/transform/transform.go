// Package transform runs pmacct-to-elasticsearch (p2es) transformations on
// documents: ordered {Conditions, Actions} pairs that add, look up and delete
// fields. See README.md for the language and for every difference from p2es.
//
// Parse checks a whole Transformations list at load time and compiles it; Apply
// then runs it on one document at a time without allocating on the common paths.
package transform

import (
	"strconv"
	"strings"
	"sync"

	"github.com/flowdex/flowdex/aggregate/document"
)

// Program is a compiled Transformations list. It is immutable: one Program may
// be applied to different documents from many goroutines at once.
type Program struct {
	trs []transformation
}

type transformation struct {
	cond    node
	actions []action
}

// node is a condition: a group (AND/OR of children) or one criterion.
type node struct {
	kind nodeKind
	kids []node
	crit *criterion
}

type nodeKind uint8

const (
	nodeAnd nodeKind = iota
	nodeOr
	nodeCrit
)

type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opIn
	opNotIn
)

var opNames = map[string]op{"=": opEq, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe, "in": opIn, "notin": opNotIn}

const opList = "= != < <= > >= in notin"

type criterion struct {
	field string
	op    op
	val   constant   // every operator but in and notin
	set   *constants // in and notin
}

// constants is the list of an in/notin criterion. Long lists of strings and of
// integers are also indexed, so membership does not scan them.
type constants struct {
	list    []constant
	strs    map[string]struct{} // every cString, when indexed
	ints    map[int64]struct{}  // every integral cNumber, when indexed
	others  []constant          // the rest, scanned, when indexed
	indexed bool
}

const indexFrom = 8

func newConstants(vals []any) *constants {
	cs := &constants{list: make([]constant, len(vals))}
	for i, v := range vals {
		cs.list[i] = makeConstant(v)
	}
	if len(cs.list) < indexFrom {
		return cs
	}
	cs.indexed = true
	cs.strs = map[string]struct{}{}
	cs.ints = map[int64]struct{}{}
	for _, c := range cs.list {
		switch {
		case c.kind == cString:
			cs.strs[c.s] = struct{}{}
		case c.kind == cNumber && c.n.isInt:
			cs.ints[c.n.i] = struct{}{}
		default:
			cs.others = append(cs.others, c)
		}
	}
	return cs
}

func (cs *constants) contains(o *operand) bool {
	if !cs.indexed {
		for i := range cs.list {
			if o.equal(&cs.list[i]) {
				return true
			}
		}
		return false
	}
	switch {
	case o.v.Kind == document.String:
		_, ok := cs.strs[string(o.v.Bytes)]
		return ok
	case o.isNum:
		if i, ok := exactInt(o.n); ok {
			if _, ok := cs.ints[i]; ok {
				return true
			}
		}
	}
	for i := range cs.others {
		if o.equal(&cs.others[i]) {
			return true
		}
	}
	return false
}

// exactInt returns n as an int64 when it is one exactly.
func exactInt(n num) (int64, bool) {
	if n.isInt {
		return n.i, true
	}
	if n.f >= -(1<<63) && n.f < 1<<63 && n.f == float64(int64(n.f)) {
		return int64(n.f), true
	}
	return 0, false
}

type actionKind uint8

const (
	addField actionKind = iota
	addFieldLookup
	delField
)

type action struct {
	kind actionKind
	name string

	value template // AddField

	lookupField string // AddFieldLookup
	table       map[string]template
	star        template
	hasStar     bool
}

// Error is a problem found by Parse. Transformation counts from 1 (the first
// transformation of the list is #1) and is 0 for problems with the list itself;
// Path is 0-based inside the transformation, as in Conditions[0][1] or
// Actions[2].LookupTable["36040"].
type Error struct {
	Source         string // the name given to Parse, e.g. a file name
	Line, Col      int    // where in the data given to Parse (1-based); 0 when unknown
	Transformation int
	Path           string
	Reason         string
	Err            error // the cause, when there is one (reading a LookupTableFile)
}

// Unwrap returns the cause, so that errors.Is(err, fs.ErrNotExist) works.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Col) + ": ")
	}
	if e.Transformation > 0 {
		b.WriteString("transformation #")
		b.WriteString(strconv.Itoa(e.Transformation))
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Len returns the number of transformations.
func (p *Program) Len() int {
	if p == nil {
		return 0
	}
	return len(p.trs)
}

// Apply runs every transformation on doc, in order: when a transformation's
// conditions hold for doc as it is at that point, its actions run in order. A nil
// Program does nothing.
func (p *Program) Apply(doc *document.Document) {
	if p == nil {
		return
	}
	for i := range p.trs {
		tr := &p.trs[i]
		if !tr.cond.eval(doc) {
			continue
		}
		for j := range tr.actions {
			tr.actions[j].run(doc)
		}
	}
}

func (n *node) eval(doc *document.Document) bool {
	switch n.kind {
	case nodeAnd:
		for i := range n.kids {
			if !n.kids[i].eval(doc) {
				return false
			}
		}
		return true
	case nodeOr:
		for i := range n.kids {
			if n.kids[i].eval(doc) {
				return true
			}
		}
		return false
	}
	return n.crit.eval(doc)
}

// eval is false whenever the field is missing, whatever the operator.
func (c *criterion) eval(doc *document.Document) bool {
	v, ok := doc.Get(c.field)
	if !ok {
		return false
	}
	o := newOperand(v)
	switch c.op {
	case opEq:
		return o.equal(&c.val)
	case opNe:
		return !o.equal(&c.val)
	case opIn:
		return c.set.contains(&o)
	case opNotIn:
		return !c.set.contains(&o)
	}
	r, ok := o.compare(&c.val)
	if !ok {
		return false
	}
	switch c.op {
	case opLt:
		return r < 0
	case opLe:
		return r <= 0
	case opGt:
		return r > 0
	}
	return r >= 0 // opGe
}

// scratch holds the buffers for macro expansion, so expanding allocates nothing
// once warm.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (a *action) run(doc *document.Document) {
	switch a.kind {
	case addField:
		a.set(doc, &a.value)
	case addFieldLookup:
		v, ok := doc.Get(a.lookupField)
		if !ok {
			// unlike p2es, "*" also covers a missing field, as its docs say
			if a.hasStar && !a.star.empty {
				a.set(doc, &a.star)
			}
			return
		}
		var buf [32]byte
		var key []byte
		switch v.Kind {
		case document.String, document.Number, document.Raw:
			key = v.Bytes
		default:
			key = appendText(buf[:0], v)
		}
		t, found := a.table[string(key)]
		if !found {
			if !a.hasStar {
				return
			}
			t = a.star
		}
		if t.empty {
			return // an empty result leaves the field alone, as in p2es
		}
		a.set(doc, &t)
	case delField:
		doc.Delete(a.name)
	}
}

func (a *action) set(doc *document.Document, t *template) {
	if t.raw != nil {
		doc.SetRaw(a.name, t.raw)
		return
	}
	if !t.macro {
		doc.SetString(a.name, t.s)
		return
	}
	bp := scratch.Get().(*[]byte)
	b := t.expand((*bp)[:0], doc)
	doc.SetStringBytes(a.name, b)
	if cap(b) <= 64<<10 { // do not keep a buffer a huge value grew
		*bp = b[:0]
		scratch.Put(bp)
	}
}
