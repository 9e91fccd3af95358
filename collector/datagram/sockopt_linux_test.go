package datagram

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// canForce reports whether this process may use SO_RCVBUFFORCE.
func canForce(t *testing.T) bool {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = rawControl(c, func(fd uintptr) error {
		return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20)
	})
	return err == nil
}

func rmemMax(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReadBuffer(t *testing.T) {
	limit, force := rmemMax(t), canForce(t)
	for _, size := range []int{64 << 10, 4 * limit} {
		cfg := testConfig("127.0.0.1:0")
		cfg.ReadBuffer = size
		l := start(t, cfg, func(*Datagram) {})
		granted := l.Stats().Sockets[0].ReadBuffer
		// Linux doubles the size it was asked for (and clamps the request to
		// rmem_max without SO_RCVBUFFORCE).
		want := 2 * size
		if !force {
			want = 2 * min(size, limit)
		}
		if granted != want {
			t.Errorf("asked %d (rmem_max %d, force %v): granted %d, want %d", size, limit, force, granted, want)
		}
	}
}

// TestKernelStats fills a socket nobody reads and expects SO_MEMINFO to show
// the bytes waiting and the datagrams the kernel dropped.
func TestKernelStats(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	queued, drops, ok := kernelStats(c)
	if !ok || queued != 0 || drops != 0 {
		t.Fatalf("idle socket: queued %d, drops %d, ok %v", queued, drops, ok)
	}
	s := client(t, "127.0.0.1:0")
	payload := make([]byte, 1000)
	for i := 0; i < 100; i++ {
		if _, err := s.WriteToUDPAddrPort(payload, c.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
	}
	queued, drops, ok = kernelStats(c)
	if !ok || queued == 0 || drops == 0 {
		t.Errorf("full socket: queued %d, drops %d, ok %v; want both > 0", queued, drops, ok)
	}
	c.Close()
	if _, _, ok := kernelStats(c); ok {
		t.Error("stats from a closed socket")
	}
}
