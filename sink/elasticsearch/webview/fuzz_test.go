package webview

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// The time range comes from the query string: whatever it holds, reading it
// does not panic, and a range it accepts is ordered and at most 400 days.
func FuzzTimeRange(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""}, {"now-15m", "now"}, {"now-", "now-"}, {"now-9223372036854775807d", ""},
		{"2026-11-24T08:00:00Z", "2026-11-24T09:00:00+01:00"}, {"now-1000d", "now-999d"}, {"now-0s", "x"},
	} {
		f.Add(seed[0], seed[1])
	}
	v := &View{cfg: Configuration{Now: func() time.Time { return now }}}
	f.Fuzz(func(t *testing.T, from, to string) {
		r := httptest.NewRequest("GET", "/api/traffic?from="+url.QueryEscape(from)+"&to="+url.QueryEscape(to), nil)
		f, tt, err := v.timeRange(r)
		if err != nil {
			return
		}
		if !f.Before(tt) || tt.Sub(f) > 400*24*time.Hour {
			t.Errorf("accepted from %v to %v", f, tt)
		}
		if step := interval(tt.Sub(f)); step < time.Minute || tt.Sub(f)/step > 150 {
			t.Errorf("interval %v for %v", step, tt.Sub(f))
		}
	})
}
