// Package setting holds the value types that the configurations of flowdex's
// components share, each read from and written back to its TOML text, and the
// error a component gives for a setting it refuses, naming the key so that
// the configuration loader can point at its line and column (LineCol, for
// the readers of TOML, p2es and transformation files).
package setting

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written "30s", "5m", "1h" or, as pmacct and
// Curator users write retention, "30d".
type Duration struct{ time.Duration }

// UnmarshalText reads a duration; negative ones are refused.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100_000 {
			return fmt.Errorf("invalid duration %q (expected e.g. \"30s\", \"5m\", \"1h\" or \"30d\")", s)
		}
		d.Duration = time.Duration(days) * 24 * time.Hour
		return nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		return fmt.Errorf("duration %q has no unit (expected e.g. \"%ss\", \"%sm\" or \"%sd\")", s, s, s, s)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q (expected e.g. \"30s\", \"5m\", \"1h\" or \"30d\")", s)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in whole days when it is some, so
// that "30d" reads back as written.
func (d Duration) MarshalText() ([]byte, error) {
	if day := 24 * time.Hour; d.Duration > 0 && d.Duration%day == 0 {
		return []byte(strconv.FormatInt(int64(d.Duration/day), 10) + "d"), nil
	}
	return []byte(d.String()), nil
}

// Prefix is an address prefix written as a prefix ("192.0.2.0/24") or a
// single address ("192.0.2.1", a prefix of its full length). IPv4-mapped
// IPv6 addresses are unmapped, host bits cleared.
type Prefix struct{ netip.Prefix }

// ParsePrefix reads an address or a prefix.
func ParsePrefix(s string) (Prefix, error) {
	var p Prefix
	err := p.UnmarshalText([]byte(s))
	return p, err
}

// UnmarshalText reads an address or a prefix.
func (p *Prefix) UnmarshalText(b []byte) error {
	s := string(b)
	if strings.Contains(s, "/") {
		v, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%q is not a prefix (expected e.g. \"192.0.2.0/24\" or \"2001:db8::/32\")", s)
		}
		if v.Addr().Is4In6() {
			v = netip.PrefixFrom(v.Addr().Unmap(), max(v.Bits()-96, 0))
		}
		p.Prefix = v.Masked()
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%q is not an address or prefix (expected e.g. \"192.0.2.1\" or \"192.0.2.0/24\")", s)
	}
	a = a.Unmap()
	p.Prefix = netip.PrefixFrom(a, a.BitLen())
	return nil
}

// MarshalText writes a prefix of full length as its address.
func (p Prefix) MarshalText() ([]byte, error) {
	if !p.IsValid() {
		return nil, nil
	}
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().MarshalText()
	}
	return p.Prefix.MarshalText()
}

// Location is a time zone: "Local" (the machine's), "UTC" or an IANA name
// such as "Europe/Rome". The zero value is UTC.
type Location struct{ *time.Location }

// LoadLocation reads a time zone name; "" is UTC.
func LoadLocation(name string) (Location, error) {
	var l Location
	err := l.UnmarshalText([]byte(name))
	return l, err
}

// UnmarshalText reads a time zone name.
func (l *Location) UnmarshalText(b []byte) error {
	switch name := string(b); strings.ToLower(name) {
	case "local":
		l.Location = time.Local
	case "utc", "":
		l.Location = time.UTC
	default:
		loc, err := time.LoadLocation(name)
		if err != nil {
			return fmt.Errorf("unknown time zone %q (expected Local, UTC or a name such as Europe/Rome)", name)
		}
		l.Location = loc
	}
	return nil
}

// MarshalText writes the zone's name ("Local" for the machine's).
func (l Location) MarshalText() ([]byte, error) {
	if l.Location == time.Local {
		return []byte("Local"), nil // the machine's, whatever its name (TZ's, when set)
	}
	return []byte(l.Get().String()), nil
}

// Get returns the zone, UTC for the zero value.
func (l Location) Get() *time.Location {
	if l.Location == nil {
		return time.UTC
	}
	return l.Location
}

// KeyError is a component's refusal of one of its settings: Key is the
// setting's TOML key within the component's table ("filter", "urls").
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// Errorf makes a KeyError for key.
func Errorf(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Key wraps err as a KeyError for key, unless it is one already.
func Key(key string, err error) error {
	var ke *KeyError
	if err == nil || errors.As(err, &ke) {
		return err
	}
	return &KeyError{Key: key, Err: err}
}

// LineCol turns a byte offset of src into a line and a column, both 1-based
// (the column in bytes), for messages that point into a configuration file.
func LineCol(src []byte, offset int) (line, col int) {
	offset = min(max(offset, 0), len(src))
	line, col = 1, 1
	for _, c := range src[:offset] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
