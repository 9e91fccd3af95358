package ratelog

import (
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := Limiter{Every: time.Second}
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed uint64
	}{
		{0, true, 0},
		{100 * time.Millisecond, false, 0},
		{999 * time.Millisecond, false, 0},
		{time.Second, true, 2},
		{1500 * time.Millisecond, false, 0},
		{5 * time.Second, true, 1},
	}
	for _, s := range steps {
		ok, n := l.AllowAt(t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Errorf("at %v: got %v, %d; want %v, %d", s.at, ok, n, s.ok, s.suppressed)
		}
	}
	l.AllowAt(t0.Add(5100 * time.Millisecond))
	if n := l.Pending(); n != 1 {
		t.Errorf("Pending = %d, want 1", n)
	}
	if n := l.Pending(); n != 0 {
		t.Errorf("Pending again = %d, want 0", n)
	}
}

// Of many lines at once, one gets through and the others are counted.
func TestLimiterConcurrent(t *testing.T) {
	l := Limiter{Every: time.Hour}
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	var reported uint64 // held back lines the allowed one counted: those that raced it
	for range 100 {
		wg.Go(func() {
			if ok, n := l.AllowAt(now); ok {
				mu.Lock()
				allowed++
				reported += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// every line held back is counted once: by the line let through (those
	// held back while it went) or by Pending
	if held := l.Pending(); allowed != 1 || reported+held != 99 {
		t.Errorf("allowed %d (want 1), held back %d reported with it + %d pending (want 99)", allowed, reported, held)
	}
}

func TestZeroLetsEverythingThrough(t *testing.T) {
	var l Limiter
	now := time.Now()
	for i := range 3 {
		if ok, _ := l.AllowAt(now); !ok {
			t.Fatalf("line %d held back", i)
		}
	}
}
