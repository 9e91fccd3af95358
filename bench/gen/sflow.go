package gen

import (
	"encoding/binary"
	"io"
	"time"
)

// SFlow describes an sFlow v5 export: flow samples, each with one raw
// Ethernet/IPv4/TCP-or-UDP header.
type SFlow struct {
	Samples     int
	Keys        int
	PerDatagram int // samples per datagram (8 fit a 1500-byte MTU with 64-byte headers)
	Rate        uint32
	Seed        uint64
}

// WriteSFlow writes the export as a pcap of datagrams from agent 192.0.2.2 to
// 127.0.0.1:6343 and returns its totals: one packet per sample, bytes the
// sampled frames' lengths (what sfacctd and flowdex count, not renormalised).
func WriteSFlow(out io.Writer, c SFlow) (Totals, error) {
	w, err := newUDPWriter(out, [4]byte{192, 0, 2, 2}, 6343)
	if err != nil {
		return Totals{}, err
	}
	r := rng(c.Seed)
	be := binary.BigEndian
	var t Totals
	var b, hdr []byte
	var sampleSeq uint32
	for d := 0; int(t.Records) < c.Samples; d++ {
		at := Start.Add(time.Duration(d) * 20 * time.Microsecond) // see WriteNetFlow
		n := min(c.PerDatagram, c.Samples-int(t.Records))
		b = b[:0]
		b = be.AppendUint32(b, 5) // version
		b = be.AppendUint32(b, 1) // agent address: IPv4
		b = append(b, 192, 0, 2, 2)
		b = be.AppendUint32(b, 0) // sub-agent
		b = be.AppendUint32(b, uint32(d))
		b = be.AppendUint32(b, uint32(3_600_000+d/50)) // uptime ms
		b = be.AppendUint32(b, uint32(n))
		for range n {
			k := keyOf(r.IntN(c.Keys))
			frame := 64 + r.IntN(1455) // the sampled frame's length
			hdr = sampledHeader(hdr[:0], k, frame)
			sampleSeq++
			start := len(b)
			b = be.AppendUint32(b, 1) // flow sample
			b = be.AppendUint32(b, 0) // length, set below
			b = be.AppendUint32(b, sampleSeq)
			b = be.AppendUint32(b, k.inIface) // source id: ifIndex
			b = be.AppendUint32(b, c.Rate)
			b = be.AppendUint32(b, sampleSeq*c.Rate) // sample pool
			b = be.AppendUint32(b, 0)                // drops
			b = be.AppendUint32(b, k.inIface)
			b = be.AppendUint32(b, k.outIfce)
			b = be.AppendUint32(b, 1) // one record
			b = be.AppendUint32(b, 1) // raw packet header
			b = be.AppendUint32(b, uint32(16+len(hdr)))
			b = be.AppendUint32(b, 1) // Ethernet
			b = be.AppendUint32(b, uint32(frame))
			b = be.AppendUint32(b, 4) // stripped: the FCS
			b = be.AppendUint32(b, uint32(len(hdr)))
			b = append(b, hdr...) // 64 bytes: a multiple of 4
			be.PutUint32(b[start+4:], uint32(len(b)-start-8))
			t.Records++
			t.Packets++
			t.Bytes += int64(frame)
		}
		if err := w.write(at, b); err != nil {
			return t, err
		}
	}
	return t, w.flush()
}

// sampledHeader is the first 64 bytes of a frame of the given length
// carrying k: Ethernet, IPv4, then TCP or UDP (and payload bytes).
func sampledHeader(b []byte, k key, frame int) []byte {
	be := binary.BigEndian
	b = append(b, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00)
	ipLen := frame - 14
	b = append(b, 0x45, k.tos, byte(ipLen>>8), byte(ipLen), 0, 0, 0x40, 0, 64, k.proto, 0, 0)
	b = append(b, k.src[:]...)
	b = append(b, k.dst[:]...)
	b = be.AppendUint16(b, k.sport)
	b = be.AppendUint16(b, k.dport)
	if k.proto == 6 {
		b = append(b, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0) // seq, ack, offset 5, ACK
	} else {
		b = append(b, byte((ipLen-20)>>8), byte(ipLen-20), 0, 0)
	}
	for len(b) < 64 {
		b = append(b, 'x')
	}
	return b
}
