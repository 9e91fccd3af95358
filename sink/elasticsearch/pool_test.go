package elasticsearch

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// Two nodes; one goes away (connections refused) while documents flow, then
// comes back on the same address. Nothing is lost or failed, the documents
// go to the other node meanwhile, and the node that came back takes
// requests again within a few seconds.
func TestNodeDownAndBack(t *testing.T) {
	fa, srvA := newFakeES(t, nil)
	fb, srvB := newFakeES(t, nil)
	cfg := fakeConfig(srvA.URL)
	cfg.URLs = append(cfg.URLs, srvB.URL)
	s, logs := startSink(t, cfg)
	w := &docWriter{s: s}
	w.write(t, 100)
	if fa.count() == 0 || fb.count() == 0 {
		t.Fatalf("documents on the nodes: %d and %d; want both used", fa.count(), fb.count())
	}

	addr := srvA.Listener.Addr().String()
	srvA.Close() // connections refused from now on
	onA := fa.count()
	w.write(t, 100)
	if fa.count() != onA {
		t.Errorf("the node that went away got %d documents", fa.count()-onA)
	}
	if !strings.Contains(logs.String(), "node not answering") {
		t.Errorf("no log says the node is set aside:\n%s", logs)
	}

	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	back := &http.Server{Handler: fa, ReadHeaderTimeout: 5 * time.Second}
	go back.Serve(l)
	t.Cleanup(func() {
		if err := back.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	})
	start := time.Now()
	testwatch.WaitFor(t, "the node to take requests again", 10*time.Second, func() bool {
		w.write(t, 10)
		return fa.count() > onA
	})
	t.Logf("the node took requests again %v after it came back", time.Since(start).Round(10*time.Millisecond))
	if !strings.Contains(logs.String(), "node answers again") {
		t.Errorf("no log says the node is back:\n%s", logs)
	}

	w.stop(t)
	if got := fa.count() + fb.count(); got != w.next {
		t.Errorf("the nodes hold %d documents, want %d", got, w.next)
	}
}
