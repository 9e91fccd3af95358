// Package timestamp reads and writes pmacct's time values: stamp_inserted,
// stamp_updated and the timestamp_* primitives, in every format pmacct 1.7 to 1.8
// prints them.
package timestamp

import (
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
)

// Parse reads a pmacct time value:
//   - "2024-01-01 00:00:00" and "2024-01-01 00:00:00.100000": pmacct's default and
//     timestamps_utc. They carry no offset, so they are read in loc;
//   - "2024-01-01T00:00:00.100000Z" and "...+01:00": timestamps_rfc3339 and rfc9557;
//   - "1704067200" and "1704067200.100000", as a string or a JSON number:
//     timestamps_since_epoch.
//
// It reports false for anything else, including pmacct's zero time
// "0000-00-00 00:00:00.000000" that stands for a missing value.
func Parse(v document.Value, loc *time.Location) (time.Time, bool) {
	switch v.Kind {
	case document.String, document.Number:
		return ParseBytes(v.Bytes, loc)
	case document.Int:
		return time.Unix(v.Int, 0), v.Int > 0
	case document.Float:
		if v.Float <= 0 || v.Float > 1e12 {
			return time.Time{}, false
		}
		sec := int64(v.Float)
		return time.Unix(sec, int64((v.Float-float64(sec))*1e9+0.5)), true
	}
	return time.Time{}, false
}

// ParseBytes is Parse for text.
func ParseBytes(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) == 0 {
		return time.Time{}, false
	}
	if t, ok := parseEpoch(b); ok {
		return t, true
	}
	return parseCalendar(b, loc)
}

// parseEpoch reads "seconds[.fraction]".
func parseEpoch(b []byte) (time.Time, bool) {
	var sec int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i >= 12 {
			return time.Time{}, false
		}
		sec = sec*10 + int64(b[i]-'0')
	}
	if i == 0 {
		return time.Time{}, false
	}
	var nsec int64
	if i < len(b) {
		if b[i] != '.' {
			return time.Time{}, false
		}
		i++
		digits := 0
		for ; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			if digits < 9 {
				nsec = nsec*10 + int64(c-'0')
				digits++
			}
		}
		for ; digits < 9; digits++ {
			nsec *= 10
		}
	}
	if sec == 0 && nsec == 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, nsec), true
}

// parseCalendar reads "YYYY-MM-DD[ T]hh:mm:ss[.frac][Z|±hh:mm|±hhmm]".
func parseCalendar(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != ' ' && b[10] != 'T') ||
		b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year == 0 || month < 1 || month > 12 ||
		day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
	if i < len(b) && b[i] == '.' {
		i++
		n := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if n < 9 {
				nsec = nsec*10 + int(b[i]-'0')
				n++
			}
		}
		if n == 0 {
			return time.Time{}, false
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	if i < len(b) {
		switch b[i] {
		case 'Z', 'z':
			if i+1 != len(b) {
				return time.Time{}, false
			}
			loc = time.UTC
		case '+', '-':
			rest := b[i+1:]
			var hh, mm int
			var ok bool
			switch {
			case len(rest) == 5 && rest[2] == ':':
				hh, ok = digits(rest[0:2])
				if ok {
					mm, ok = digits(rest[3:5])
				}
			case len(rest) == 4:
				hh, ok = digits(rest[0:2])
				if ok {
					mm, ok = digits(rest[2:4])
				}
			}
			if !ok || hh > 23 || mm > 59 {
				return time.Time{}, false
			}
			off := hh*3600 + mm*60
			if b[i] == '-' {
				off = -off
			}
			loc = time.FixedZone("", off)
		default:
			return time.Time{}, false
		}
	}
	if loc == nil {
		loc = time.UTC
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day || t.IsZero() { // 31 February and the like; Go's zero time means none
		return time.Time{}, false
	}
	return t, true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// Of is a record's time: the value of the first of fields that doc has and
// that Parse reads, naive times read in loc.
func Of(doc *document.Document, fields []string, loc *time.Location) (time.Time, bool) {
	for _, f := range fields {
		if v, ok := doc.Get(f); ok {
			if t, ok := Parse(v, loc); ok {
				return t, true
			}
		}
	}
	return time.Time{}, false
}
