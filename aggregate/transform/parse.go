package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/aggregate/spelling"
)

// MaxLookupFileSize bounds the size of a LookupTableFile.
const MaxLookupFileSize = 256 << 20

// maxErrors bounds the problems Parse reports at once.
const maxErrors = 25

// Parse checks and compiles a p2es Transformations list given as JSON: the value
// of the "Transformations" key, a list of {"Conditions", "Actions"} objects.
// source names the configuration in messages (a file name, say); a relative
// LookupTableFile is read from baseDir (the current directory when baseDir is "").
//
// Every part of every transformation is checked, and every lookup file read, now:
// all problems found are returned together (errors.Join of *Error values, at
// most 25), and no Program is returned when there is any.
func Parse(data []byte, source string, baseDir string) (*Program, error) {
	return parse(data, source, baseDir, readLookupFile)
}

type parser struct {
	source  string
	data    []byte
	offsets map[string]int64 // where each value starts (decodeTree)
	baseDir string
	read    func(path string) ([]byte, error)
	tr      int // 1-based number of the transformation being compiled
	errs    []error
	dropped int
}

func parse(data []byte, source, baseDir string, read func(string) ([]byte, error)) (*Program, error) {
	p := &parser{source: source, data: data, baseDir: baseDir, read: read}
	tree, offsets, jerr := decodeTree(data)
	if jerr != nil {
		e := p.fail("", "invalid JSON: %s", jerr.msg)
		e.Line, e.Col = setting.LineCol(data, int(jerr.offset))
		return nil, p.err()
	}
	p.offsets = offsets
	list, ok := tree.([]any)
	if !ok {
		p.fail("", "want a list of transformations, got %s", describe(tree))
		return nil, p.err()
	}
	prog := &Program{trs: make([]transformation, 0, len(list))}
	for i, t := range list {
		p.tr = i + 1
		if tr, ok := p.transformation(t); ok {
			prog.trs = append(prog.trs, tr)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return prog, nil
}

// fail records a problem; it returns nil once maxErrors are recorded.
func (p *parser) fail(path, format string, args ...any) *Error {
	if len(p.errs) >= maxErrors {
		p.dropped++
		return nil
	}
	e := &Error{Source: p.source, Transformation: p.tr, Path: path, Reason: fmt.Sprintf(format, args...)}
	if off, ok := p.offsets[strconv.Itoa(p.tr)+"/"+path]; ok && p.tr > 0 {
		e.Line, e.Col = setting.LineCol(p.data, int(off))
	} else if p.tr > 0 && path != "" {
		// a key that is missing: the transformation's object holds it
		if off, ok := p.offsets[strconv.Itoa(p.tr)+"/"]; ok {
			e.Line, e.Col = setting.LineCol(p.data, int(off))
		}
	}
	p.errs = append(p.errs, e)
	return e
}

func (p *parser) err() error {
	if p.dropped > 0 {
		p.tr = 0
		p.errs = append(p.errs, &Error{Source: p.source, Reason: strconv.Itoa(p.dropped) + " more problems not shown"})
	}
	return errors.Join(p.errs...)
}

func (p *parser) transformation(v any) (transformation, bool) {
	var tr transformation
	obj, ok := v.(*object)
	if !ok {
		p.fail("", `want an object with "Conditions" and "Actions", got %s`, describe(v))
		return tr, false
	}
	n := len(p.errs) + p.dropped
	p.checkKeys("", obj, []string{"Conditions", "Actions"}, nil, nil)
	if c, has := obj.get("Conditions"); has {
		tr.cond = p.condition("Conditions", c)
	}
	if a, has := obj.get("Actions"); has {
		tr.actions = p.actions("Actions", a)
	}
	return tr, len(p.errs)+p.dropped == n
}

// condition compiles a condition node: a list (implicit AND, or an "AND"/"OR"
// group when it starts with that string) or a criterion object.
func (p *parser) condition(path string, v any) node {
	switch t := v.(type) {
	case []any:
		if len(t) == 0 {
			p.fail(path, "empty condition list")
			return node{}
		}
		kind, kids, first := nodeAnd, t, 0
		if s, ok := t[0].(string); ok {
			switch s {
			case "AND":
				kind, kids, first = nodeAnd, t[1:], 1
			case "OR":
				kind, kids, first = nodeOr, t[1:], 1
			default:
				p.fail(index(path, 0), `unknown logical operator %s (want "AND" or "OR", in capitals)`, strconv.Quote(shorten(s)))
				kids, first = t[1:], 1 // still check the rest
			}
			if len(kids) == 0 && (s == "AND" || s == "OR") {
				p.fail(path, "%q group has no conditions", s)
				return node{}
			}
		}
		n := node{kind: kind, kids: make([]node, len(kids))}
		for i, k := range kids {
			n.kids[i] = p.condition(index(path, first+i), k)
		}
		if len(n.kids) == 1 {
			return n.kids[0] // AND and OR of one condition are that condition
		}
		return n
	case *object:
		return p.criterion(path, t)
	case string:
		if t == "AND" || t == "OR" {
			p.fail(path, "a condition must be a list or an object, got %s (a group names its operator in its first element only)", describe(v))
			return node{}
		}
	}
	p.fail(path, "a condition must be a list or an object, got %s", describe(v))
	return node{}
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func (p *parser) criterion(path string, obj *object) node {
	c := &criterion{op: opEq}
	n := node{kind: nodeCrit, crit: c}
	opName, opOK := "=", true
	if ov, has := obj.get("__op__"); has {
		s, ok := ov.(string)
		o, known := opNames[s]
		switch {
		case !ok:
			p.fail(path, `"__op__" must be a string, got %s`, describe(ov))
		case !known:
			p.fail(path, "unknown operator %s (want one of %s)", strconv.Quote(shorten(s)), opList)
		}
		c.op, opName, opOK = o, s, ok && known
	}
	var names []string
	var val any
	for i, k := range obj.keys {
		if k != "__op__" {
			names = append(names, strconv.Quote(shorten(k)))
			c.field, val = k, obj.vals[i]
		}
	}
	switch {
	case len(names) == 0:
		p.fail(path, `field/value pair missing (want {"<field>": <value>}, with "__op__" optional)`)
		return n
	case len(names) > 1:
		if len(names) > 5 {
			names = append(names[:5], "...")
		}
		p.fail(path, "only one field/value pair allowed, found %s", strings.Join(names, ", "))
		return n
	case !opOK:
		return n
	}
	switch c.op {
	case opIn, opNotIn:
		list, ok := val.([]any)
		if !ok {
			p.fail(path, "operator %q needs a list value, got %s", opName, describe(val))
			return n
		}
		c.set = newConstants(list)
	case opLt, opLe, opGt, opGe:
		_, isStr := val.(string)
		_, isNum := val.(json.Number)
		if !isStr && !isNum {
			p.fail(path, "operator %q needs a number or a string value, got %s", opName, describe(val))
			return n
		}
		c.val = makeConstant(val)
	default:
		c.val = makeConstant(val)
	}
	return n
}

func (p *parser) actions(path string, v any) []action {
	list, ok := v.([]any)
	if !ok {
		p.fail(path, "want a list of actions, got %s", describe(v))
		return nil
	}
	acts := make([]action, 0, len(list))
	for i, a := range list {
		if act, ok := p.action(index(path, i), a); ok {
			acts = append(acts, act)
		}
	}
	return acts
}

var actionKeys = map[string][]string{
	"AddField":       {"Type", "Name", "Value"},
	"AddFieldLookup": {"Type", "Name", "LookupFieldName"},
	"DelField":       {"Type", "Name"},
}

func (p *parser) action(path string, v any) (action, bool) {
	var a action
	obj, ok := v.(*object)
	if !ok {
		p.fail(path, `want an object with "Type" and "Name", got %s`, describe(v))
		return a, false
	}
	tv, has := obj.get("Type")
	if !has {
		// without a Type the other keys cannot be judged: say only that
		for _, k := range obj.keys {
			if spelling.Closest(k, []string{"Type"}) != "" {
				p.fail(path, `"Type" is missing (found %q: did you mean "Type"?)`, k)
				return a, false
			}
		}
		p.fail(path, `"Type" is missing`)
		return a, false
	}
	typ, ok := tv.(string)
	if !ok {
		p.fail(path+".Type", "must be a string, got %s", describe(tv))
		return a, false
	}
	required, known := actionKeys[typ]
	if !known {
		hint := ""
		if s := spelling.Closest(typ, []string{"AddField", "AddFieldLookup", "DelField"}); s != "" {
			hint = fmt.Sprintf("; did you mean %q?", s)
		}
		p.fail(path+".Type", "unknown action type %s (want AddField, AddFieldLookup or DelField%s)", strconv.Quote(shorten(typ)), hint)
		return a, false
	}
	n := len(p.errs) + p.dropped
	var optional, oneOf []string
	if typ == "AddFieldLookup" {
		optional = []string{"LookupTable", "LookupTableFile"}
		oneOf = optional
	}
	p.checkKeys(path, obj, required, optional, oneOf)
	if nv, has := obj.get("Name"); has {
		a.name = p.name(path+".Name", nv)
	}
	switch typ {
	case "AddField":
		a.kind = addField
		if vv, has := obj.get("Value"); has {
			switch t := vv.(type) {
			case string:
				a.value = newTemplate(t)
			case []any, *object:
				a.value = newRawTemplate(t)
			case nil:
				p.fail(path+".Value", "must be a string, a list or an object, got null (p2es accepts it, then fails on every record)")
			default:
				p.fail(path+".Value", `must be a string, a list or an object, got %s (p2es accepts it, then fails on every record; write "%s" for a string)`, describe(vv), quoteless(vv))
			}
		}
	case "AddFieldLookup":
		a.kind = addFieldLookup
		if fv, has := obj.get("LookupFieldName"); has {
			a.lookupField = p.name(path+".LookupFieldName", fv)
		}
		if tv, has := obj.get("LookupTable"); has {
			p.table(path+".LookupTable", "", tv, &a)
		}
		if fv, has := obj.get("LookupTableFile"); has {
			p.tableFile(path+".LookupTableFile", fv, &a)
		}
	case "DelField":
		a.kind = delField
	}
	return a, len(p.errs)+p.dropped == n
}

// quoteless renders a number or a boolean as the text of a string.
func quoteless(v any) string {
	if b, ok := v.(bool); ok {
		return strconv.FormatBool(b)
	}
	return shorten(fmt.Sprint(v))
}

func (p *parser) name(path string, v any) string {
	s, ok := v.(string)
	switch {
	case !ok:
		p.fail(path, "must be a string, got %s", describe(v))
	case s == "":
		p.fail(path, "must not be empty")
	}
	return s
}

// table compiles a lookup table; file is the file it came from, or "".
func (p *parser) table(path, file string, v any, a *action) {
	where := func(key string) (string, string) {
		if file == "" {
			return path + "[" + strconv.Quote(shorten(key)) + "]", ""
		}
		return path, fmt.Sprintf("%q: key %q: ", file, shorten(key))
	}
	obj, ok := v.(*object)
	if !ok {
		if file == "" {
			p.fail(path, `must be an object of "<key>": "<value>" pairs, got %s`, describe(v))
		} else {
			p.fail(path, `%q: want a JSON object of "<key>": "<value>" pairs, got %s`, file, describe(v))
		}
		return
	}
	a.table = make(map[string]template, len(obj.keys))
	for i, k := range obj.keys {
		var t template
		switch v := obj.vals[i].(type) {
		case string:
			t = newTemplate(v)
		case []any, *object:
			t = newRawTemplate(v)
		default:
			at, prefix := where(k)
			p.fail(at, `%svalue must be a string (or a list or an object), got %s (use "" to leave the field unset)`, prefix, describe(v))
			continue
		}
		a.table[k] = t
		if k == "*" {
			a.star, a.hasStar = t, true
		}
	}
}

func (p *parser) tableFile(path string, v any, a *action) {
	name, ok := v.(string)
	if !ok || name == "" {
		if ok {
			p.fail(path, "must not be empty")
		} else {
			p.fail(path, "must be a file name, got %s", describe(v))
		}
		return
	}
	file := name
	if !filepath.IsAbs(file) && p.baseDir != "" {
		file = filepath.Join(p.baseDir, file)
	}
	data, err := p.read(file)
	if err != nil {
		if e := p.fail(path, "%v", err); e != nil {
			e.Err = err
		}
		return
	}
	tree, _, jerr := decodeTree(data)
	if jerr != nil {
		p.fail(path, "%q: invalid JSON at %s: %s", file, position(data, jerr.offset), jerr.msg)
		return
	}
	p.table(path, file, tree, a)
}

// readLookupFile reads a regular file of at most MaxLookupFileSize bytes. The
// check comes first, so a FIFO or a device never blocks or floods the load.
func readLookupFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, pathError(name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%q: not a regular file", name)
	}
	if fi.Size() > MaxLookupFileSize {
		return nil, fmt.Errorf("%q: larger than %d bytes", name, MaxLookupFileSize)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, pathError(name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxLookupFileSize+1))
	if err != nil {
		return nil, pathError(name, err)
	}
	if len(data) > MaxLookupFileSize {
		return nil, fmt.Errorf("%q: larger than %d bytes", name, MaxLookupFileSize)
	}
	return data, nil
}

// pathError words a file error as "<name>": <reason>, keeping the error chain.
func pathError(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%q: %w", name, err)
}

// checkKeys reports missing and unknown keys of obj. required must all be
// present; optional may be; of oneOf (a subset of optional) exactly one must be.
// A key that nearly matches a missing one is named in the "missing" message.
func (p *parser) checkKeys(path string, obj *object, required, optional, oneOf []string) {
	known := append(append([]string(nil), required...), optional...)
	isKnown := func(k string) bool {
		for _, w := range known {
			if k == w {
				return true
			}
		}
		return false
	}
	var unknown []string
	for _, k := range obj.keys {
		if !isKnown(k) {
			unknown = append(unknown, k)
		}
	}
	explained := map[string]bool{}
	// near returns an unexplained unknown key close to one of want
	near := func(want ...string) (string, string) {
		for _, u := range unknown {
			if explained[u] {
				continue
			}
			if s := spelling.Closest(u, want); s != "" {
				explained[u] = true
				return u, s
			}
		}
		return "", ""
	}
	for _, r := range required {
		if _, has := obj.get(r); has {
			continue
		}
		if u, s := near(r); u != "" {
			p.fail(path, "%q is missing (found %q: did you mean %q?)", r, u, s)
		} else {
			p.fail(path, "%q is missing", r)
		}
	}
	if len(oneOf) > 0 {
		var present []string
		for _, o := range oneOf {
			if _, has := obj.get(o); has {
				present = append(present, strconv.Quote(o))
			}
		}
		switch {
		case len(present) > 1:
			p.fail(path, "only one of %s allowed", strings.Join(present, " and "))
		case len(present) == 0:
			alts := quoteAll(oneOf, " or ")
			if u, s := near(oneOf...); u != "" {
				p.fail(path, "%s is missing (found %q: did you mean %q?)", alts, u, s)
			} else {
				p.fail(path, "%s is missing", alts)
			}
		}
	}
	var absent []string
	for _, k := range known {
		if _, has := obj.get(k); !has {
			absent = append(absent, k)
		}
	}
	for _, u := range unknown {
		if explained[u] {
			continue
		}
		if s := spelling.Closest(u, absent); s != "" {
			p.fail(path, "unknown key %q (did you mean %q?)", shorten(u), s)
		} else {
			p.fail(path, "unknown key %q (want %s)", shorten(u), quoteAll(known, ", "))
		}
	}
}

func quoteAll(names []string, sep string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, sep)
}
