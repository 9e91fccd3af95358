// Package strftime renders Python strftime patterns, the index names of
// pmacct-to-elasticsearch (ES_IndexName): the sink renders them for each
// document, retention reads the names back.
package strftime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Pattern is a name with Python strftime codes, compiled once and rendered
// for each document without allocating.
//
// The codes are those of Python's time.strftime and datetime.strftime on
// Linux (C standard, POSIX and the glibc extensions people use, with the C
// locale), plus glibc's "-" flag that drops the padding (%-d):
//
//	%a %A %b %B %h  weekday and month names: Mon Monday Jan January Jan
//	%d %e %m %y %Y %C %j  day, space-padded day, month, year, century, day of year
//	%H %I %k %l %M %S %f %p %P  time of day, microseconds, AM/PM, am/pm
//	%U %W %V %G %g %u %w  weeks (Sunday-, Monday-based, ISO 8601), ISO year, weekdays
//	%F %D %T %R %r %c %x %X  composites: 2024-01-31 01/31/24 13:04:05 13:04 …
//	%s %z %Z  Unix time, UTC offset (+0000), zone abbreviation
//	%n %t %%  newline, tab, percent
type Pattern struct {
	ops []Op
}

// Op is a part of a pattern: literal text or one code.
type Op struct {
	Code  byte   // 0: literal
	NoPad bool   // the "-" flag
	Lit   string // literal text
}

// Compile parses a strftime pattern; an unknown code is an error naming it.
func Compile(src string) (*Pattern, error) {
	p := &Pattern{}
	var lit strings.Builder
	flushLit := func() {
		if lit.Len() > 0 {
			p.ops = append(p.ops, Op{Lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		i++
		if i >= len(src) {
			return nil, errors.New("a lone % at the end (write %% for a percent sign)")
		}
		nopad := false
		if src[i] == '-' {
			nopad = true
			i++
			if i >= len(src) {
				return nil, errors.New("a lone %- at the end")
			}
		}
		c = src[i]
		if c == '%' && !nopad {
			lit.WriteByte('%')
			continue
		}
		if !strings.ContainsRune(knownCodes, rune(c)) {
			code := "%"
			if nopad {
				code += "-"
			}
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, fmt.Errorf("unknown strftime code %s%c", code, r)
		}
		if nopad && !strings.ContainsRune(paddedCodes, rune(c)) {
			return nil, fmt.Errorf("the - flag does not apply to %%%c", c)
		}
		flushLit()
		p.ops = append(p.ops, Op{Code: c, NoPad: nopad})
	}
	flushLit()
	return p, nil
}

// Ops are the parts of the pattern, in order; they are not to be changed.
func (p *Pattern) Ops() []Op { return p.ops }

const (
	knownCodes  = "aAbBcCdDeFfgGhHIjklmMnpPrRsStTuUVwWxXyYzZ"
	paddedCodes = "CdegGHIjklmMSUVWyY"
)

// HasCodes reports whether the name changes with time.
func (p *Pattern) HasCodes() bool {
	for _, o := range p.ops {
		if o.Code != 0 {
			return true
		}
	}
	return false
}

// SubSecond reports whether names change within a second (%f).
func (p *Pattern) SubSecond() bool {
	for _, o := range p.ops {
		if o.Code == 'f' {
			return true
		}
	}
	return false
}

// Prefix is the literal text before the first code.
func (p *Pattern) Prefix() string {
	var b strings.Builder
	for _, o := range p.ops {
		if o.Code != 0 {
			break
		}
		b.WriteString(o.Lit)
	}
	return b.String()
}

var (
	shortDays   = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	shortMonths = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// Render appends the name for t (already in the wanted zone) to dst.
func (p *Pattern) Render(dst []byte, t time.Time) []byte {
	for i := range p.ops {
		o := &p.ops[i]
		if o.Code == 0 {
			dst = append(dst, o.Lit...)
			continue
		}
		dst = appendCode(dst, o.Code, o.NoPad, t)
	}
	return dst
}

func appendCode(dst []byte, code byte, nopad bool, t time.Time) []byte {
	num := func(n, width int) []byte {
		if nopad {
			return strconv.AppendInt(dst, int64(n), 10)
		}
		return appendPadded(dst, n, width, '0')
	}
	space := func(n int) []byte { // %e %k %l
		if nopad {
			return strconv.AppendInt(dst, int64(n), 10)
		}
		return appendPadded(dst, n, 2, ' ')
	}
	switch code {
	case 'a':
		return append(dst, shortDays[t.Weekday()]...)
	case 'A':
		return append(dst, t.Weekday().String()...)
	case 'b', 'h':
		return append(dst, shortMonths[t.Month()-1]...)
	case 'B':
		return append(dst, t.Month().String()...)
	case 'c':
		dst = appendCode(dst, 'a', false, t)
		dst = append(dst, ' ')
		dst = appendCode(dst, 'b', false, t)
		dst = append(dst, ' ')
		dst = appendCode(dst, 'e', false, t)
		dst = append(dst, ' ')
		dst = appendCode(dst, 'T', false, t)
		dst = append(dst, ' ')
		return appendCode(dst, 'Y', false, t)
	case 'C':
		return num(t.Year()/100, 2)
	case 'd':
		return num(t.Day(), 2)
	case 'D', 'x':
		dst = appendPadded(dst, int(t.Month()), 2, '0')
		dst = append(dst, '/')
		dst = appendPadded(dst, t.Day(), 2, '0')
		dst = append(dst, '/')
		return appendPadded(dst, t.Year()%100, 2, '0')
	case 'e':
		return space(t.Day())
	case 'f':
		return appendPadded(dst, t.Nanosecond()/1000, 6, '0')
	case 'F':
		dst = appendPadded(dst, t.Year(), 4, '0')
		dst = append(dst, '-')
		dst = appendPadded(dst, int(t.Month()), 2, '0')
		dst = append(dst, '-')
		return appendPadded(dst, t.Day(), 2, '0')
	case 'g':
		y, _ := t.ISOWeek()
		return num(y%100, 2)
	case 'G':
		y, _ := t.ISOWeek()
		return num(y, 4)
	case 'H':
		return num(t.Hour(), 2)
	case 'I':
		return num(hour12(t), 2)
	case 'j':
		return num(t.YearDay(), 3)
	case 'k':
		return space(t.Hour())
	case 'l':
		return space(hour12(t))
	case 'm':
		return num(int(t.Month()), 2)
	case 'M':
		return num(t.Minute(), 2)
	case 'n':
		return append(dst, '\n')
	case 'p':
		if t.Hour() < 12 {
			return append(dst, "AM"...)
		}
		return append(dst, "PM"...)
	case 'P':
		if t.Hour() < 12 {
			return append(dst, "am"...)
		}
		return append(dst, "pm"...)
	case 'r':
		dst = appendPadded(dst, hour12(t), 2, '0')
		dst = append(dst, ':')
		dst = appendPadded(dst, t.Minute(), 2, '0')
		dst = append(dst, ':')
		dst = appendPadded(dst, t.Second(), 2, '0')
		dst = append(dst, ' ')
		return appendCode(dst, 'p', false, t)
	case 'R':
		dst = appendPadded(dst, t.Hour(), 2, '0')
		dst = append(dst, ':')
		return appendPadded(dst, t.Minute(), 2, '0')
	case 's':
		return strconv.AppendInt(dst, t.Unix(), 10)
	case 'S':
		return num(t.Second(), 2)
	case 't':
		return append(dst, '\t')
	case 'T', 'X':
		dst = appendPadded(dst, t.Hour(), 2, '0')
		dst = append(dst, ':')
		dst = appendPadded(dst, t.Minute(), 2, '0')
		dst = append(dst, ':')
		return appendPadded(dst, t.Second(), 2, '0')
	case 'u':
		wd := int(t.Weekday())
		if wd == 0 {
			wd = 7
		}
		return strconv.AppendInt(dst, int64(wd), 10)
	case 'U': // weeks starting on Sunday; days before the first Sunday are week 0
		return num((t.YearDay()+6-int(t.Weekday()))/7, 2)
	case 'V':
		_, w := t.ISOWeek()
		return num(w, 2)
	case 'w':
		return strconv.AppendInt(dst, int64(t.Weekday()), 10)
	case 'W': // weeks starting on Monday
		return num((t.YearDay()+6-(int(t.Weekday())+6)%7)/7, 2)
	case 'y':
		return num(t.Year()%100, 2)
	case 'Y':
		return num(t.Year(), 4)
	case 'z':
		_, off := t.Zone()
		sign := byte('+')
		if off < 0 {
			sign, off = '-', -off
		}
		dst = append(dst, sign)
		dst = appendPadded(dst, off/3600, 2, '0')
		return appendPadded(dst, off%3600/60, 2, '0')
	case 'Z':
		name, _ := t.Zone()
		return append(dst, name...)
	}
	return dst // not reached: Compile knows the codes
}

func hour12(t time.Time) int {
	h := t.Hour() % 12
	if h == 0 {
		h = 12
	}
	return h
}

// appendPadded appends n (>= 0) padded to width with pad.
func appendPadded(dst []byte, n, width int, pad byte) []byte {
	if n < 0 {
		dst = append(dst, '-')
		n = -n
		width--
	}
	digits := 1
	for x := n; x >= 10; x /= 10 {
		digits++
	}
	for ; digits < width; digits++ {
		dst = append(dst, pad)
	}
	return strconv.AppendInt(dst, int64(n), 10)
}
