package file

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/internal/strftime"
)

// The print plugin's file habits (pmacct's print_output_file with time codes
// and variables, print_output_file_append off, print_markers,
// print_latest_file, print_trigger_exec, print_output: csv) need the purge as
// a whole: in purge mode a sink keeps the documents of a purge, grouped by
// the file they go to, and writes the files when the pipeline flushes at the
// end of the purge.

// fileCodes are the time codes pmacct 1.7.7 takes in print_output_file.
const fileCodes = "dHmMwWYsSz"

// variables are the $ names of print_output_file that flowdex expands: the
// document's peer_ip_src (. and : as _), tag and tag2 (0 without them).
var variables = []string{"peer_src_ip", "tag2", "tag"}

// name is a compiled print_output_file.
type name struct {
	parts []namePart
	times bool // has time codes
}

type namePart struct {
	variable string            // "" : the pattern
	pattern  *strftime.Pattern // literal text and time codes
}

// parseName compiles a file name with pmacct's time codes and variables.
func parseName(s string) (*name, error) {
	n := &name{}
	for s != "" {
		i := strings.IndexByte(s, '$')
		lit := s
		if i >= 0 {
			lit = s[:i]
		}
		if lit != "" {
			p, err := strftime.Compile(lit)
			if err != nil {
				return nil, err
			}
			for _, op := range p.Ops() {
				if op.Code != 0 && !strings.ContainsRune(fileCodes, rune(op.Code)) {
					return nil, fmt.Errorf("%%%c: pmacct's print_output_file takes %%d %%H %%m %%M %%w %%W %%Y %%s %%S %%z only", op.Code)
				}
			}
			n.times = n.times || p.HasCodes()
			n.parts = append(n.parts, namePart{pattern: p})
		}
		if i < 0 {
			break
		}
		s = s[i+1:]
		v := ""
		for _, cand := range variables {
			if strings.HasPrefix(s, cand) && (len(s) == len(cand) || !isNameByte(s[len(cand)])) {
				v = cand
				break
			}
		}
		if v == "" {
			end := 0
			for end < len(s) && isNameByte(s[end]) {
				end++
			}
			return nil, fmt.Errorf("$%s: expected $peer_src_ip, $tag or $tag2 (pmacct's $post_tag, $post_tag2, $ref, $hst and $tzone are not supported yet)", s[:end])
		}
		n.parts = append(n.parts, namePart{variable: v})
		s = s[len(v):]
	}
	return n, nil
}

func isNameByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// dynamic reports whether names change with the documents or the time.
func (n *name) dynamic() bool {
	for _, p := range n.parts {
		if p.variable != "" {
			return true
		}
	}
	return n.times
}

// render appends the name of doc's file at t.
func (n *name) render(b []byte, doc *document.Document, t time.Time) []byte {
	for _, p := range n.parts {
		if p.pattern != nil {
			b = p.pattern.Render(b, t)
			continue
		}
		v, ok := doc.Get(map[string]string{"peer_src_ip": flow.PeerSrcIP.JSONKey(), "tag": flow.Tag.JSONKey(), "tag2": flow.Tag2.JSONKey()}[p.variable])
		switch {
		case !ok && p.variable == "peer_src_ip":
			// pmacct writes whatever its buffer held: "" or null
		case !ok:
			b = append(b, '0')
		case v.Kind == document.Int:
			b = strconv.AppendInt(b, v.Int, 10)
		default:
			for _, c := range v.Bytes {
				if c == '.' || c == ':' {
					c = '_'
				}
				b = append(b, c)
			}
		}
	}
	return b
}

// pending is what a purge has for one file.
type pending struct {
	name    string
	header  []byte // csv: the columns of the first document
	lines   bytes.Buffer
	entries int
}

// rewrite reports whether files are rewritten at each purge (append =
// false), not appended to.
func (cfg *Configuration) rewrite() bool { return cfg.Append != nil && !*cfg.Append }

// PurgeFiles reports whether cfg writes the files of each purge (purge
// mode), rather than lines as they come.
func (cfg *Configuration) PurgeFiles() bool { return cfg.purgeMode() }

// purgeMode reports whether cfg needs the purge as a whole.
func (cfg *Configuration) purgeMode() bool {
	return cfg.Format == "csv" || cfg.Format == "formatted" || cfg.Markers || cfg.rewrite() || cfg.LatestFile != "" || cfg.TriggerExec != "" ||
		strings.ContainsAny(cfg.Path, "%$")
}

// keep adds doc to the purge's files.
func (s *Sink) keep(doc *document.Document, t time.Time) error {
	var nb [256]byte
	fname := s.cfg.Path
	if s.name != nil && s.name.dynamic() {
		if !doc.Has(flow.StampInserted.JSONKey()) {
			t = s.now() // without time bins, pmacct names files after the purge
		}
		if s.cfg.UTC {
			t = t.UTC()
		} else {
			t = t.Local()
		}
		fname = string(s.name.render(nb[:0], doc, t))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.files[fname]
	if p == nil {
		p = &pending{name: fname}
		s.files[fname] = p
		s.order = append(s.order, fname)
	}
	if s.cfg.Format == "csv" || s.cfg.Format == "formatted" {
		cols := columns(doc)
		if p.entries == 0 {
			p.header = s.header(p.header[:0], cols)
		}
		p.lines.Write(s.line(nil, doc, cols))
	} else {
		p.lines.Write(append(doc.AppendJSON(nil, document.Pmacct), '\n'))
	}
	p.entries++
	s.written++
	return nil
}

// skipped are the fields of pmacct's JSON that its CSV has no column for.
var skipped = map[string]bool{"event_type": true, "stamp_inserted": true, "stamp_updated": true}

// header appends the header of doc's table: pmacct's CSV names of its
// fields (a custom primitive's, or an enrichment field's, is its JSON key),
// joined by the separator, or padded as pmacct's formatted table.
func (s *Sink) header(b []byte, cols []column) []byte {
	for i, c := range cols {
		if s.cfg.Format == "formatted" {
			start := len(b)
			b = append(b, c.title...)
			if i < len(cols)-1 {
				b = pad(b, start, c.titleWidth, 0)
			}
			continue
		}
		if i > 0 {
			b = append(b, s.sep)
		}
		b = append(b, c.title...)
	}
	return append(b, '\n')
}

// line appends doc's values as pmacct's CSV (no quotes, no escapes) or
// formatted table writes them.
func (s *Sink) line(b []byte, doc *document.Document, cols []column) []byte {
	for i, c := range cols {
		if s.cfg.Format == "formatted" {
			start := len(b)
			b = value(b, doc, c.key)
			if len(b) == start && (strings.HasSuffix(c.title, "_IP") || strings.HasSuffix(c.title, "_NET")) {
				b = append(b, "::"...) // pmacct's empty address
			}
			if i < len(cols)-1 {
				b = pad(b, start, c.width, c.gap)
			}
			continue
		}
		if i > 0 {
			b = append(b, s.sep)
		}
		b = value(b, doc, c.key)
	}
	return append(b, '\n')
}

// writePurge writes the files of a purge, then runs the trigger. It is
// called with s.mu held.
func (s *Sink) writePurge() error {
	if len(s.order) == 0 {
		return nil // an empty purge touches nothing, as pmacct's
	}
	start := s.now()
	total := 0
	for _, n := range s.order {
		total += s.files[n].entries
	}
	purged := 0
	var firstErr error
	for _, n := range s.order {
		p := s.files[n]
		purged += p.entries
		if err := s.writeFile(p, purged, total, start); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	clear(s.files)
	s.order = s.order[:0]
	if s.cfg.TriggerExec != "" {
		s.trigger()
	}
	return firstErr
}

// writeFile writes one file of a purge: rewritten, or appended to (a CSV
// header when the file is new), between markers; then the latest link.
func (s *Sink) writeFile(p *pending, purged, total int, start time.Time) error {
	var out *os.File
	table := s.cfg.Format == "csv" || s.cfg.Format == "formatted"
	header := table
	if p.name == "-" {
		header = header && !s.stdoutHeader
		s.stdoutHeader = true
	} else {
		if err := os.MkdirAll(filepath.Dir(p.name), 0o755); err != nil {
			return fmt.Errorf("file sink %s: %w", p.name, err)
		}
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if !s.cfg.rewrite() {
			if _, err := os.Stat(p.name); err == nil {
				header = false // pmacct: a header only in a file it creates
			}
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(p.name, flags, 0o644)
		if err != nil {
			return fmt.Errorf("file sink: %w", err)
		}
		out = f
	}
	var b bytes.Buffer
	writer := fmt.Sprintf("%s/%d", s.cfg.Name, os.Getpid())
	if s.cfg.Markers {
		if table {
			fmt.Fprintf(&b, "--START (%d)--\n", os.Getpid())
		} else {
			fmt.Fprintf(&b, "{\"event_type\": \"purge_init\", \"writer_id\": %s}\n", document.AppendString(nil, writer))
		}
	}
	if header {
		b.Write(p.header)
	}
	b.Write(p.lines.Bytes())
	if s.cfg.Markers {
		if table {
			fmt.Fprintf(&b, "--END (%d)--\n", os.Getpid())
		} else {
			fmt.Fprintf(&b, "{\"event_type\": \"purge_close\", \"writer_id\": %s, \"purged_entries\": %d, \"total_entries\": %d, \"duration\": %d}\n",
				document.AppendString(nil, writer), purged, total, int(s.now().Sub(start).Seconds()))
		}
	}
	if out == nil {
		if _, err := s.w.Write(b.Bytes()); err != nil {
			return fmt.Errorf("file sink: %w", err)
		}
		return s.w.Flush()
	}
	_, err := out.Write(b.Bytes())
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("file sink %s: %w", p.name, err)
	}
	if s.cfg.LatestFile != "" {
		return s.linkLatest(p.name)
	}
	return nil
}

// linkLatest points the latest_file symbolic link at target, replacing it
// whole (a new link renamed over the old).
func (s *Sink) linkLatest(target string) error {
	tmp := s.cfg.LatestFile + ".flowdex-tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("file sink: latest_file: %w", err)
	}
	if err := os.Rename(tmp, s.cfg.LatestFile); err != nil {
		return fmt.Errorf("file sink: latest_file: %w", err)
	}
	return nil
}

// trigger runs trigger_exec as pmacct's print_trigger_exec: no arguments,
// the daemon's environment, not waited for (reaped in the background so that
// it leaves no zombie); a failure is counted and logged.
func (s *Sink) trigger() {
	cmd := exec.Command(s.cfg.TriggerExec)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		s.triggerErrs++
		s.logf("trigger_exec %s: %v", s.cfg.TriggerExec, err)
		return
	}
	s.triggers++
	go func() { _ = cmd.Wait() }()
}
