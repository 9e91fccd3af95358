// Package gen writes the benchmark inputs: deterministic (seeded) exports of
// NetFlow v9, IPFIX and sFlow v5 as pcaps of UDP datagrams, raw traffic
// pcaps and pmacct print-plugin JSON. Each generator returns the totals the
// tools must find in it, so that a fast wrong answer is caught.
package gen

import (
	"bufio"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Totals is what an input holds: records (flows, samples or packets) and the
// packets and bytes the collectors must count.
type Totals struct {
	Records, Packets, Bytes int64
}

// Start is the time of every generated input: 2024-01-01 00:00:00 UTC.
var Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// key is one of the pool of distinct 5-tuples (plus ToS) flows are drawn from.
type key struct {
	src, dst         [4]byte
	sport, dport     uint16
	proto, tos       uint8
	inIface, outIfce uint32
}

func keyOf(i int) key {
	k := key{
		src:   [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)},
		dst:   [4]byte{198, 51, 100, byte(i % 251)},
		sport: uint16(1024 + i%60000), dport: [...]uint16{443, 80, 53, 123, 22}[i%5],
		proto: 6, tos: uint8(i%4) << 3, inIface: uint32(1 + i%8), outIfce: uint32(9 + i%8),
	}
	if k.dport == 53 || k.dport == 123 {
		k.proto = 17
	}
	return k
}

// udpWriter writes Ethernet/IPv4/UDP frames from exporter:port to
// 127.0.0.1:dport into a pcap.
type udpWriter struct {
	w       *pcapgo.Writer
	bw      *bufio.Writer
	frame   []byte
	src     [4]byte
	dport   uint16
	ipID    uint16
	written int
}

func newUDPWriter(out io.Writer, exporter [4]byte, dport uint16) (*udpWriter, error) {
	bw := bufio.NewWriterSize(out, 1<<20)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	return &udpWriter{w: w, bw: bw, src: exporter, dport: dport}, nil
}

func (u *udpWriter) write(at time.Time, payload []byte) error {
	f := u.frame[:0]
	f = append(f, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00) // Ethernet
	ipLen := 20 + 8 + len(payload)
	u.ipID++
	f = append(f, 0x45, 0, byte(ipLen>>8), byte(ipLen), byte(u.ipID>>8), byte(u.ipID), 0x40, 0, 64, 17, 0, 0)
	f = append(f, u.src[:]...)
	f = append(f, 127, 0, 0, 1)
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(f[i])<<8 | uint32(f[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(f[24:], ^uint16(sum))
	udpLen := 8 + len(payload)
	f = append(f, 0x08, 0x07, byte(u.dport>>8), byte(u.dport), byte(udpLen>>8), byte(udpLen), 0, 0) // from port 2055
	f = append(f, payload...)
	u.frame = f
	u.written++
	return u.w.WritePacket(captureInfo(at, len(f)), f)
}

func (u *udpWriter) flush() error { return u.bw.Flush() }

// rng is the seeded generator every input draws from.
func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x5eed)) }

func captureInfo(at time.Time, n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: at, CaptureLength: n, Length: n}
}
