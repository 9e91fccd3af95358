package setting

import (
	"errors"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		in, out string
		want    time.Duration
	}{
		{"30d", "30d", 30 * 24 * time.Hour},
		{"1h", "1h0m0s", time.Hour},
		{"24h", "1d", 24 * time.Hour},
		{"90s", "1m30s", 90 * time.Second},
		{"0s", "0s", 0},
	} {
		var d Duration
		if err := d.UnmarshalText([]byte(tt.in)); err != nil || d.Duration != tt.want {
			t.Errorf("%q: %v, %v", tt.in, d.Duration, err)
		}
		if b, _ := d.MarshalText(); string(b) != tt.out {
			t.Errorf("%q written back as %q, want %q", tt.in, b, tt.out)
		}
	}
	for _, bad := range []string{"", "-1s", "-2d", "1x", "d", "1.5d", "999999999d"} {
		var d Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %v", bad, d.Duration)
		}
	}
	// TOML's 5 reaches UnmarshalText as "5": the unit is what is missing
	var d Duration
	want := `duration "5" has no unit (expected e.g. "5s", "5m" or "5d")`
	if err := d.UnmarshalText([]byte("5")); err == nil || err.Error() != want {
		t.Errorf("5: %v, want %s", err, want)
	}
}

func TestPrefix(t *testing.T) {
	for _, tt := range []struct{ in, out string }{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.77/24", "192.0.2.0/24"},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
	} {
		p, err := ParsePrefix(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if b, _ := p.MarshalText(); string(b) != tt.out {
			t.Errorf("%q: %q, want %q", tt.in, b, tt.out)
		}
	}
	for _, bad := range []string{"", "192.0.2", "192.0.2.0/33", "host"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLocation(t *testing.T) {
	for _, tt := range []struct{ in, out string }{{"", "UTC"}, {"utc", "UTC"}, {"Local", "Local"}, {"Europe/Rome", "Europe/Rome"}} {
		l, err := LoadLocation(tt.in)
		if b, _ := l.MarshalText(); err != nil || string(b) != tt.out {
			t.Errorf("%q: %q, %v", tt.in, b, err)
		}
	}
	if _, err := LoadLocation("Mars/Olympus"); err == nil {
		t.Error("an unknown zone was accepted")
	}
	var zero Location
	if zero.Get() != time.UTC {
		t.Error("the zero Location is not UTC")
	}
}

func TestKeyError(t *testing.T) {
	inner := errors.New("no scheme")
	err := Key("urls", inner)
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "urls" || !errors.Is(err, inner) || err.Error() != "urls: no scheme" {
		t.Errorf("%v", err)
	}
	if again := Key("other", err); again != err {
		t.Errorf("a KeyError was wrapped again: %v", again)
	}
}
