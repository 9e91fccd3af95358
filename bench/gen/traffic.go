package gen

import (
	"bufio"
	"encoding/binary"
	"io"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Traffic describes a raw packet capture: Ethernet/IPv4 TCP and UDP packets
// between a pool of 5-tuples, 2 µs apart (pmacctd replays at the recorded pace).
type Traffic struct {
	Packets int
	Keys    int
	Seed    uint64
}

// WriteTraffic writes the capture (64-byte snapshots of frames of random
// length, as a headers-only capture keeps them) and returns its totals:
// packets, and bytes as IP lengths (what pmacctd and flowdex count).
func WriteTraffic(out io.Writer, c Traffic) (Totals, error) {
	bw := bufio.NewWriterSize(out, 1<<20)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return Totals{}, err
	}
	r := rng(c.Seed)
	var t Totals
	var b []byte
	for i := range c.Packets {
		k := keyOf(r.IntN(c.Keys))
		frame := 64 + r.IntN(1455)
		b = sampledHeader(b[:0], k, frame)
		var sum uint32
		for j := 14; j < 34; j += 2 {
			sum += uint32(b[j])<<8 | uint32(b[j+1])
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(b[24:], ^uint16(sum))
		ci := captureInfo(Start.Add(time.Duration(i)*2*time.Microsecond), len(b))
		ci.Length = frame
		if err := w.WritePacket(ci, b); err != nil {
			return t, err
		}
		t.Records++
		t.Packets++
		t.Bytes += int64(frame - 14)
	}
	return t, bw.Flush()
}
