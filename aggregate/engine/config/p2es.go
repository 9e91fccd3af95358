package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/aggregate/spelling"
	"github.com/flowdex/flowdex/collector/pmacct"
	"github.com/flowdex/flowdex/sink/elasticsearch"
)

// P2ES is a pmacct-to-elasticsearch plugin configuration file
// (/etc/p2es/<plugin>.conf), read as p2es reads it: strict JSON, p2es's defaults
// for missing keys.
type P2ES struct {
	File                  string
	PluginName            string
	LogFile               string
	URL                   string
	IndexName             string
	Type                  string
	AuthType              string
	UserName              string
	Password              string
	FlushSize             int
	IndexTemplateFileName string // resolved; "" when not set explicitly
	ReaderThreads         int
	InputFile             string // resolved, macros expanded; "-" is standard input
	InputFormat           string
	Transformations       []byte // the raw JSON list, nil when absent
	Warnings              []string
	where                 *p2esLocator
}

// p2es's own keys; anything else is reported as a warning, since p2es ignores it.
var p2esKeys = []string{"LogFile", "ES_URL", "ES_IndexName", "ES_Type", "ES_AuthType", "ES_UserName",
	"ES_Password", "ES_IndexTemplateFileName", "ES_FlushSize", "ReaderThreads", "InputFile",
	"InputFormat", "Transformations", "CONF_DIR", "PluginName"}

// LoadP2ES reads a p2es plugin configuration file.
func LoadP2ES(path string) (*P2ES, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseP2ES(path, src)
}

// ParseP2ES reads a p2es plugin configuration.
func ParseP2ES(name string, src []byte) (*P2ES, error) {
	fields, order, err := topLevelObject(name, src)
	if err != nil {
		return nil, err
	}
	plugin := strings.TrimSuffix(filepath.Base(name), ".conf")
	p := &P2ES{File: name, PluginName: plugin, URL: "http://localhost:9200", AuthType: "none",
		FlushSize: 5000, ReaderThreads: 2, InputFormat: "json", InputFile: "-"}
	confDir := filepath.Dir(name)
	fail := func(key, format string, args ...any) error {
		e := &Error{File: name, Msg: key + ": " + fmt.Sprintf(format, args...)}
		if f, ok := fields[key]; ok {
			e.Line, e.Col = setting.LineCol(src, f.offset)
		}
		return e
	}
	str := func(key string, dst *string) error {
		f, ok := fields[key]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(f.raw, dst); err != nil {
			return fail(key, "expected a string, found %s", describe(f.raw))
		}
		return nil
	}
	num := func(key string, dst *int) error {
		f, ok := fields[key]
		if !ok {
			return nil
		}
		// p2es passes the value through int(): a number or a string of digits
		var s string
		if json.Unmarshal(f.raw, &s) == nil {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fail(key, "expected an integer, found %s", describe(f.raw))
			}
			*dst = n
			return nil
		}
		var x float64
		if err := json.Unmarshal(f.raw, &x); err != nil {
			return fail(key, "expected an integer, found %s", describe(f.raw))
		}
		*dst = int(x)
		return nil
	}
	for _, e := range []error{
		str("PluginName", &p.PluginName), str("LogFile", &p.LogFile), str("ES_URL", &p.URL),
		str("ES_IndexName", &p.IndexName), str("ES_Type", &p.Type), str("ES_AuthType", &p.AuthType),
		str("ES_UserName", &p.UserName), str("ES_Password", &p.Password),
		str("ES_IndexTemplateFileName", &p.IndexTemplateFileName), str("InputFile", &p.InputFile),
		str("InputFormat", &p.InputFormat), str("CONF_DIR", &confDir),
		num("ES_FlushSize", &p.FlushSize), num("ReaderThreads", &p.ReaderThreads),
	} {
		if e != nil {
			return nil, e
		}
	}
	for _, k := range order {
		if !slices.Contains(p2esKeys, k) {
			line, col := setting.LineCol(src, fields[k].offset)
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s:%d:%d: unknown key %q, ignored as p2es does%s", name, line, col, k, didYouMean(k, p2esKeys)))
		}
	}
	p.URL = strings.TrimSuffix(p.URL, "/")
	shown := elasticsearch.RedactURL(p.URL)
	switch {
	case p.URL == "":
		return nil, fail("ES_URL", "empty (expected an address such as http://localhost:9200)")
	case !strings.Contains(p.URL, "://"):
		return nil, fail("ES_URL", "%q has no scheme (expected http:// or https:// before the host, e.g. \"http://%s\")", shown, shown)
	case !strings.HasPrefix(p.URL, "http://") && !strings.HasPrefix(p.URL, "https://"):
		return nil, fail("ES_URL", "%q is not an http:// or https:// address", shown)
	}
	if p.IndexName == "" {
		msg := "index name not provided (expected e.g. \"netflow-%Y-%m-%d\")"
		if _, given := fields["ES_IndexName"]; !given {
			// a misspelt key is ignored as p2es does: say which one it was
			var unknown []string
			for _, k := range order {
				if !slices.Contains(p2esKeys, k) {
					unknown = append(unknown, k)
				}
			}
			if k := spelling.Closest("ES_IndexName", unknown); k != "" {
				line, col := setting.LineCol(src, fields[k].offset)
				return nil, &Error{File: name, Line: line, Col: col,
					Msg: fmt.Sprintf("ES_IndexName: missing; the file has %q, a misspelling of it? (expected \"ES_IndexName\": \"netflow-%%Y-%%m-%%d\")", k)}
			}
		}
		return nil, fail("ES_IndexName", "%s", msg)
	}
	switch p.AuthType {
	case "none", "basic":
	case "digest":
		return nil, fail("ES_AuthType", "digest authentication is not supported: Elasticsearch accepts basic authentication (use \"basic\")")
	default:
		return nil, fail("ES_AuthType", "unknown %q (expected \"none\" or \"basic\")", p.AuthType)
	}
	if p.AuthType == "basic" && (p.UserName == "" || p.Password == "") {
		return nil, fail("ES_AuthType", "basic authentication needs ES_UserName and ES_Password")
	}
	if p.FlushSize < 0 {
		return nil, fail("ES_FlushSize", "must be 0 or more (0: no limit on documents per request)")
	}
	if p.ReaderThreads <= 0 {
		return nil, fail("ReaderThreads", "must be greater than 0")
	}
	if p.InputFormat != "json" && p.InputFormat != "csv" {
		return nil, fail("InputFormat", "unknown %q (expected \"json\" or \"csv\")", p.InputFormat)
	}
	p.InputFile = p.expandMacros(p.InputFile)
	p.LogFile = p.expandMacros(p.LogFile)
	if p.IndexTemplateFileName != "" && !filepath.IsAbs(p.IndexTemplateFileName) {
		// p2es reads the file from its configuration directory
		p.IndexTemplateFileName = absolute(filepath.Join(confDir, p.IndexTemplateFileName))
	}
	// p2es opens its input and log files relative to the working directory
	if p.InputFile != "-" {
		p.InputFile = absolute(p.InputFile)
	}
	if p.LogFile != "" && p.LogFile != "-" {
		p.LogFile = absolute(p.LogFile)
	}
	if f, ok := fields["Transformations"]; ok {
		if len(bytes.TrimSpace(f.raw)) == 0 || bytes.TrimSpace(f.raw)[0] != '[' {
			return nil, fail("Transformations", "expected a list, found %s", describe(f.raw))
		}
		p.Transformations = f.raw
	}
	p.where = &p2esLocator{src: src, fields: fields}
	return p, nil
}

// expandMacros replaces p2es's $PluginName, $IndexName and $Type.
func (p *P2ES) expandMacros(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	// p2es renders $IndexName with the current local time, as it named its index
	index, err := elasticsearch.Strftime(p.IndexName, time.Now())
	if err != nil {
		index = p.IndexName
	}
	return strings.NewReplacer("$PluginName", p.PluginName, "$IndexName", index, "$Type", p.Type).Replace(s)
}

// Config turns the p2es file into the flowdex configuration that does the same
// work: one pmacct input, one pipeline with the transformations, one
// Elasticsearch output. Its errors found later (by the engine) point at the
// p2es keys they come from.
func (p *P2ES) Config() *Config {
	out := newOutput("elasticsearch").(*ElasticsearchOutput)
	out.URLs = []string{p.URL}
	out.Index = p.IndexName
	out.DocType = p.Type
	out.IndexBodyFile = p.IndexTemplateFileName
	out.FlushDocs = p.FlushSize
	if p.FlushSize == 0 {
		out.FlushDocs = -1 // p2es documents 0 as "no limit"; the bytes limit still applies
	}
	if p.AuthType == "basic" {
		out.Username, out.Password = p.UserName, p.Password
	}
	// p2es (python requests) trusts the CA file REQUESTS_CA_BUNDLE names, its
	// only TLS setting: a migrated setup keeps working
	out.CACert = os.Getenv("REQUESTS_CA_BUNDLE")
	in := newInput("pmacct").(*PmacctInput)
	in.Name, in.File = p.PluginName, p.InputFile
	in.Format, _ = pmacct.ParseFormat(p.InputFormat) // checked: json or csv
	pl := newPipeline()
	pl.Name, pl.Outputs, pl.transformations, pl.transformationsSource = p.PluginName, []string{"es"}, p.Transformations, p.File
	c := &Config{
		File:      p.File,
		Log:       Log{File: p.LogFile},
		Inputs:    []Input{in},
		Pipelines: []Pipeline{pl},
		Outputs:   map[string]Output{"es": out},
		where:     p.where,
	}
	c.derive(nil)
	return c
}

// p2esLocator places the keys of the configuration a p2es file makes at the
// p2es keys they come from.
type p2esLocator struct {
	src    []byte
	fields map[string]jsonField
}

// p2esKeyOf is the p2es key behind a key of the configuration.
var p2esKeyOf = map[string]string{
	"urls": "ES_URL", "index": "ES_IndexName", "doc_type": "ES_Type", "username": "ES_UserName",
	"password": "ES_Password", "index_body_file": "ES_IndexTemplateFileName", "flush_docs": "ES_FlushSize",
	"file": "InputFile", "format": "InputFormat", "transformations": "Transformations",
}

func (l *p2esLocator) find(path ...string) (line, col int) {
	if len(path) == 0 {
		return 0, 0
	}
	f, ok := l.fields[p2esKeyOf[path[len(path)-1]]]
	if !ok {
		return 0, 0
	}
	return setting.LineCol(l.src, f.offset)
}

// name is the p2es key behind path, or path as the TOML would name it for a
// setting p2es has no key for.
func (l *p2esLocator) name(path ...string) string {
	if len(path) > 0 {
		if k, ok := p2esKeyOf[path[len(path)-1]]; ok {
			return k
		}
	}
	return strings.Join(path, ".")
}

type jsonField struct {
	raw    json.RawMessage
	offset int // where the value starts
}

// topLevelObject parses a JSON object and records where each value starts.
func topLevelObject(name string, src []byte) (map[string]jsonField, []string, error) {
	if err := json.Unmarshal(src, new(map[string]json.RawMessage)); err != nil {
		return nil, nil, jsonError(name, src, err)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	if _, err := dec.Token(); err != nil { // {
		return nil, nil, jsonError(name, src, err)
	}
	fields := map[string]jsonField{}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, jsonError(name, src, err)
		}
		key, _ := tok.(string)
		off := int(dec.InputOffset())
		for off < len(src) && (src[off] == ':' || src[off] == ' ' || src[off] == '\t' || src[off] == '\n' || src[off] == '\r') {
			off++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, jsonError(name, src, err)
		}
		if _, dup := fields[key]; !dup {
			order = append(order, key)
		}
		fields[key] = jsonField{raw: raw, offset: off}
	}
	return fields, order, nil
}

// jsonError places a JSON error at its line and column and names the usual cause.
func jsonError(name string, src []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off := int(se.Offset)
		if off > 0 && off < len(src) {
			off-- // Offset counts the byte that failed
		}
		line, col := setting.LineCol(src, off)
		msg := "invalid JSON: " + se.Error()
		if c := trailingComma(src, off); c >= 0 {
			line, col = setting.LineCol(src, c)
			msg = "invalid JSON: trailing comma before a closing bracket (JSON allows no comma after the last item; remove it)"
		}
		return &Error{File: name, Line: line, Col: col, Msg: msg}
	case errors.As(err, &te):
		start := len(src) - len(bytes.TrimLeft(src, " \t\r\n"))
		line, col := setting.LineCol(src, start)
		return &Error{File: name, Line: line, Col: col, Msg: "expected a JSON object at the top, found " + te.Value}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		line, col := setting.LineCol(src, len(src))
		return &Error{File: name, Line: line, Col: col, Msg: "invalid JSON: unexpected end of file (a missing } or ]?)"}
	}
	return &Error{File: name, Msg: "invalid JSON: " + err.Error()}
}

// trailingComma returns the offset of a comma followed only by blanks and a } or ]
// at off, or -1.
func trailingComma(src []byte, off int) int {
	if off >= len(src) || (src[off] != '}' && src[off] != ']') {
		return -1
	}
	for i := off - 1; i >= 0; i-- {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			continue
		case ',':
			return i
		}
		return -1
	}
	return -1
}

func describe(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

func didYouMean(k string, keys []string) string {
	if best := spelling.Closest(k, keys); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

func absolute(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
