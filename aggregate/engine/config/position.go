package config

import (
	"errors"
	"strconv"
	"strings"

	"github.com/flowdex/flowdex/aggregate/setting"
)

// Error is a configuration error at a place in a file.
type Error struct {
	File      string
	Line, Col int // 1-based; 0 when unknown
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Errors are every mistake found in one file, in the order of the file's
// tables; each is an *Error, or a transformation's error, which names its
// own place.
type Errors []error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap gives errors.As and errors.Is every error.
func (es Errors) Unwrap() []error { return es }

// locator finds where a key of the configuration is written: path is table
// names, "name#N" for the N-th (0-based) table of an array, then the key.
type locator interface {
	find(path ...string) (line, col int)
	// name is what the file calls the key at path
	name(path ...string) string
}

// ErrorsAt places err, found about the table or key path after loading (by
// the engine building a component), at its line and column: a
// setting.KeyError inside it names a key below path. Joined errors (a
// component's Validate gives every mistake) are placed one by one; errors
// already placed are kept as they are.
func (c *Config) ErrorsAt(err error, path ...string) Errors {
	if err == nil {
		return nil
	}
	if _, placed := err.(*Error); placed {
		return Errors{err}
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var es Errors
		for _, e := range joined.Unwrap() {
			es = append(es, c.ErrorsAt(e, path...)...)
		}
		return es
	}
	var ke *setting.KeyError
	if errors.As(err, &ke) {
		path = append(append([]string(nil), path...), strings.Split(ke.Key, ".")...)
		err = ke.Err
	}
	e := &Error{File: c.File, Msg: strings.Join(path, ".") + ": " + err.Error()}
	if c.where != nil {
		e.Line, e.Col = c.where.find(path...)
		e.Msg = c.where.name(path...) + ": " + err.Error()
	}
	return Errors{e}
}

func (l *tomlLocator) name(path ...string) string { return strings.Join(path, ".") }

// tomlLocator finds where a key of a TOML document is written. BurntSushi/toml
// does not expose key positions, and errors found after decoding (a bad value,
// an unknown name) must still point at a line, so this reads the few TOML forms a
// configuration file uses: [table], [[array.of.tables]], key = value, and dotted keys.
type tomlLocator struct {
	lines []string
}

func newTOMLLocator(src []byte) *tomlLocator {
	return &tomlLocator{lines: strings.Split(string(src), "\n")}
}

// find returns the line and column of path, where an element "name#N" selects the
// N-th (0-based) table of the array of tables "name". It falls back to the table
// header, then to 0, 0.
func (l *tomlLocator) find(path ...string) (line, col int) {
	if len(path) == 0 {
		return 0, 0
	}
	// the table part of the path and the counts of array-of-table headers
	var table []string // normalised names, "#N" stripped
	want := map[string]int{}
	for _, p := range path[:len(path)-1] {
		name, idx, _ := strings.Cut(p, "#")
		table = append(table, name)
		if idx != "" {
			n, _ := strconv.Atoi(idx)
			want[strings.Join(table, ".")] = n
		}
	}
	key := path[len(path)-1]
	if name, idx, ok := strings.Cut(key, "#"); ok { // the path names a table itself
		table = append(table, name)
		n, _ := strconv.Atoi(idx)
		want[strings.Join(table, ".")] = n
		key = ""
	}
	tableName := strings.Join(table, ".")
	seen := map[string]int{}
	current := ""
	inTarget := tableName == ""
	headerLine := 0
	for i, raw := range l.lines {
		s := strings.TrimSpace(raw)
		indent := len(raw) - len(strings.TrimLeft(raw, " \t"))
		switch {
		case strings.HasPrefix(s, "[["):
			name := normKey(strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(s, "]]", 2)[0], "[["), "]]"))
			n := seen[name]
			seen[name] = n + 1
			current = name
			inTarget = name == tableName && matchCounts(name, n, want, seen)
			if inTarget {
				headerLine = i + 1
				if key == "" {
					return i + 1, indent + 1
				}
			}
			continue
		case strings.HasPrefix(s, "["):
			name := normKey(strings.TrimPrefix(strings.SplitN(s, "]", 2)[0], "["))
			current = name
			inTarget = name == tableName && matchCounts(name, -1, want, seen)
			if inTarget {
				headerLine = i + 1
				if key == "" {
					return i + 1, indent + 1
				}
			}
			continue
		}
		if s == "" || s[0] == '#' {
			continue
		}
		k, _, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		k = normKey(k)
		full := k
		if current != "" {
			full = current + "." + k
		}
		target := key
		if tableName != "" {
			target = tableName + "." + key
		}
		if key != "" && (inTarget && k == key || !inTarget && full == target && matchCounts(tableName, -1, want, seen)) {
			return i + 1, indent + 1
		}
	}
	if headerLine > 0 {
		return headerLine, 1
	}
	return 0, 0
}

// matchCounts reports whether the array-of-table counters agree with the wanted
// indexes for every array that encloses or is name.
func matchCounts(name string, n int, want, seen map[string]int) bool {
	for arr, idx := range want {
		if arr == name && n >= 0 {
			if n != idx {
				return false
			}
			continue
		}
		if strings.HasPrefix(name, arr) && seen[arr]-1 != idx {
			return false
		}
	}
	return true
}

func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}
