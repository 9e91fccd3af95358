package pace

import (
	"context"
	"testing"
	"time"
)

// At speed 0 nothing waits; at speed 10, a packet stamped 200 ms after the
// first is let through 20 ms after it, not before; a cancelled context ends
// a wait.
func TestWait(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0)
	fast := New(0)
	start := time.Now()
	for i := range 5 {
		if !fast.Wait(ctx, t0.Add(time.Duration(i)*time.Hour)) {
			t.Fatal("speed 0 refused a packet")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("speed 0 waited %v", d)
	}
	p := New(10)
	defer p.Stop()
	p.Wait(ctx, t0)
	start = time.Now()
	if !p.Wait(ctx, t0.Add(200*time.Millisecond)) {
		t.Fatal("refused")
	}
	if d := time.Since(start); d < 19*time.Millisecond {
		t.Errorf("let through after %v, want 20ms", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if p.Wait(cctx, t0.Add(time.Hour)) {
		t.Error("a cancelled wait returned true")
	}
}
