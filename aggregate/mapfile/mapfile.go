// Package mapfile reads the lines of pmacct's map files (pre_tag_map,
// aggregate_primitives): each line a rule of key=value pairs separated by
// blanks, a value with blanks in single quotes (the quotes go); lines whose
// first character other than a blank is '!' or '#' are comments. Mistakes
// are reported at their line and column, every one of a file at once.
package mapfile

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// Pair is one key=value of a line.
type Pair struct {
	Key, Value string
	Col        int // of the key, 1-based, in bytes
}

// ValueCol returns the column of the value.
func (p Pair) ValueCol() int { return p.Col + len(p.Key) + 1 }

// Error is a mistake at a line and column of a map; Read prefixes the
// file's name.
type Error struct {
	Line, Col int
	Msg       string
}

func (e *Error) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// Errorf returns an Error.
func Errorf(line, col int, format string, args ...any) error {
	return &Error{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// Read calls rule for every line of data that is no comment nor blank, with
// its pairs, and returns the errors of the lines (rule's and the grammar's)
// joined, each prefixed with name.
func Read(name string, data []byte, rule func(line int, pairs []Pair) error) error {
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
		if trimmed == "" || trimmed[0] == '!' || trimmed[0] == '#' {
			continue
		}
		pairs, err := split(line, n)
		if err == nil {
			err = rule(n, pairs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%w", name, err))
		}
	}
	return errors.Join(errs...)
}

// split reads a line's pairs.
func split(line string, n int) ([]Pair, error) {
	var pairs []Pair
	var cur strings.Builder
	start, quote, in := 0, -1, false
	end := func() error {
		key, value, ok := strings.Cut(cur.String(), "=")
		if !ok || key == "" {
			return Errorf(n, start+1, "%q: expected key=value, without blanks around '=' (a comment is a line of its own, starting with '!' or '#')", cur.String())
		}
		pairs = append(pairs, Pair{Key: key, Value: value, Col: start + 1})
		cur.Reset()
		in = false
		return nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			if quote < 0 {
				quote = i
			} else {
				quote = -1
			}
			if !in {
				start, in = i, true
			}
		case quote < 0 && (c == ' ' || c == '\t'):
			if in {
				if err := end(); err != nil {
					return nil, err
				}
			}
		default:
			if !in {
				start, in = i, true
			}
			cur.WriteByte(c)
		}
	}
	if quote >= 0 {
		return nil, Errorf(n, quote+1, "a quote that is not closed (expected a value in single quotes)")
	}
	if in {
		if err := end(); err != nil {
			return nil, err
		}
	}
	return pairs, nil
}

// ParsePrefix reads a value that is an address or a prefix, as pmacct's
// maps take them: an address is a prefix of its whole length, host bits
// are cleared, IPv4-mapped IPv6 is IPv4.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
