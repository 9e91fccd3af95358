package datagram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowdex/flowdex/aggregate/ratelog"
	"github.com/flowdex/flowdex/aggregate/setting"
)

// Configuration of a Listener.
type Configuration struct {
	// Listen holds the addresses to bind: "0.0.0.0:2055", "[::]:2055",
	// "127.0.0.1:0", ":2055". An IPv6 wildcard is dual-stack (IPv4 exporters
	// arrive on it too) unless an IPv4 address with the same port is listed,
	// in which case it is IPv6-only so that both can bind. An empty host is
	// the IPv6 wildcard.
	Listen []string `toml:"listen,omitempty"`
	// Sockets is the number of SO_REUSEPORT sockets bound to each address,
	// each with its own read loop and worker. The kernel hashes an exporter's
	// address and port to one of them, which keeps its datagrams in order.
	Sockets int `toml:"sockets"`
	// ReadBuffer is the SO_RCVBUF size asked for each socket, in bytes; 0
	// keeps the system default. When net.core.rmem_max clamps it and the
	// process has CAP_NET_ADMIN, SO_RCVBUFFORCE is used instead.
	ReadBuffer int `toml:"read_buffer"`
	// QueueSize is the number of datagrams queued per socket between its read
	// loop and its worker. A datagram that finds the queue full is dropped and
	// counted, so that a slow handler never stalls the read loop (the kernel
	// buffer would then overflow, uncounted by us).
	QueueSize int `toml:"queue"`
	// MaxDatagram is the largest payload accepted, in bytes (at most 65535).
	// Buffers of this size are allocated as the queue fills, up to
	// QueueSize+2 per socket, and kept. Longer datagrams are counted as
	// truncated and dropped. Exporters keep below the path MTU, so the default
	// covers jumbo frames.
	MaxDatagram int `toml:"-"`
}

// DefaultConfiguration returns one socket per address, an 8 MiB receive
// buffer and a queue of 4096 datagrams. It listens nowhere: the protocol's
// port is the caller's to give.
func DefaultConfiguration() Configuration {
	return Configuration{
		Sockets:     1,
		ReadBuffer:  8 << 20,
		QueueSize:   4096,
		MaxDatagram: 9216,
	}
}

// Stats are the counters of a Listener. For every socket,
// Received = Delivered + Dropped + Truncated + Queued + Unhandled.
type Stats struct {
	Received    uint64 // datagrams read from the sockets
	Bytes       uint64 // their payload bytes (a truncated one counts MaxDatagram+1)
	Delivered   uint64 // datagrams the handler returned from
	Dropped     uint64 // queue full: the handler is too slow
	Truncated   uint64 // longer than MaxDatagram, dropped
	Unhandled   uint64 // read by Close after Drain: arrived when the handler took no more
	ReadErrors  uint64 // failed reads other than the socket being closed
	KernelDrops uint64 // dropped by the kernel before we read them (buffer full)
	Sockets     []SocketStats
}

// SocketStats are the counters of one socket.
type SocketStats struct {
	Addr       netip.AddrPort
	Received   uint64
	Bytes      uint64
	Delivered  uint64
	Dropped    uint64
	Truncated  uint64
	Unhandled  uint64
	ReadErrors uint64
	Queued     int // datagrams waiting for the worker
	// ReadBuffer is SO_RCVBUF as the kernel reports it (Linux reports twice
	// the size asked, the other half being its bookkeeping allowance).
	ReadBuffer int
	// KernelDrops and KernelQueued (bytes waiting in the socket buffer) come
	// from SO_MEMINFO on Linux; both stay 0 where it is not available. After
	// Close they hold the values read just before closing: KernelQueued is
	// then what arrived between Close's last read and the close, lost.
	KernelDrops  uint64
	KernelQueued uint64
}

// Listener receives datagrams on UDP sockets and hands them to a Handler.
type Listener struct {
	cfg     Configuration
	binds   []bind
	handler Handler
	logger  *slog.Logger

	mu      sync.Mutex
	state   int // stateNew, stateStarted, stateDrained, stateStopped
	sockets []*socket
	wg      sync.WaitGroup
}

const (
	stateNew = iota
	stateStarted
	stateDrained // read loops and workers ended, sockets still bound
	stateStopped
)

// drainFor bounds how long a read loop drains its socket buffer at Drain
// (and Close reads what came after), so that a flood cannot hold a stop
// forever: what is left is counted by Close (Unhandled, KernelDrops).
const drainFor = 2 * time.Second

// bind is one parsed Listen entry.
type bind struct {
	network string // udp4, udp6, or udp (dual-stack)
	addr    netip.AddrPort
	text    string
}

// New checks the configuration and returns an inert Listener.
func New(cfg Configuration, handler Handler, logger *slog.Logger) (*Listener, error) {
	if handler == nil {
		return nil, errors.New("datagram: nil handler")
	}
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("datagram: %w", err)
	}
	binds, _ := parseListen(cfg.Listen)
	cfg.Listen = append([]string(nil), cfg.Listen...)
	return &Listener{cfg: cfg, binds: binds, handler: handler, logger: logger}, nil
}

// Validate reports every setting New would refuse, each a setting.KeyError
// naming its key (MaxDatagram, not a key, is the program's own).
func (cfg Configuration) Validate() error {
	var errs []error
	if len(cfg.Listen) == 0 {
		errs = append(errs, setting.Errorf("listen", "no address (expected e.g. \"0.0.0.0:2100\" or \"[::]:2100\")"))
	} else if _, err := parseListen(cfg.Listen); err != nil {
		errs = append(errs, setting.Key("listen", err))
	}
	switch {
	case cfg.Sockets < 1:
		errs = append(errs, setting.Errorf("sockets", "%d, want at least 1", cfg.Sockets))
	case cfg.Sockets > 1 && !reusePortSupported:
		errs = append(errs, setting.Errorf("sockets", "%d needs SO_REUSEPORT, unsupported here", cfg.Sockets))
	}
	if cfg.QueueSize < 1 {
		errs = append(errs, setting.Errorf("queue", "%d, want at least 1", cfg.QueueSize))
	}
	if cfg.ReadBuffer < 0 {
		errs = append(errs, setting.Errorf("read_buffer", "%d, want 0 (the kernel's default) or more", cfg.ReadBuffer))
	}
	if cfg.MaxDatagram < 1 || cfg.MaxDatagram > 65535 {
		errs = append(errs, fmt.Errorf("MaxDatagram %d, want 1 to 65535", cfg.MaxDatagram))
	}
	return errors.Join(errs...)
}

func parseListen(list []string) ([]bind, error) {
	binds := make([]bind, 0, len(list))
	seen := make(map[netip.AddrPort]bool, len(list))
	v4ports := make(map[uint16]bool)
	for _, s := range list {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address and port (expected e.g. \"0.0.0.0:2100\" or \"[::]:2100\")", s)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q: bad port (expected 0 to 65535)", s)
		}
		addr := netip.IPv6Unspecified()
		if host != "" {
			if addr, err = netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("%q: the host is not an IP address (expected e.g. \"0.0.0.0:2100\" or \"[::]:2100\")", s)
			}
		}
		addr = addr.Unmap()
		ap := netip.AddrPortFrom(addr, uint16(p))
		if p != 0 && seen[ap] {
			return nil, fmt.Errorf("%q listed twice", s)
		}
		seen[ap] = true
		b := bind{network: "udp6", addr: ap, text: s}
		if addr.Is4() {
			b.network = "udp4"
			v4ports[uint16(p)] = true
		}
		binds = append(binds, b)
	}
	for i := range binds {
		b := &binds[i]
		if b.network == "udp6" && b.addr.Addr().IsUnspecified() && (b.addr.Port() == 0 || !v4ports[b.addr.Port()]) {
			// Go's "udp" network binds the IPv6 wildcard with IPV6_V6ONLY off.
			b.network = "udp"
		}
	}
	return binds, nil
}

// Start binds every socket and starts the read loops and workers. It fails,
// with nothing left bound, if any bind fails.
func (l *Listener) Start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateNew {
		return errors.New("datagram: listener already started or stopped")
	}
	var sockets []*socket
	fail := func(err error) error {
		for _, s := range sockets {
			s.conn.Close()
		}
		return err
	}
	for _, b := range l.binds {
		addr := b.addr
		for i := 0; i < l.cfg.Sockets; i++ {
			s, err := l.open(b.network, addr)
			if err != nil {
				return fail(fmt.Errorf("datagram: listen %s (socket %d of %d): %w", b.text, i+1, l.cfg.Sockets, err))
			}
			sockets = append(sockets, s)
			// The next sockets of the group join the port the first one got.
			addr = netip.AddrPortFrom(addr.Addr(), s.addr.Port())
		}
	}
	l.sockets = sockets
	l.state = stateStarted
	for _, s := range sockets {
		l.wg.Add(2)
		go func() {
			defer l.wg.Done()
			s.read()
		}()
		go func() {
			defer l.wg.Done()
			s.work(l.handler)
		}()
	}
	return nil
}

func (l *Listener) open(network string, addr netip.AddrPort) (*socket, error) {
	lc := net.ListenConfig{}
	if l.cfg.Sockets > 1 {
		lc.Control = reusePortControl
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	s := newSocket(local, l.cfg.QueueSize, l.cfg.MaxDatagram, l.logger)
	s.conn = conn
	if l.cfg.ReadBuffer > 0 {
		granted, forced, err := setReadBuffer(conn, l.cfg.ReadBuffer)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("set read buffer: %w", err)
		}
		s.readBuffer = granted
		if granted < l.cfg.ReadBuffer {
			l.logger.Warn("socket receive buffer smaller than configured; raise net.core.rmem_max",
				"addr", local.String(), "asked", l.cfg.ReadBuffer, "granted", granted)
		} else {
			l.logger.Debug("socket receive buffer", "addr", local.String(), "asked", l.cfg.ReadBuffer,
				"granted", granted, "forced", forced)
		}
	} else {
		s.readBuffer, _ = readBufferSize(conn)
	}
	return s, nil
}

// Addrs returns the bound address of each socket, ports resolved, in the
// order of Listen (Sockets entries per address); empty before Start.
func (l *Listener) Addrs() []netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	addrs := make([]netip.AddrPort, 0, len(l.sockets))
	for _, s := range l.sockets {
		addrs = append(addrs, s.addr)
	}
	return addrs
}

// Stop is Drain then Close. It may be called more than once.
func (l *Listener) Stop() error {
	l.Drain()
	return l.Close()
}

// Drain ends the reading: each read loop reads what the kernel has queued
// in its socket buffer (without waiting for more, for drainFor at most) and
// hands it to the handler, whose queued datagrams are all handled before
// Drain returns. The handler is not called afterwards. The sockets stay
// bound, so that senders are not refused while the caller writes out what
// the handler made; Close counts what arrives meanwhile. Drain may be
// called more than once.
func (l *Listener) Drain() {
	l.mu.Lock()
	if l.state != stateStarted {
		l.mu.Unlock()
		return
	}
	l.state = stateDrained
	for _, s := range l.sockets {
		s.draining.Store(true)
		// wakes a read loop waiting for data; it drains without deadlines
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	}
	if testHookStopping != nil {
		testHookStopping()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// Close reads and counts (as Unhandled) what reached the sockets since
// Drain, reads the kernel's counters and closes the sockets. Called without
// Drain, it drains first. Close may be called more than once.
func (l *Listener) Close() error {
	l.Drain()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != stateDrained {
		l.state = stateStopped
		return nil
	}
	l.state = stateStopped
	var errs []error
	for _, s := range l.sockets {
		s.countRest()
		s.snapshotKernel()
		if err := s.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("datagram: close %s: %w", s.addr, err))
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters, summed and per socket.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var st Stats
	st.Sockets = make([]SocketStats, 0, len(l.sockets))
	for _, s := range l.sockets {
		if l.state == stateStarted || l.state == stateDrained {
			s.snapshotKernel()
		}
		ss := s.stats()
		st.Received += ss.Received
		st.Bytes += ss.Bytes
		st.Delivered += ss.Delivered
		st.Dropped += ss.Dropped
		st.Truncated += ss.Truncated
		st.Unhandled += ss.Unhandled
		st.ReadErrors += ss.ReadErrors
		st.KernelDrops += ss.KernelDrops
		st.Sockets = append(st.Sockets, ss)
	}
	return st
}

// slot is a datagram buffer travelling from a read loop to its worker and back.
type slot struct {
	buf      []byte // MaxDatagram+1 bytes: a full read means truncated
	n        int
	src      netip.AddrPort
	received time.Time
}

// socket is one bound socket with its read loop and worker.
type socket struct {
	conn       *net.UDPConn
	addr       netip.AddrPort
	max        int
	readBuffer int
	logger     *slog.Logger

	queue chan *slot // read loop -> worker
	free  chan *slot // worker -> read loop
	slots int        // allocated so far; read loop only
	limit int        // QueueSize+2: enough that a free slot always comes back

	draining atomic.Bool // set by Drain: read what is queued, then end

	// Read loop only (then Close).
	errLog     ratelog.Limiter // read errors, every ten seconds at most
	truncSeen  bool
	received   atomic.Uint64
	bytes      atomic.Uint64
	dropped    atomic.Uint64
	truncated  atomic.Uint64
	unhandled  atomic.Uint64
	readErrors atomic.Uint64

	_         [64]byte // keep the worker's counter off the read loop's cache line
	delivered atomic.Uint64

	kernelDrops  atomic.Uint64
	kernelQueued atomic.Uint64
}

func newSocket(addr netip.AddrPort, queueSize, maxDatagram int, logger *slog.Logger) *socket {
	return &socket{
		errLog: ratelog.Limiter{Every: 10 * time.Second},
		addr:   addr,
		max:    maxDatagram,
		logger: logger,
		queue:  make(chan *slot, queueSize),
		free:   make(chan *slot, queueSize+2),
		limit:  queueSize + 2,
	}
}

// getSlot returns a free buffer, allocating one while fewer than limit exist.
// Buffers are queued (at most QueueSize), in the worker (one) or free, so
// once all exist the wait for a free one is at most a worker's hand-back.
func (s *socket) getSlot() *slot {
	select {
	case sl := <-s.free:
		return sl
	default:
	}
	if s.slots < s.limit {
		s.slots++
		return &slot{buf: make([]byte, s.max+1)}
	}
	return <-s.free
}

// enqueue hands a filled slot to the worker, or counts it dropped. It
// reports whether the slot was taken.
func (s *socket) enqueue(sl *slot) bool {
	select {
	case s.queue <- sl:
		return true
	default:
		s.dropped.Add(1)
		return false
	}
}

// Test hooks: before each read of a read loop, and once Stop has told the
// read loops to stop.
var testHookRead, testHookStopping func()

func (s *socket) read() {
	defer close(s.queue)
	var sl *slot
	for {
		if sl == nil {
			sl = s.getSlot()
		}
		if testHookRead != nil {
			testHookRead()
		}
		if s.draining.Load() {
			s.drain(sl)
			return
		}
		n, src, err := s.conn.ReadFromUDPAddrPort(sl.buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if s.draining.Load() {
				continue // Drain's deadline woke the read
			}
			s.readErrors.Add(1)
			s.logError(err)
			// A persistent error would otherwise spin a core.
			time.Sleep(time.Millisecond)
			continue
		}
		if s.accept(sl, n, src) && s.enqueue(sl) {
			sl = nil
		}
	}
}

// accept counts a datagram read into sl and fills in sl; false: it is too
// long, counted as truncated.
func (s *socket) accept(sl *slot, n int, src netip.AddrPort) bool {
	now := time.Now()
	s.received.Add(1)
	s.bytes.Add(uint64(n))
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if n > s.max {
		s.truncated.Add(1)
		if !s.truncSeen {
			s.truncSeen = true
			s.logger.Warn("datagram longer than max datagram dropped (counted as truncated; logged once per socket)",
				"addr", s.addr.String(), "source", src.String(), "max", s.max)
		}
		return false
	}
	sl.n, sl.src, sl.received = n, src, now
	return true
}

// drain reads, without waiting, what the socket buffer holds, for drainFor
// at most, and queues it for the worker, waiting for room rather than
// dropping: the stop may take the time the handler needs.
func (s *socket) drain(sl *slot) {
	deadline := time.Now().Add(drainFor)
	for time.Now().Before(deadline) {
		if sl == nil {
			sl = s.getSlot()
		}
		n, src, err := readNow(s.conn, sl.buf)
		if err != nil {
			if !errors.Is(err, errEmpty) {
				s.readErrors.Add(1)
				s.logError(err)
			}
			return
		}
		if s.accept(sl, n, src) {
			s.queue <- sl
			sl = nil
		}
	}
}

// countRest reads, without waiting, what reached the socket since Drain and
// counts it as Unhandled, for drainFor at most; Close then reads the
// kernel's counters, which hold what is left.
func (s *socket) countRest() {
	buf := make([]byte, s.max+1)
	deadline := time.Now().Add(drainFor)
	for time.Now().Before(deadline) {
		n, _, err := readNow(s.conn, buf)
		if err != nil {
			return
		}
		s.received.Add(1)
		s.bytes.Add(uint64(n))
		s.unhandled.Add(1)
	}
}

// logError logs read errors at most every ten seconds per socket.
func (s *socket) logError(err error) {
	if ok, n := s.errLog.Allow(); ok {
		s.logger.Warn("udp read failed", "addr", s.addr.String(), "error", err, "suppressed_since_last", n)
	}
}

func (s *socket) work(handler Handler) {
	d := new(Datagram)
	for sl := range s.queue {
		d.Payload, d.Source, d.Received = sl.buf[:sl.n], sl.src, sl.received
		handler(d)
		*d = Datagram{}
		s.delivered.Add(1)
		s.free <- sl
	}
}

func (s *socket) snapshotKernel() {
	if queued, drops, ok := kernelStats(s.conn); ok {
		s.kernelQueued.Store(queued)
		s.kernelDrops.Store(drops)
	}
}

func (s *socket) stats() SocketStats {
	return SocketStats{
		Addr:         s.addr,
		Received:     s.received.Load(),
		Bytes:        s.bytes.Load(),
		Delivered:    s.delivered.Load(),
		Dropped:      s.dropped.Load(),
		Truncated:    s.truncated.Load(),
		Unhandled:    s.unhandled.Load(),
		ReadErrors:   s.readErrors.Load(),
		Queued:       len(s.queue),
		ReadBuffer:   s.readBuffer,
		KernelDrops:  s.kernelDrops.Load(),
		KernelQueued: s.kernelQueued.Load(),
	}
}

// rawControl runs f on conn's descriptor.
func rawControl(conn syscall.Conn, f func(fd uintptr) error) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(fd) }); err != nil {
		return err
	}
	return ferr
}
