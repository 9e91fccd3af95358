package datagram

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// BenchmarkHandoff measures the read loop's side of one datagram (take a
// buffer, fill it, queue it) with a worker running a trivial handler on the
// other side: the per-datagram cost of the queue. "delivered" waits when the
// queue is full, so every datagram reaches the handler; "overload" drops as
// the read loop does, and reports the share dropped.
func BenchmarkHandoff(b *testing.B) {
	for _, retry := range []bool{true, false} {
		name := "overload"
		if retry {
			name = "delivered"
		}
		b.Run(name, func(b *testing.B) {
			var handled atomic.Uint64
			s := newSocket(netip.MustParseAddrPort("127.0.0.1:2055"), 4096, 1500, quiet)
			done := make(chan struct{})
			go func() {
				s.work(func(d *Datagram) { handled.Add(1) })
				close(done)
			}()
			src := netip.MustParseAddrPort("192.0.2.1:40000")
			var sl *slot
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if sl == nil {
					sl = s.getSlot()
				}
				sl.n, sl.src, sl.received = 1400, src, time.Time{}
				if retry {
					// As enqueue, minus the drop: wait for room.
					s.queue <- sl
					sl = nil
				} else if s.enqueue(sl) {
					sl = nil
				}
			}
			close(s.queue)
			<-done
			b.StopTimer()
			if retry && handled.Load() != uint64(b.N) {
				b.Fatalf("handled %d of %d", handled.Load(), b.N)
			}
			b.ReportMetric(float64(s.dropped.Load())/float64(b.N), "dropped/op")
		})
	}
}

// replayFixture is a pcap of n Ethernet/IPv4/UDP frames with 1400-byte payloads.
func replayFixture(b *testing.B, n int) []byte {
	frame := serialize(b, ether(layers.EthernetTypeIPv4), ip4("192.0.2.1", layers.IPProtocolUDP), udpLayer(40000),
		gopacket.Payload(bytes.Repeat([]byte{0, 10}, 700)))
	frames := make([][]byte, n)
	stamps := make([]time.Time, n)
	for i := range frames {
		frames[i] = frame
		stamps[i] = time.Unix(1_700_000_000, int64(i)*1000)
	}
	return pcapFile(binary.LittleEndian, false, 1, 65535, frames, stamps)
}

// BenchmarkReplay replays a 1000-datagram pcap from memory; allocs/op are
// per replay (reader set-up), not per datagram.
func BenchmarkReplay(b *testing.B) {
	const n = 1000
	data := replayFixture(b, n)
	var sum int
	h := func(d *Datagram) { sum += len(d.Payload) }
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := ReplayReader(context.Background(), bytes.NewReader(data), 0, h)
		if err != nil || st.Datagrams != n {
			b.Fatal(st, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "datagrams/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/datagram")
}

// BenchmarkUDPPayload is the per-packet header walk of a replay.
func BenchmarkUDPPayload(b *testing.B) {
	frame := serialize(b, ether(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv6},
		ip6("2001:db8::1", layers.IPProtocolUDP), udpLayer(4739), gopacket.Payload(make([]byte, 1400)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, o := udpPayload(linkEthernet, frame); o != delivered {
			b.Fatal(o)
		}
	}
}

// BenchmarkLoopback sends 1400-byte datagrams over loopback to a Listener
// and waits until each was read. Noisy (the sender shares the two cores);
// allocs/op include the sender's.
func BenchmarkLoopback(b *testing.B) {
	var handled atomic.Uint64
	cfg := DefaultConfiguration()
	cfg.Listen = []string{"127.0.0.1:0"}
	l, err := New(cfg, func(d *Datagram) { handled.Add(1) }, quiet)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Start(); err != nil {
		b.Fatal(err)
	}
	defer l.Stop()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	to := l.Addrs()[0]
	payload := make([]byte, 1400)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.WriteToUDPAddrPort(payload, to); err != nil {
			b.Fatal(err)
		}
		// Keep the kernel buffer from overflowing: at most 256 in flight.
		if i%256 == 255 {
			for {
				st := l.Stats()
				if st.Received+st.KernelDrops >= uint64(i+1) {
					break
				}
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := l.Stats()
		if st.Received+st.KernelDrops >= uint64(b.N) || time.Now().After(deadline) {
			b.StopTimer()
			b.ReportMetric(float64(st.KernelDrops+st.Dropped)/float64(b.N), "lost/op")
			return
		}
		time.Sleep(10 * time.Microsecond)
	}
}
