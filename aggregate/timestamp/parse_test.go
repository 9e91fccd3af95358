package timestamp

import (
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
)

func TestParse(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		v    document.Value
		loc  *time.Location
		want string // RFC3339Nano in UTC, "" for not a time
	}{
		{"default naive", str("2024-01-01 00:00:00"), time.UTC, "2024-01-01T00:00:00Z"},
		{"default naive usec", str("2024-01-01 00:00:00.100000"), time.UTC, "2024-01-01T00:00:00.1Z"},
		{"naive read in loc", str("2024-01-01 01:00:00"), cet, "2024-01-01T00:00:00Z"},
		{"rfc3339 Z", str("2024-01-01T00:00:00.100000Z"), cet, "2024-01-01T00:00:00.1Z"},
		{"rfc3339 offset", str("2024-01-01T01:00:00+01:00"), time.UTC, "2024-01-01T00:00:00Z"},
		{"rfc9557 +00:00", str("2024-01-01T00:00:00.100000+00:00"), cet, "2024-01-01T00:00:00.1Z"},
		{"epoch string", str("1704067140"), cet, "2023-12-31T23:59:00Z"},
		{"epoch usec string", str("1704067200.100000"), cet, "2024-01-01T00:00:00.1Z"},
		{"epoch number", document.Value{Kind: document.Number, Bytes: []byte("1704067200")}, cet, "2024-01-01T00:00:00Z"},
		{"epoch int", document.Value{Kind: document.Int, Int: 1704067200}, cet, "2024-01-01T00:00:00Z"},
		{"pmacct zero time", str("0000-00-00 00:00:00.000000"), time.UTC, ""},
		{"epoch zero", str("0.000000"), time.UTC, ""},
		{"garbage", str("yesterday"), time.UTC, ""},
		{"bad month", str("2024-13-01 00:00:00"), time.UTC, ""},
		{"31 February", str("2024-02-31 00:00:00"), time.UTC, ""},
		{"trailing junk", str("2024-01-01 00:00:00x"), time.UTC, ""},
		{"empty", str(""), time.UTC, ""},
		{"bool", document.Value{Kind: document.Bool, Int: 1}, time.UTC, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.v, tt.loc)
			if tt.want == "" {
				if ok {
					t.Fatalf("Parse(%q) = %v, want no time", tt.v.Bytes, got)
				}
				return
			}
			if !ok {
				t.Fatalf("Parse(%q) failed, want %s", tt.v.Bytes, tt.want)
			}
			if s := got.UTC().Format(time.RFC3339Nano); s != tt.want {
				t.Fatalf("Parse(%q) = %s, want %s", tt.v.Bytes, s, tt.want)
			}
		})
	}
}

func str(s string) document.Value { return document.Value{Kind: document.String, Bytes: []byte(s)} }

func FuzzParse(f *testing.F) {
	for _, s := range []string{"2024-01-01 00:00:00.100000", "2024-01-01T00:00:00+01:00", "1704067200.1", "0000-00-00 00:00:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseBytes([]byte(s), time.UTC)
		if ok && got.IsZero() {
			t.Fatalf("ParseBytes(%q) returned the zero time as valid", s)
		}
	})
}

// The first field that parses gives the time; none, no time.
func TestOf(t *testing.T) {
	var d document.Document
	d.AppendString("stamp_inserted", "0000-00-00 00:00:00")
	d.AppendString("timestamp_start", "2024-01-01 01:00:00.500000")
	d.AppendString("timestamp_arrival", "2024-01-01 02:00:00")
	fields := []string{"stamp_inserted", "timestamp_start", "timestamp_arrival"}
	got, ok := Of(&d, fields, time.FixedZone("pmacct", 3600))
	if want := time.Date(2024, 1, 1, 0, 0, 0, 500_000_000, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("Of = %v %v, want %v", got, ok, want)
	}
	if _, ok := Of(&d, []string{"stamp_updated"}, time.UTC); ok {
		t.Error("a time from a field the document lacks")
	}
}
