package elasticsearch

import (
	"testing"
	"time"
)

// A latency lands in the first bucket whose bound it does not exceed; above
// every bound, in the last.
func TestLatencyBuckets(t *testing.T) {
	var l latency
	for _, tt := range []struct {
		d      time.Duration
		bucket int
	}{
		{time.Millisecond, 0},
		{5 * time.Millisecond, 0},
		{6 * time.Millisecond, 1},
		{time.Second, 7},
		{59 * time.Second, 12},
		{2 * time.Minute, 13},
	} {
		before := l.snapshot().Counts[tt.bucket]
		l.observe(tt.d)
		if got := l.snapshot().Counts[tt.bucket]; got != before+1 {
			t.Errorf("%v: bucket %d went from %d to %d", tt.d, tt.bucket, before, got)
		}
	}
	s := l.snapshot()
	if len(s.Counts) != len(s.Bounds)+1 {
		t.Fatalf("%d counts for %d bounds", len(s.Counts), len(s.Bounds))
	}
	want := (time.Millisecond + 5*time.Millisecond + 6*time.Millisecond + time.Second + 59*time.Second + 2*time.Minute).Seconds()
	if s.Seconds != want {
		t.Errorf("sum %v, want %v", s.Seconds, want)
	}
}
