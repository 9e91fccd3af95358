package config

import (
	"errors"
	"strings"

	"github.com/flowdex/flowdex/aggregate/transform"
)

// TransformationsError places the errors of pipeline i's transformations in
// the file that holds them: its transformations file, the TOML
// configuration when the list is written inline, or the p2es plugin file.
func (c *Config) TransformationsError(i int, err error) error {
	p := &c.Pipelines[i]
	file, line, col := "", 0, 0 // where the list starts; 0: in a file of its own
	switch {
	case p.transformations != nil:
		if l, ok := c.where.(*p2esLocator); ok {
			file = c.File
			line, col = l.find("transformations")
		}
	case strings.HasPrefix(strings.TrimSpace(p.Transformations), "["):
		if l, ok := c.where.(*tomlLocator); ok {
			file = c.File
			line, col = l.listStart(at("pipeline", i, "transformations")...)
		}
	}
	if line == 0 {
		return err
	}
	var placed []error
	for _, e := range unjoin(err) {
		var te *transform.Error
		if !errors.As(e, &te) || te.Line == 0 {
			placed = append(placed, e)
			continue
		}
		moved := *te
		moved.Source = file
		if te.Line == 1 {
			moved.Col += col - 1
		}
		moved.Line += line - 1
		placed = append(placed, &moved)
	}
	return errors.Join(placed...)
}

// unjoin returns the errors joined in err, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// listStart finds where the JSON list given as the value of path starts: the
// first '[' after the key's '='.
func (l *tomlLocator) listStart(path ...string) (line, col int) {
	kl, kc := l.find(path...)
	if kl == 0 {
		return 0, 0
	}
	for i := kl - 1; i < len(l.lines); i++ {
		s := l.lines[i]
		from := 0
		if i == kl-1 {
			eq := strings.IndexByte(s[kc-1:], '=')
			if eq < 0 {
				return 0, 0
			}
			from = kc - 1 + eq
		}
		if j := strings.IndexByte(s[from:], '['); j >= 0 {
			return i + 1, from + j + 1
		}
	}
	return 0, 0
}
