package datagram

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testConfig(listen ...string) Configuration {
	cfg := DefaultConfiguration()
	cfg.Listen = listen
	cfg.ReadBuffer = 1 << 20
	return cfg
}

func start(t *testing.T, cfg Configuration, h Handler) *Listener {
	t.Helper()
	l, err := New(cfg, h, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

// client is a UDP socket bound to an ephemeral port of addr.
func client(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, to netip.AddrPort, payload string) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(payload), to); err != nil {
		t.Fatal(err)
	}
}

func local(c *net.UDPConn) string {
	return c.LocalAddr().(*net.UDPAddr).AddrPort().String()
}

// recorder keeps what a handler saw, by source.
type recorder struct {
	mu       sync.Mutex
	bySource map[string][]string
	n        int
}

func (r *recorder) handle(d *Datagram) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bySource == nil {
		r.bySource = map[string][]string{}
	}
	r.bySource[d.Source.String()] = append(r.bySource[d.Source.String()], string(d.Payload))
	r.n++
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func TestListenerReusePort(t *testing.T) {
	var rec recorder
	cfg := testConfig("127.0.0.1:0", "[::1]:0")
	cfg.Sockets = 2
	l := start(t, cfg, rec.handle)
	addrs := l.Addrs()
	if len(addrs) != 4 {
		t.Fatalf("addrs %v, want 4", addrs)
	}
	for i, want := range []string{"127.0.0.1", "127.0.0.1", "::1", "::1"} {
		if addrs[i].Addr().String() != want || addrs[i].Port() == 0 {
			t.Errorf("addr %d: %v, want %s with a port", i, addrs[i], want)
		}
	}
	if addrs[0].Port() != addrs[1].Port() || addrs[2].Port() != addrs[3].Port() {
		t.Fatalf("SO_REUSEPORT sockets on different ports: %v", addrs)
	}

	// Many exporters, so that the kernel's hash uses both sockets of a pair.
	const clients, perClient = 32, 5
	want := map[string][]string{}
	for i := 0; i < clients; i++ {
		for _, pair := range []struct {
			from string
			to   netip.AddrPort
		}{{"127.0.0.1:0", addrs[0]}, {"[::1]:0", addrs[2]}} {
			c := client(t, pair.from)
			for j := 0; j < perClient; j++ {
				p := fmt.Sprintf("%s seq %d", local(c), j)
				send(t, c, pair.to, p)
				want[local(c)] = append(want[local(c)], p)
			}
		}
	}
	total := 2 * clients * perClient
	testwatch.WaitFor(t, "all datagrams", 10*time.Second, func() bool { return rec.count() == total })

	rec.mu.Lock()
	// Sources are as sent (IPv4 not mapped) and each exporter's datagrams are in order.
	if fmt.Sprint(rec.bySource) != fmt.Sprint(want) {
		t.Errorf("got by source\n%v\nwant\n%v", rec.bySource, want)
	}
	rec.mu.Unlock()

	st := l.Stats()
	if st.Received != uint64(total) || st.Delivered != uint64(total) || st.Dropped != 0 || st.Truncated != 0 {
		t.Errorf("stats %+v", st)
	}
	var bytes uint64
	for _, ps := range want {
		for _, p := range ps {
			bytes += uint64(len(p))
		}
	}
	if st.Bytes != bytes {
		t.Errorf("bytes %d, want %d", st.Bytes, bytes)
	}
	for i, ss := range st.Sockets {
		if ss.Addr != addrs[i] || ss.Received == 0 {
			t.Errorf("socket %d: %+v: want traffic on every socket", i, ss)
		}
	}
}

func TestListenerDualStack(t *testing.T) {
	t.Run("ipv6 wildcard alone takes ipv4", func(t *testing.T) {
		var rec recorder
		l := start(t, testConfig("[::]:0"), rec.handle)
		port := l.Addrs()[0].Port()
		c4, c6 := client(t, "127.0.0.1:0"), client(t, "[::1]:0")
		send(t, c4, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), "from v4")
		send(t, c6, netip.AddrPortFrom(netip.IPv6Loopback(), port), "from v6")
		testwatch.WaitFor(t, "two datagrams", 10*time.Second, func() bool { return rec.count() == 2 })
		want := map[string][]string{local(c4): {"from v4"}, local(c6): {"from v6"}}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if fmt.Sprint(rec.bySource) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v (IPv4 sources unmapped)", rec.bySource, want)
		}
	})
	t.Run("both wildcards on one port", func(t *testing.T) {
		// A free port for both families: a dual-stack socket held it.
		probe, err := net.ListenUDP("udp", &net.UDPAddr{})
		if err != nil {
			t.Fatal(err)
		}
		port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		probe.Close()
		var rec recorder
		l := start(t, testConfig(fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf("[::]:%d", port)), rec.handle)
		c4, c6 := client(t, "127.0.0.1:0"), client(t, "[::1]:0")
		send(t, c4, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), "v4")
		send(t, c6, netip.AddrPortFrom(netip.IPv6Loopback(), port), "v6")
		testwatch.WaitFor(t, "two datagrams", 10*time.Second, func() bool { return rec.count() == 2 })
		st := l.Stats()
		if st.Sockets[0].Received != 1 || st.Sockets[1].Received != 1 {
			t.Errorf("IPv4 and IPv6 should each reach their own socket: %+v", st.Sockets)
		}
	})
}

// blocker is a handler that holds its first call until released.
type blocker struct {
	recorder
	release chan struct{}
	once    sync.Once
}

func (b *blocker) handle(d *Datagram) {
	b.once.Do(func() { <-b.release })
	b.recorder.handle(d)
}

func TestListenerQueueFull(t *testing.T) {
	b := &blocker{release: make(chan struct{})}
	cfg := testConfig("127.0.0.1:0")
	cfg.QueueSize = 4
	l := start(t, cfg, b.handle)
	c := client(t, "127.0.0.1:0")
	const n = 200
	for i := 0; i < n; i++ {
		send(t, c, l.Addrs()[0], fmt.Sprintf("%03d", i))
	}
	testwatch.WaitFor(t, "all read", 10*time.Second, func() bool { return l.Stats().Received == n })
	close(b.release)
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	handled := b.count()
	if st.Dropped == 0 || st.Dropped+uint64(handled) != n || st.Delivered != uint64(handled) {
		t.Errorf("dropped %d + handled %d (delivered %d), want %d with drops", st.Dropped, handled, st.Delivered, n)
	}
	// One in the handler, QueueSize queued.
	if handled < 1 || handled > cfg.QueueSize+1 {
		t.Errorf("handled %d, want 1 to %d", handled, cfg.QueueSize+1)
	}
	got := b.bySource[local(c)]
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("out of order: %v", got)
		}
	}
}

func TestListenerStopDrains(t *testing.T) {
	b := &blocker{release: make(chan struct{})}
	cfg := testConfig("127.0.0.1:0")
	cfg.QueueSize = 16
	l := start(t, cfg, b.handle)
	c := client(t, "127.0.0.1:0")
	var want []string
	for i := 0; i < 10; i++ {
		want = append(want, fmt.Sprint(i))
		send(t, c, l.Addrs()[0], want[i])
	}
	testwatch.WaitFor(t, "all read", 10*time.Second, func() bool { return l.Stats().Received == 10 })
	stopped := make(chan error)
	go func() { stopped <- l.Stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while the handler still held queued datagrams", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(b.release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
	if got := b.bySource[local(c)]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handled %v, want %v", got, want)
	}
	st := l.Stats()
	if st.Delivered != 10 || st.Dropped != 0 || st.Sockets[0].Queued != 0 {
		t.Errorf("stats after Stop %+v", st)
	}
	if err := l.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestListenerTruncated(t *testing.T) {
	var rec recorder
	cfg := testConfig("127.0.0.1:0")
	cfg.MaxDatagram = 100
	l := start(t, cfg, rec.handle)
	c := client(t, "127.0.0.1:0")
	for _, n := range []int{101, 100, 1, 5000} {
		send(t, c, l.Addrs()[0], strings.Repeat("x", n))
	}
	testwatch.WaitFor(t, "all read", 10*time.Second, func() bool { return l.Stats().Received == 4 })
	testwatch.WaitFor(t, "delivered", 10*time.Second, func() bool { return rec.count() == 2 })
	st := l.Stats()
	if st.Truncated != 2 || st.Delivered != 2 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 2 truncated, 2 delivered", st)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.bySource[local(c)]; len(got) != 2 || len(got[0]) != 100 || len(got[1]) != 1 {
		t.Errorf("delivered lengths wrong: %d datagrams", len(got))
	}
}

// New refuses a bad configuration with an error naming the key, for the
// configuration loader to point at.
func TestNewErrors(t *testing.T) {
	ok := func(d *Datagram) {}
	cases := []struct {
		name    string
		mutate  func(*Configuration)
		handler Handler
		want    string
	}{
		{"no address", func(c *Configuration) { c.Listen = nil }, ok, "listen: no address"},
		{"host name", func(c *Configuration) { c.Listen = []string{"localhost:2055"} }, ok, "IP address"},
		{"no port", func(c *Configuration) { c.Listen = []string{"127.0.0.1"} }, ok, "not an address and port"},
		{"bad port", func(c *Configuration) { c.Listen = []string{"127.0.0.1:70000"} }, ok, "bad port"},
		{"listed twice", func(c *Configuration) { c.Listen = []string{"127.0.0.1:2055", "127.0.0.1:2055"} }, ok, "twice"},
		{"zero sockets", func(c *Configuration) { c.Sockets = 0 }, ok, "sockets"},
		{"zero queue", func(c *Configuration) { c.QueueSize = 0 }, ok, "queue"},
		{"huge datagram", func(c *Configuration) { c.MaxDatagram = 70000 }, ok, "MaxDatagram 70000, want 1 to 65535"},
		{"negative buffer", func(c *Configuration) { c.ReadBuffer = -1 }, ok, "read_buffer: -1"},
		{"nil handler", func(c *Configuration) {}, nil, "handler"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("127.0.0.1:0")
			tc.mutate(&cfg)
			_, err := New(cfg, tc.handler, quiet)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestListenNetworks(t *testing.T) {
	cases := []struct {
		listen []string
		want   []string // network per entry
	}{
		{[]string{"[::]:2055"}, []string{"udp"}},
		{[]string{":2055"}, []string{"udp"}},
		{[]string{"0.0.0.0:2055", "[::]:2055"}, []string{"udp4", "udp6"}},
		{[]string{"127.0.0.1:2055", "[::]:2055", "[::]:6343"}, []string{"udp4", "udp6", "udp"}},
		{[]string{"0.0.0.0:0", "[::]:0"}, []string{"udp4", "udp"}},
		{[]string{"[::1]:2055", "[::ffff:127.0.0.1]:2056"}, []string{"udp6", "udp4"}},
	}
	for _, tc := range cases {
		binds, err := parseListen(tc.listen)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range binds {
			got = append(got, b.network)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%v: networks %v, want %v", tc.listen, got, tc.want)
		}
	}
}

func TestListenerLifecycle(t *testing.T) {
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	taken := local(busy)
	l, err := New(testConfig("127.0.0.1:0", taken), func(*Datagram) {}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err == nil || !strings.Contains(err.Error(), taken) {
		t.Fatalf("Start on a taken port: %v, want an error naming %s", err, taken)
	}
	if len(l.Addrs()) != 0 {
		t.Errorf("addresses %v after a failed Start", l.Addrs())
	}
	// Nothing stays bound: freed, the same listener starts.
	busy.Close()
	if err := l.Start(); err != nil {
		t.Fatalf("Start after the port was freed: %v", err)
	}
	if err := l.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if err := l.Stop(); err != nil {
		t.Error(err)
	}

	idle, err := New(testConfig("127.0.0.1:0"), func(*Datagram) {}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Stop(); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
	if err := idle.Start(); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

// TestListenerSteadyStateAllocs checks that receiving does not allocate per
// datagram once the buffers exist. Buffers are allocated as the backlog
// grows, so a blocked handler first makes the listener allocate all
// QueueSize+2 of them; then 2000 datagrams may cost a few runtime
// allocations, not thousands.
func TestListenerSteadyStateAllocs(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	cfg := testConfig("127.0.0.1:0")
	cfg.QueueSize = 64
	l := start(t, cfg, func(*Datagram) { once.Do(func() { <-release }) })
	s := l.sockets[0]
	c := client(t, "127.0.0.1:0")
	to := l.Addrs()[0]
	payload := make([]byte, 1400)
	burst := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := c.WriteToUDPAddrPort(payload, to); err != nil {
				t.Fatal(err)
			}
		}
	}
	settled := func(n uint64) func() bool {
		return func() bool {
			return s.received.Load() == n && s.delivered.Load()+s.dropped.Load() == n
		}
	}
	burst(cfg.QueueSize + 2)
	testwatch.WaitFor(t, "read", 10*time.Second, func() bool { return s.received.Load() == uint64(cfg.QueueSize+2) })
	close(release)
	testwatch.WaitFor(t, "warm-up", 10*time.Second, settled(uint64(cfg.QueueSize+2)))

	const n = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// In chunks that the socket buffer holds even when -race slows the reader.
	for sent := 0; sent < n; sent += 100 {
		burst(100)
		testwatch.WaitFor(t, "chunk", 10*time.Second, settled(uint64(cfg.QueueSize+2+sent+100)))
	}
	runtime.ReadMemStats(&after)
	mallocs := after.Mallocs - before.Mallocs
	t.Logf("%d allocations for %d datagrams", mallocs, n)
	if mallocs > n/50 {
		t.Errorf("%d allocations for %d datagrams", mallocs, n)
	}
}

// Datagrams the kernel queued before Stop are read and handed to the handler,
// not thrown away with the socket: here the read loop is held until Stop has
// begun, so that all of them wait in the socket buffer.
func TestListenerStopReadsSocketBuffer(t *testing.T) {
	hold := make(chan struct{})
	testHookRead = func() { <-hold }
	testHookStopping = func() { close(hold) }
	t.Cleanup(func() { testHookRead, testHookStopping = nil, nil })
	var rec recorder
	cfg := testConfig("127.0.0.1:0")
	l := start(t, cfg, rec.handle)
	c := client(t, "127.0.0.1:0")
	const n = 300
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint(i))
		send(t, c, l.Addrs()[0], want[i])
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := rec.bySource[local(c)]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handled %d datagrams, want %d in order", len(got), n)
	}
	st := l.Stats()
	if st.Received != n || st.Delivered != n || st.KernelDrops != 0 {
		t.Errorf("stats after Stop %+v, want %d received and delivered", st, n)
	}
}

// After Drain the handler is called no more and the socket stays bound:
// what arrives then is read by Close and counted as unhandled, and the
// counters still add up.
func TestListenerCloseCountsAfterDrain(t *testing.T) {
	var rec recorder
	l := start(t, testConfig("127.0.0.1:0"), rec.handle)
	c := client(t, "127.0.0.1:0")
	for i := range 5 {
		send(t, c, l.Addrs()[0], fmt.Sprint(i))
	}
	testwatch.WaitFor(t, "all read", 10*time.Second, func() bool { return l.Stats().Received == 5 })
	l.Drain()
	for i := range 7 {
		send(t, c, l.Addrs()[0], fmt.Sprint("late", i)) // the port still takes them
	}
	if got := l.Stats().Sockets[0].KernelQueued; got == 0 {
		t.Errorf("after Drain the kernel holds %d bytes, want the late datagrams", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if rec.count() != 5 || st.Delivered != 5 || st.Unhandled != 7 || st.Received != 12 ||
		st.Received != st.Delivered+st.Dropped+st.Truncated+st.Unhandled+uint64(st.Sockets[0].Queued) {
		t.Errorf("handled %d, stats %+v: want 5 delivered, 7 unhandled, 12 received", rec.count(), st)
	}
	if err := l.Stop(); err != nil {
		t.Errorf("Stop after Close: %v", err)
	}
}
