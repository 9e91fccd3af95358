package config

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/flowdex/flowdex/aggregate/spelling"
)

// Load reads and checks a TOML configuration file.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// rawConfig is the first pass over a file: each table kept for a decoding
// of its own, by type for inputs and outputs.
type rawConfig struct {
	AggregatePrimitives any                       `toml:"aggregate_primitives"` // checked by decode
	Log                 toml.Primitive            `toml:"log"`
	HTTP                toml.Primitive            `toml:"http"`
	BGP                 toml.Primitive            `toml:"bgp"`
	BMP                 toml.Primitive            `toml:"bmp"`
	Input               []toml.Primitive          `toml:"input"`
	Pipeline            []toml.Primitive          `toml:"pipeline"`
	Output              map[string]toml.Primitive `toml:"output"`
}

// topLevel are the keys and tables of a configuration.
var topLevel = []string{"aggregate_primitives", "log", "http", "bgp", "bmp", "input", "pipeline", "output"}

// loader reads one file, collecting every mistake.
type loader struct {
	c    *Config
	md   toml.MetaData
	src  []byte
	tree map[string]any // the file as maps: which keys each table has
	errs Errors
	// broken: an input or output of no known type is missing, and checking
	// the rest would report the consequences as mistakes of their own
	broken bool
	// undecoded are the tables the decoder stopped in: their keys after the
	// mistake were not read, so no check speaks of them
	undecoded map[string]bool
}

// Parse reads and checks a TOML configuration; name is used in messages and to
// resolve relative paths. Every mistake found is reported (an Errors of
// *Error), each at its line and column.
func Parse(name string, src []byte) (*Config, error) {
	var raw rawConfig
	md, err := toml.Decode(string(src), &raw)
	if err != nil {
		return nil, decodeError(name, src, err) // the file cannot be read further
	}
	l := &loader{c: &Config{File: name, where: newTOMLLocator(src)}, md: md, src: src}
	if _, err := toml.Decode(string(src), &l.tree); err != nil {
		return nil, decodeError(name, src, err)
	}
	for _, k := range slices.Sorted(maps.Keys(l.tree)) {
		if !slices.Contains(topLevel, k) {
			hint := "expected one of " + strings.Join(topLevel, ", ")
			if best := spelling.Closest(k, topLevel); best != "" {
				hint = fmt.Sprintf("did you mean %q?", best)
			}
			l.fail([]string{k}, "unknown table (%s)", hint)
		}
	}
	if v, ok := l.tree["aggregate_primitives"]; ok {
		if s, ok := v.(string); ok {
			l.c.AggregatePrimitives = s
		} else {
			l.fail([]string{"aggregate_primitives"}, "%v is no file name (expected the path of pmacct's aggregate_primitives file, in quotes)", v)
		}
	}
	l.decode(raw.Log, &l.c.Log, []string{"log"}, l.tree["log"])
	l.decode(raw.HTTP, &l.c.HTTP, []string{"http"}, l.tree["http"])
	if t, ok := l.tree["bgp"]; ok {
		l.c.BGP = newBGP()
		l.decode(raw.BGP, l.c.BGP, []string{"bgp"}, t)
	}
	if t, ok := l.tree["bmp"]; ok {
		l.c.BMP = newBMP()
		l.decode(raw.BMP, l.c.BMP, []string{"bmp"}, t)
	}
	rawInputs, _ := l.tree["input"].([]map[string]any)
	for i, p := range raw.Input {
		l.input(i, p, rawInputs[i])
	}
	rawPipelines, _ := l.tree["pipeline"].([]map[string]any)
	for i, p := range raw.Pipeline {
		pl := newPipeline()
		l.decode(p, &pl, at("pipeline", i), rawPipelines[i])
		l.c.Pipelines = append(l.c.Pipelines, pl)
	}
	rawOutputs, _ := l.tree["output"].(map[string]any)
	for _, n := range slices.Sorted(maps.Keys(raw.Output)) {
		l.output(n, raw.Output[n], rawOutputs[n])
	}
	if !l.broken {
		l.c.derive(&md)
		l.check()
	}
	if len(l.errs) > 0 {
		slices.SortStableFunc(l.errs, func(a, b error) int {
			var ea, eb *Error
			if !errors.As(a, &ea) || !errors.As(b, &eb) {
				return 0
			}
			if ea.Line != eb.Line {
				return ea.Line - eb.Line
			}
			return ea.Col - eb.Col
		})
		return nil, l.errs
	}
	return l.c, nil
}

// input decodes [[input]] number i into the configuration of its type.
func (l *loader) input(i int, p toml.Primitive, raw map[string]any) {
	path := at("input", i)
	in, ok := typed(l, p, path, "input", inputTypes, newInput)
	if !ok {
		return
	}
	l.decode(p, in, path, raw)
	if r := ReceiveOf(in); r != nil && r.Replay != "" {
		if _, listen := tableKey(raw, "listen"); !listen {
			r.Listen = nil // a replay listens nowhere by default
		}
	}
	l.c.Inputs = append(l.c.Inputs, in)
}

// output decodes [output.name] into the configuration of its type.
func (l *loader) output(name string, p toml.Primitive, raw any) {
	path := []string{"output", name}
	o, ok := typed(l, p, path, "output", outputTypes, newOutput)
	if !ok {
		return
	}
	l.decode(p, o, path, raw)
	if l.c.Outputs == nil {
		l.c.Outputs = map[string]Output{}
	}
	l.c.Outputs[name] = o
}

// typed reads the type of the input or output table p at path and returns a
// configuration of that type with its defaults (made by newConfig, nil for a
// type unknown); false when there is none, the mistake recorded.
func typed[T comparable](l *loader, p toml.Primitive, path []string, kind, types string, newConfig func(string) T) (T, bool) {
	var zero T
	var common struct {
		Type string `toml:"type"`
	}
	err := l.md.PrimitiveDecode(p, &common)
	v := zero
	switch {
	case err != nil:
		l.decodeFailed(err, path)
	case common.Type == "":
		l.fail(append(slices.Clone(path), "type"), "missing type (expected %s)", types)
	default:
		if v = newConfig(common.Type); v == zero {
			l.fail(append(slices.Clone(path), "type"), "unknown %s type %q (expected %s)", kind, common.Type, types)
		}
	}
	if v == zero {
		l.broken = true // left out: what names it would be a mistake
		return zero, false
	}
	return v, true
}

// decode decodes the table p, whose keys are those of raw, into v, reporting
// keys v has no field for.
func (l *loader) decode(p toml.Primitive, v any, path []string, raw any) {
	err := l.md.PrimitiveDecode(p, v)
	l.unknown(raw, reflect.TypeOf(v), path) // the decoder's mistake aside, known or not
	if err != nil {
		l.decodeFailed(err, path)
	}
}

// unknown reports the keys of the table raw that type t (a struct, or a
// pointer to one) has no field for, and looks into the tables t knows.
func (l *loader) unknown(raw any, t reflect.Type, path []string) {
	table, ok := raw.(map[string]any)
	if !ok {
		return
	}
	fields := keysOf(t)
	for _, k := range slices.Sorted(maps.Keys(table)) {
		ft, ok := tableKey(fields, k)
		if !ok {
			l.fail(append(slices.Clone(path), k), "%s", l.unknownHint(path, k, fields))
			continue
		}
		switch v := table[k].(type) {
		case map[string]any:
			l.unknown(v, ft, append(slices.Clone(path), k))
		case []map[string]any:
			if ft.Kind() == reflect.Slice {
				for i, sub := range v {
					l.unknown(sub, ft.Elem(), append(slices.Clone(path), k+"#"+strconv.Itoa(i)))
				}
			}
		}
	}
}

// tableKey looks k up in table as the decoder matches keys to fields: the
// same name, else the same but for case.
func tableKey[V any](table map[string]V, k string) (V, bool) {
	if v, ok := table[k]; ok {
		return v, true
	}
	for name, v := range table {
		if strings.EqualFold(name, k) {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// keysOf returns the TOML keys of the fields of struct type t (through
// pointers and embedded structs) and their types; fields decoded from text
// have no keys of their own.
func keysOf(t reflect.Type) map[string]reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	keys := map[string]reflect.Type{}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return keys
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && name == "":
			maps.Copy(keys, keysOf(f.Type))
		case name == "":
			keys[strings.ToLower(f.Name)] = f.Type
		default:
			keys[name] = f.Type
		}
	}
	return keys
}

// crossHints explain a key of another type of input or output, where the
// usual mistake has a usual fix.
var crossHints = map[string]string{
	"ext_sampling_rate": "ext_sampling_rate is for pcap inputs (expected [[input.sampling]] to set an exporter's rate)",
	"templates_file":    "templates are a NetFlow v9/IPFIX matter (expected no templates_file on an sflow input)",
	"retention":         "retention deletes Elasticsearch indices (expected it on an elasticsearch output)",
}

// moved are keys that belong to another table now.
var moved = map[string]string{
	"output.timestamp_fields": "timestamp_fields is a key of [[pipeline]] now: a record's time is its pipeline's (expected it in the [[pipeline]] tables writing to this output)",
}

// unknownHint says what an unknown key is, or might be: the known key it is
// closest to, or the type of input or output that has it.
func (l *loader) unknownHint(path []string, k string, fields map[string]reflect.Type) string {
	kind := ""
	if len(path) > 0 {
		kind, _, _ = strings.Cut(path[0], "#")
	}
	var others []string // the types of this kind of table that have k
	switch {
	case kind == "input" && len(path) == 1:
		for _, typ := range []string{"pmacct", "kafka", "netflow", "sflow", "pcap"} {
			if _, ok := keysOf(reflect.TypeOf(newInput(typ)))[k]; ok {
				others = append(others, typ)
			}
		}
	case kind == "output" && len(path) == 2:
		for _, typ := range []string{"elasticsearch", "print"} {
			if _, ok := keysOf(reflect.TypeOf(newOutput(typ)))[k]; ok {
				others = append(others, typ)
			}
		}
	}
	if h, ok := moved[kind+"."+k]; ok {
		return h
	}
	if len(others) > 0 {
		if h, ok := crossHints[k]; ok {
			return h
		}
		return fmt.Sprintf("a key of %s %ss, not of this one's type", strings.Join(others, " and "), kind)
	}
	if best := spelling.Closest(k, slices.Sorted(maps.Keys(fields))); best != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", best)
	}
	return "unknown key (expected one of " + strings.Join(slices.Sorted(maps.Keys(fields)), ", ") + ")"
}

var decodeErrorRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// decodeFailed records an error of the TOML decoder in the table at path,
// placed where the decoder says, the key named with the table's index.
func (l *loader) decodeFailed(err error, path []string) {
	if l.undecoded == nil {
		l.undecoded = map[string]bool{}
	}
	l.undecoded[strings.Join(path, ".")] = true
	var e *Error
	if !errors.As(decodeError(l.c.File, l.src, err), &e) {
		return
	}
	if table, _, indexed := strings.Cut(path[0], "#"); indexed {
		// the decoder's "input.format" is "input#2.format" here
		e.Msg = strings.Replace(e.Msg, table+".", path[0]+".", 1)
	}
	l.errs = append(l.errs, e)
}

// decodeError places an error of the TOML decoder at its line and column.
func decodeError(name string, src []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.LastKey != "" {
			msg = pe.LastKey + ": " + msg
		}
		if pe.Usage != "" {
			msg += " (" + strings.TrimSpace(strings.SplitN(pe.Usage, "\n", 2)[0]) + ")"
		}
		return &Error{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Msg: msg}
	}
	// type mismatches come as plain errors: "toml: line N (last key "a.b"): ..."
	if m := decodeErrorRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		col := 0
		if l, c := newTOMLLocator(src).find(strings.Split(m[2], ".")...); l == line {
			col = c
		}
		return &Error{File: name, Line: line, Col: col, Msg: m[2] + ": " + typeMismatch(m[3])}
	}
	return &Error{File: name, Msg: err.Error()}
}

var typeMismatchRE = regexp.MustCompile(`^incompatible types: TOML value has type (\S+); destination has type (\S+)$`)

// tomlKinds name the decoder's types as a configuration's reader knows them.
var tomlKinds = map[string]string{
	"string": "a string", "int64": "a number", "integer": "a number", "float64": "a number", "float": "a number",
	"bool": "true or false", "boolean": "true or false", "[]interface": "a list", "[]any": "a list", "slice": "a list",
	"map[string]interface": "a table", "map[string]any": "a table", "struct": "a table", "map": "a table",
}

// typeMismatch rewrites the decoder's "incompatible types" message as what
// was given and what was expected.
func typeMismatch(msg string) string {
	m := typeMismatchRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	name := func(t string) string {
		t = strings.TrimSuffix(t, "{}")
		if k, ok := tomlKinds[t]; ok {
			return k
		}
		return t
	}
	return "got " + name(m[1]) + ", expected " + name(m[2])
}

// fail records a mistake at a key of the file.
func (l *loader) fail(path []string, format string, args ...any) {
	if !l.inUndecoded(path) {
		l.errs = append(l.errs, l.c.ErrorsAt(fmt.Errorf(format, args...), path...)...)
	}
}

// failErr records a component's refusal of a table at path: a
// setting.KeyError in err names the key.
func (l *loader) failErr(err error, path ...string) {
	if !l.inUndecoded(path) {
		l.errs = append(l.errs, l.c.ErrorsAt(err, path...)...)
	}
}

// inUndecoded tells whether path is in a table the decoder stopped in.
func (l *loader) inUndecoded(path []string) bool {
	for n := 1; n <= len(path); n++ {
		if l.undecoded[strings.Join(path[:n], ".")] {
			return true
		}
	}
	return false
}

// at is the path of the i-th table of the array table.
func at(table string, i int, keys ...string) []string {
	return append([]string{table + "#" + strconv.Itoa(i)}, keys...)
}
