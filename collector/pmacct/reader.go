// Package pmacct reads what pmacct writes: the print plugin's files and the
// pmacct client's output, as JSON (NDJSON) or CSV, and follows print-plugin files
// as pmacct rewrites or appends to them.
//
// JSON records come back exactly as pmacct wrote them: same keys, same order,
// same values and value types (tcp_flags "27", 27 or ["ACK","SYN"]; ip_proto as a
// name or a decimal string; any of the five timestamp formats; label as a string
// or an object; custom primitives as strings), so a Document re-encoded in
// document.Pmacct style is the input line byte for byte (for what pmacct's
// jansson writes: it escapes no '/' and no non-ASCII character).
//
// CSV differs from p2es on purpose in three ways, all documented on Options:
// markers are recognised instead of being taken for the header, numeric columns
// become JSON numbers (p2es keeps every CSV value a string), and a label holding
// the separator is put back together instead of shifting the columns.
package pmacct

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/ratelog"
)

// Format is the encoding of pmacct's output.
type Format int

const (
	// Auto decides on the first line that is not blank: a '{' means JSON, a CSV
	// header or marker means CSV (a line that is neither is a bad line, and the
	// next one decides).
	Auto Format = iota
	// JSON is one object per line: print_output json, `pmacct -s -O json`.
	JSON
	// CSV is a header line and rows: print_output csv, `pmacct -s -O csv`.
	CSV
)

func (f Format) String() string {
	switch f {
	case JSON:
		return "json"
	case CSV:
		return "csv"
	}
	return "auto"
}

// UnmarshalText reads "json", "csv" or "auto".
func (f *Format) UnmarshalText(b []byte) (err error) {
	*f, err = ParseFormat(string(b))
	return err
}

// MarshalText writes the format's name.
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// ParseFormat parses "json", "csv" or "auto".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "json":
		return JSON, nil
	case "csv":
		return CSV, nil
	case "auto", "":
		return Auto, nil
	}
	return Auto, fmt.Errorf("unknown format %q (expected json, csv or auto)", s)
}

// Names selects the field names of CSV input.
type Names int

const (
	// LowerNames lowercases pmacct's CSV header, as p2es does: SRC_IP becomes
	// src_ip, PROTOCOL protocol. Documents differ from JSON input's.
	LowerNames Names = iota
	// PmacctNames maps pmacct's CSV header names to the keys of its JSON output:
	// SRC_IP becomes ip_src, PROTOCOL ip_proto, PREF local_pref. Names pmacct does
	// not define (custom primitives) are kept as they are, as in its JSON.
	PmacctNames
)

func (n Names) String() string {
	if n == PmacctNames {
		return "pmacct"
	}
	return "lowercase"
}

// UnmarshalText reads "lowercase" (or "p2es") and "pmacct" (or "json").
func (n *Names) UnmarshalText(b []byte) (err error) {
	*n, err = ParseNames(string(b))
	return err
}

// MarshalText writes the names' choice.
func (n Names) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// ParseNames parses "lowercase" (or "p2es") and "pmacct" (or "json").
func ParseNames(s string) (Names, error) {
	switch strings.ToLower(s) {
	case "lowercase", "p2es", "":
		return LowerNames, nil
	case "pmacct", "json":
		return PmacctNames, nil
	}
	return LowerNames, fmt.Errorf("unknown CSV names %q (expected lowercase or pmacct)", s)
}

// Separator is pmacct's print_output_separator.
type Separator byte

// UnmarshalText reads one character, or the strings \t (tab) and \s (space).
func (sep *Separator) UnmarshalText(b []byte) error {
	c, err := ParseSeparator(string(b))
	*sep = Separator(c)
	return err
}

// MarshalText writes the separator as pmacct's configuration does.
func (sep Separator) MarshalText() ([]byte, error) {
	switch sep {
	case '\t':
		return []byte(`\t`), nil
	case ' ':
		return []byte(`\s`), nil
	}
	return []byte{byte(sep)}, nil
}

// ParseSeparator parses pmacct's print_output_separator: one character, or the
// strings \t (tab) and \s (space).
func ParseSeparator(s string) (byte, error) {
	switch s {
	case "":
		return ',', nil
	case `\t`:
		return '\t', nil
	case `\s`:
		return ' ', nil
	}
	if len(s) != 1 || s[0] == '\n' || s[0] == '\r' || s[0] == '"' {
		return 0, fmt.Errorf("CSV separator %q: expected one character, \\t or \\s", s)
	}
	return s[0], nil
}

// DefaultMaxLine bounds a line: longer ones are counted as bad without being
// held in memory.
const DefaultMaxLine = 1 << 20

// Options configure a Reader. The zero value reads JSON or CSV (Auto) with p2es's
// CSV conventions: ',' separator and lowercased names.
//
// CSV input, where pmacct and p2es leave it ambiguous:
//   - pmacct does not quote. A separator inside a value (a label chained in a
//     pre_tag_map is joined with ',': "web,http"; an AS path may hold an AS_SET
//     "{64496,64497}") makes a row longer than the header. When the header has
//     exactly one such free-text column (LABEL, AS_PATH, SRC_AS_PATH), the extra
//     fields are joined back into it; with none or several, the row is a bad line.
//     p2es shifts the columns instead. Setting print_output_separator to a
//     character no value holds (\t) avoids the question.
//   - Columns that pmacct's JSON writes as numbers (packets, bytes, flows, ports,
//     ASNs, interfaces, VLAN, masks, ToS, tags, sampling rate, ...) become JSON
//     numbers when the value is one, so numeric conditions and Elasticsearch long
//     mappings work as with JSON input; p2es keeps every CSV value a string.
//     tcp_flags, ip_proto, etype, timestamps and custom primitives stay strings,
//     as in pmacct's JSON.
//   - --START (pid)-- and --END (pid)-- lines are markers, wherever they are
//     (p2es takes a leading --START-- for the header). The header is the first
//     other line made of names (letters, digits, '_', '-'; not all digits), one of
//     them a pmacct primitive; lines before it are bad. A later line equal to the
//     header (files concatenated) is skipped; a later line of names with PACKETS
//     or BYTES replaces the header.
//   - pmacct's CSV has no event_type and no stamp_inserted/stamp_updated (1.7.7):
//     documents from CSV hold only the columns.
type Options struct {
	Format    Format
	Separator byte  // CSV separator; 0 means ','
	Names     Names // CSV field names
	MaxLine   int   // longest line accepted, in bytes; 0 means DefaultMaxLine
}

// Kind tells data records from pmacct's purge markers.
type Kind int

const (
	// Data is a flow record ("event_type": "purge", or no event_type at all in
	// the memory client's output).
	Data Kind = iota
	// MarkerInit is print_markers' purge_init ({"event_type": "purge_init", ...}
	// in JSON, --START (pid)-- in CSV).
	MarkerInit
	// MarkerClose is print_markers' purge_close (--END (pid)-- in CSV).
	MarkerClose
)

func (k Kind) String() string {
	switch k {
	case MarkerInit:
		return "purge_init"
	case MarkerClose:
		return "purge_close"
	}
	return "data"
}

// Record is one line of pmacct output that carries a record or a marker. The
// Record, its Document and Raw are reused: they are valid until the next call to
// Next.
type Record struct {
	// Doc is the record. For a JSON marker it is the marker object; for a CSV
	// marker it holds event_type ("purge_init" or "purge_close") and pid.
	Doc  *document.Document
	Line int    // line number in the input, from 1
	Kind Kind   // Data or a marker
	Raw  []byte // the input line, without its line ending
}

// Stats counts the lines read. Every line is exactly one of the others:
// Lines == Records + Markers + Headers + BadLines + Blank.
type Stats struct {
	Lines    int64 // lines read, including a last line without a newline
	Records  int64 // data records returned
	Markers  int64 // purge_init and purge_close markers returned
	Headers  int64 // CSV header lines, including repeated ones
	BadLines int64 // lines skipped as invalid (logged)
	Blank    int64 // empty or whitespace-only lines
	// InvalidUTF8 counts the JSON records and markers (already in Records or
	// Markers) with bytes that are not UTF-8: kept, each such byte becoming
	// U+FFFD when encoded (logged, rate-limited).
	InvalidUTF8 int64
}

// maxLogged bad lines are logged one by one; after that one in logEvery.
const (
	maxLogged = 100
	logEvery  = 10000
	snippetAt = 120
)

// invalidUTF8Every rate-limits the warning about records kept with invalid
// UTF-8: such a record is not lost, so one line now and then is enough to
// name the source and a line to look at.
const invalidUTF8Every = 10 * time.Second

// Reader reads pmacct output line by line. It is not safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	opts    Options
	format  Format // Auto until decided
	source  string
	log     *slog.Logger
	dec     *document.Decoder
	doc     document.Document
	rec     Record
	stats   Stats
	lineNo  int
	eof     bool
	long    []byte // a line longer than the bufio buffer, assembled
	snippet []byte // the start of an over-long line, for the message
	utf8Log ratelog.Limiter

	// CSV
	header []byte      // the current header line
	cols   []csvColumn // its columns
	free   int         // index of the one free-text column, -1 if none or several
	fields [][]byte
}

type csvColumn struct {
	key string
	typ valueType
}

// NewReader returns a Reader of r. source names the input in messages (a file
// name, or "stdin"); logger gets one warning per bad line (nil: no messages).
func NewReader(r io.Reader, opts Options, source string, logger *slog.Logger) *Reader {
	return newReader(r, opts, source, logger, 64<<10)
}

// newReader takes the size of the read buffer: lines longer than it are
// assembled in another (tests make it small).
func newReader(r io.Reader, opts Options, source string, logger *slog.Logger, bufSize int) *Reader {
	if opts.Separator == 0 {
		opts.Separator = ','
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = DefaultMaxLine
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rd := &Reader{
		br:     bufio.NewReaderSize(r, bufSize),
		opts:   opts,
		format: opts.Format,
		source: source,
		log:    logger,
		dec:    document.NewDecoder(),
		free:   -1,
	}
	rd.utf8Log.Every = invalidUTF8Every
	rd.rec.Doc = &rd.doc
	return rd
}

// Reset makes r read in from its first line, as a new Reader of the same
// options would, keeping the format it decided and its counts: the next
// Kafka message after one, without a Reader (and its buffer) per message.
func (r *Reader) Reset(in io.Reader) {
	r.br.Reset(in)
	r.lineNo, r.eof = 0, false
	r.long = r.long[:0]
}

// Format returns the format being read: Auto until the first line decides.
func (r *Reader) Format() Format { return r.format }

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Next returns the next record or marker, and io.EOF at the end of the input.
// Blank lines, CSV headers and bad lines are counted and skipped, a bad line with
// a warning; only a read error of the underlying reader is returned as an error.
func (r *Reader) Next() (*Record, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return nil, err
		}
		r.stats.Lines++
		if line == nil { // over-long
			r.bad(r.snippet, -1, fmt.Sprintf("line longer than %d bytes", r.opts.MaxLine))
			continue
		}
		if r.lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 BOM
		}
		if isBlank(line) {
			r.stats.Blank++
			continue
		}
		var ok bool
		switch r.format {
		case JSON:
			ok = r.jsonLine(line)
		case CSV:
			ok = r.csvLine(line)
		default:
			ok = r.sniff(line)
		}
		if ok {
			r.rec.Line = r.lineNo
			r.rec.Raw = line
			return &r.rec, nil
		}
	}
}

// readLine returns the next line without its line ending; nil for a line longer
// than MaxLine (its start is in r.snippet); io.EOF at the end.
func (r *Reader) readLine() ([]byte, error) {
	if r.eof {
		return nil, io.EOF
	}
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return r.readLong(b)
	}
	if err != nil {
		r.eof = true
		if !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(b) == 0 {
			return nil, io.EOF
		}
	}
	r.lineNo++
	b = trimEOL(b)
	if len(b) > r.opts.MaxLine {
		r.snippet = append(r.snippet[:0], b[:min(len(b), snippetAt)]...)
		return nil, nil
	}
	return b, nil
}

// readLong assembles a line longer than the bufio buffer, or skips the rest of
// it once it exceeds MaxLine, keeping its start for the message.
func (r *Reader) readLong(first []byte) ([]byte, error) {
	r.long = append(r.long[:0], first...)
	skipping := false
	for {
		if !skipping && len(r.long) > r.opts.MaxLine+2 { // +2: room for "\r\n"
			r.keepSnippet()
			skipping = true
		}
		b, err := r.br.ReadSlice('\n')
		if !skipping {
			r.long = append(r.long, b...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			r.eof = true
			if !errors.Is(err, io.EOF) {
				return nil, err
			}
		}
		break
	}
	r.lineNo++
	if !skipping {
		if line := trimEOL(r.long); len(line) <= r.opts.MaxLine {
			return line, nil
		}
		r.keepSnippet()
	}
	return nil, nil
}

func (r *Reader) keepSnippet() {
	n := min(len(r.long), snippetAt)
	r.snippet = append(r.snippet[:0], r.long[:n]...)
	r.long = r.long[:0]
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// sniff decides the format on the first line that is not blank.
func (r *Reader) sniff(line []byte) bool {
	t := bytes.TrimLeft(line, " \t")
	switch {
	case t[0] == '{':
		r.format = JSON
		return r.jsonLine(line)
	case csvMarker(line) != Data || r.headerLike(line, true):
		r.format = CSV
		return r.csvLine(line)
	}
	r.bad(line, -1, "neither a JSON object nor a CSV header or marker")
	return false
}

func (r *Reader) jsonLine(line []byte) bool {
	if err := r.dec.Decode(line, &r.doc); err != nil {
		var se *document.SyntaxError
		switch {
		case errors.As(err, &se):
			msg := se.Msg
			if se.Offset >= len(line) && !strings.Contains(msg, "truncated") {
				msg += " at the end of the line (truncated line?)"
			}
			r.bad(line, se.Offset, msg)
		case errors.Is(err, document.ErrNotObject):
			r.bad(line, -1, "valid JSON but not an object")
		default:
			r.bad(line, -1, err.Error())
		}
		return false
	}
	// the decoder keeps bytes that are not UTF-8 (U+FFFD once encoded): one
	// odd byte in a label should not cost the record, nor go unnoticed
	if !utf8.Valid(line) {
		r.invalidUTF8(line)
	}
	r.rec.Kind = Data
	if v, ok := r.doc.Get("event_type"); ok && v.Kind == document.String {
		switch string(v.Bytes) {
		case "purge_init":
			r.rec.Kind = MarkerInit
		case "purge_close":
			r.rec.Kind = MarkerClose
		}
	}
	if r.rec.Kind == Data {
		r.stats.Records++
	} else {
		r.stats.Markers++
	}
	return true
}

// csvMarker recognises print_markers' CSV lines: --START (pid)-- and --END (pid)--.
func csvMarker(line []byte) Kind {
	if !bytes.HasSuffix(line, []byte(")--")) {
		return Data
	}
	switch {
	case bytes.HasPrefix(line, []byte("--START (")):
		return MarkerInit
	case bytes.HasPrefix(line, []byte("--END (")):
		return MarkerClose
	}
	return Data
}

func (r *Reader) csvLine(line []byte) bool {
	if k := csvMarker(line); k != Data {
		r.doc.Reset()
		r.doc.SetString("event_type", k.String())
		start := bytes.IndexByte(line, '(') + 1
		pid := bytes.TrimSpace(line[start : len(line)-3])
		if isJSONInt(pid) {
			r.doc.SetNumber("pid", pid)
		} else {
			r.doc.SetStringBytes("pid", pid)
		}
		r.rec.Kind = k
		r.stats.Markers++
		return true
	}
	switch {
	case r.header == nil:
		if !r.headerLike(line, true) {
			r.bad(line, -1, "expected the CSV header line (pmacct writes one before the rows)")
			return false
		}
		r.setHeader(line)
		return false
	case bytes.Equal(line, r.header):
		r.stats.Headers++ // repeated: files concatenated
		return false
	case r.headerLike(line, false):
		r.setHeader(line)
		return false
	}
	return r.csvRow(line)
}

// split cuts line at the separator into r.fields.
func (r *Reader) split(line []byte) [][]byte {
	f := r.fields[:0]
	sep := r.opts.Separator
	for {
		i := bytes.IndexByte(line, sep)
		if i < 0 {
			f = append(f, line)
			break
		}
		f = append(f, line[:i])
		line = line[i+1:]
	}
	r.fields = f
	return f
}

// headerLike reports whether line can be a pmacct CSV header: names made of
// letters, digits, '_' and '-', none all digits, and some that pmacct defines.
// A later header (first false) must also name PACKETS or BYTES, which rows
// always hold as numbers.
func (r *Reader) headerLike(line []byte, first bool) bool {
	fields := r.split(line)
	for _, f := range fields {
		if len(f) == 0 || len(f) > 64 {
			return false
		}
		digits := true
		for _, c := range f {
			switch {
			case c >= '0' && c <= '9':
			case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_', c == '-':
				digits = false
			default:
				return false
			}
		}
		if digits {
			return false
		}
	}
	known, counters := false, false
	for _, f := range fields {
		if n := lookupCSVBytes(f); n != nil {
			known = true
			if n.csv == "PACKETS" || n.csv == "BYTES" {
				counters = true
			}
		}
	}
	return known && (first || counters)
}

func (r *Reader) setHeader(line []byte) {
	r.stats.Headers++
	r.header = append(r.header[:0], line...)
	r.cols = r.cols[:0]
	r.free = -1
	nfree := 0
	for i, f := range r.split(r.header) {
		name := string(f)
		c := csvColumn{key: strings.ToLower(name)}
		if n := lookupCSV(name); n != nil {
			c.typ = n.typ
			if r.opts.Names == PmacctNames {
				c.key = n.json
			}
			if n.freeText {
				r.free = i
				nfree++
			}
		} else if r.opts.Names == PmacctNames {
			c.key = name // a custom primitive: pmacct's JSON uses its name
		}
		r.cols = append(r.cols, c)
	}
	if nfree > 1 {
		r.free = -1
	}
}

func (r *Reader) csvRow(line []byte) bool {
	// split and check in one pass: pmacct writes no control characters
	sep := r.opts.Separator
	fields := r.fields[:0]
	start := 0
	for i, c := range line {
		switch {
		case c == sep:
			fields = append(fields, line[start:i])
			start = i + 1
		case c < 0x20 || c == 0x7f:
			r.bad(line, i, "control character in a CSV row")
			return false
		}
	}
	fields = append(fields, line[start:])
	r.fields = fields
	if !utf8.Valid(line) {
		r.bad(line, -1, "invalid UTF-8 in a CSV row")
		return false
	}
	n := len(r.cols)
	if len(fields) > n && r.free >= 0 {
		// the free-text column holds separators: join it back from the raw line
		extra := len(fields) - n
		first, last := fields[r.free], fields[r.free+extra]
		start := cap(line) - cap(first)
		end := cap(line) - cap(last) + len(last)
		fields[r.free] = line[start:end]
		fields = append(fields[:r.free+1], fields[r.free+extra+1:]...)
	}
	if len(fields) != n {
		r.bad(line, -1, fmt.Sprintf("%d columns, the header has %d", len(fields), n))
		return false
	}
	r.doc.Reset()
	for i, f := range fields {
		c := &r.cols[i]
		switch {
		case c.typ == integer && isJSONInt(f), c.typ == real && isJSONNumber(f):
			r.doc.SetNumber(c.key, f)
		default:
			r.doc.SetStringBytes(c.key, f)
		}
	}
	r.rec.Kind = Data
	r.stats.Records++
	return true
}

// isJSONInt reports whether b is an integer in JSON's grammar (no leading zeros,
// no '+').
func isJSONInt(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 20 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isJSONNumber reports whether b is a number in JSON's grammar.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - s
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b) && len(b) <= 64
}

// bad counts a bad line and logs it: where, why, and a snippet of at most about
// 120 bytes around the offending offset (-1: unknown).
func (r *Reader) bad(line []byte, offset int, reason string) {
	r.stats.BadLines++
	n := r.stats.BadLines
	if n > maxLogged && n%logEvery != 0 {
		return
	}
	attrs := []slog.Attr{
		slog.String("source", r.source),
		slog.Int("line", r.lineNo),
		slog.String("reason", reason),
	}
	if offset >= 0 {
		attrs = append(attrs, slog.Int("offset", offset))
	}
	attrs = append(attrs, slog.String("snippet", snippet(line, offset)))
	if n == maxLogged {
		attrs = append(attrs, slog.String("note", "further bad lines are counted but logged only one in "+strconv.Itoa(logEvery)))
	} else if n > maxLogged {
		attrs = append(attrs, slog.Int64("bad_lines", n))
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn, "pmacct: bad line skipped", attrs...)
}

// invalidUTF8 counts a record kept with invalid UTF-8 and logs it, at most
// once per invalidUTF8Every: where, and a snippet around the first bad byte.
func (r *Reader) invalidUTF8(line []byte) {
	r.stats.InvalidUTF8++
	ok, suppressed := r.utf8Log.Allow()
	if !ok {
		return
	}
	offset := firstInvalidUTF8(line)
	attrs := []slog.Attr{
		slog.String("source", r.source),
		slog.Int("line", r.lineNo),
		slog.Int("offset", offset),
		slog.String("snippet", snippet(line, offset)),
		slog.Int64("invalid_utf8", r.stats.InvalidUTF8),
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed_since_last", suppressed))
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn, "pmacct: invalid UTF-8 in a record, kept with U+FFFD in place of the bad bytes", attrs...)
}

// firstInvalidUTF8 returns the offset of the first byte of b that is not
// UTF-8, -1 if none.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		c, size := utf8.DecodeRune(b[i:])
		if c == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// snippet shows at most snippetAt bytes of line around offset, with bytes that
// are not printable UTF-8 escaped as \xNN.
func snippet(line []byte, offset int) string {
	start, end := 0, len(line)
	if end > snippetAt {
		if offset > snippetAt/2 {
			start = min(offset-snippetAt/2, len(line)-snippetAt)
		}
		end = start + snippetAt
	}
	var sb strings.Builder
	if start > 0 {
		sb.WriteString("…")
	}
	for b := line[start:end]; len(b) > 0; {
		c, size := utf8.DecodeRune(b)
		if c == utf8.RuneError && size <= 1 || !unicode.IsPrint(c) {
			fmt.Fprintf(&sb, `\x%02x`, b[0])
			b = b[1:]
			continue
		}
		sb.Write(b[:size])
		b = b[size:]
	}
	if end < len(line) {
		sb.WriteString("…")
	}
	return sb.String()
}
