package gen

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// NetFlow describes a NetFlow v9 or IPFIX export.
type NetFlow struct {
	Version       int // 9 or 10 (IPFIX)
	Records       int // flow records in all
	Keys          int // distinct 5-tuples they are drawn from
	PerDatagram   int // records per datagram (25 fills a 1500-byte MTU)
	TemplateEvery int // the template is sent first and again every N datagrams
	Seed          uint64
	// Distinct draws no key twice: record i has key i (Keys is ignored).
	Distinct bool
	// Exporters sends from 192.0.2.1 and the next Exporters-1 addresses,
	// each in turn for TemplateEvery datagrams, its template first (0: one).
	Exporters int
	// Routed spreads the keys' addresses over the IPv4 unicast space, as
	// route lookups meet them, instead of 10/8 and 198.51.100/24.
	Routed bool
}

// v9 fields: source and destination address, ports, protocol, ToS, input and
// output ifIndex, packets, bytes; then the flow times (v9: uptime ms, IPFIX:
// flowStart/EndMilliseconds).
var nfFields = [][2]uint16{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {5, 1}, {10, 4}, {14, 4}, {2, 4}, {1, 4}}

const templateID = 256

// WriteNetFlow writes the export as a pcap of datagrams from 192.0.2.1:2055
// (and the next addresses, Exporters) to 127.0.0.1:2100, 20 µs apart (pmacct replays a savefile at its recorded
// pace), and returns its totals.
func WriteNetFlow(out io.Writer, c NetFlow) (Totals, error) {
	if c.Version != 9 && c.Version != 10 {
		return Totals{}, fmt.Errorf("gen: NetFlow version %d (want 9 or 10)", c.Version)
	}
	w, err := newUDPWriter(out, [4]byte{192, 0, 2, 1}, 2100)
	if err != nil {
		return Totals{}, err
	}
	r := rng(c.Seed)
	be := binary.BigEndian
	var t Totals
	var b []byte
	seqs := make([]uint32, max(c.Exporters, 1)) // each exporter's sequence
	for d := 0; int(t.Records) < c.Records; d++ {
		exporter := d / c.TemplateEvery % len(seqs)
		w.src[3] = byte(1 + exporter)
		seq := &seqs[exporter]
		at := Start.Add(time.Duration(d) * 20 * time.Microsecond)
		uptime := uint32(3_600_000 + d/50) // an hour since the exporter's boot, in ms
		n := min(c.PerDatagram, c.Records-int(t.Records))
		withTemplate := d%c.TemplateEvery == 0
		b = b[:0]
		if c.Version == 9 {
			count := n
			if withTemplate {
				count++
			}
			b = be.AppendUint16(b, 9)
			b = be.AppendUint16(b, uint16(count))
			b = be.AppendUint32(b, uptime)
			b = be.AppendUint32(b, uint32(at.Unix()))
			b = be.AppendUint32(b, *seq)
			b = be.AppendUint32(b, 1) // source id
		} else {
			b = be.AppendUint16(b, 10)
			b = be.AppendUint16(b, 0) // length, set below
			b = be.AppendUint32(b, uint32(at.Unix()))
			b = be.AppendUint32(b, *seq)
			b = be.AppendUint32(b, 1) // observation domain
		}
		if withTemplate {
			setID := uint16(0)
			if c.Version == 10 {
				setID = 2
			}
			nf := len(nfFields) + 2
			b = be.AppendUint16(b, setID)
			b = be.AppendUint16(b, uint16(4+4+4*nf))
			b = be.AppendUint16(b, templateID)
			b = be.AppendUint16(b, uint16(nf))
			for _, f := range nfFields {
				b = be.AppendUint16(b, f[0])
				b = be.AppendUint16(b, f[1])
			}
			if c.Version == 9 {
				b = append(b, 0, 22, 0, 4, 0, 21, 0, 4) // FIRST_SWITCHED, LAST_SWITCHED
			} else {
				b = append(b, 0, 152, 0, 8, 0, 153, 0, 8) // flowStart/EndMilliseconds
			}
		}
		set := len(b)
		b = be.AppendUint16(b, templateID)
		b = be.AppendUint16(b, 0) // length, set below
		for range n {
			var k key
			if c.Distinct {
				k = keyOf(int(t.Records))
			} else {
				k = keyOf(r.IntN(c.Keys))
			}
			if c.Routed {
				k.src, k.dst = routed(k.src), routed(k.dst)
			}
			packets := uint32(1 + r.IntN(20))
			bytes := packets * uint32(40+r.IntN(1460))
			b = append(b, k.src[:]...)
			b = append(b, k.dst[:]...)
			b = be.AppendUint16(b, k.sport)
			b = be.AppendUint16(b, k.dport)
			b = append(b, k.proto, k.tos)
			b = be.AppendUint32(b, k.inIface)
			b = be.AppendUint32(b, k.outIfce)
			b = be.AppendUint32(b, packets)
			b = be.AppendUint32(b, bytes)
			if c.Version == 9 {
				b = be.AppendUint32(b, uptime-1000)
				b = be.AppendUint32(b, uptime-100)
			} else {
				ms := uint64(at.UnixMilli())
				b = be.AppendUint64(b, ms-1000)
				b = be.AppendUint64(b, ms-100)
			}
			t.Records++
			t.Packets += int64(packets)
			t.Bytes += int64(bytes)
		}
		for (len(b)-set)%4 != 0 {
			b = append(b, 0)
		}
		be.PutUint16(b[set+2:], uint16(len(b)-set))
		if c.Version == 10 {
			be.PutUint16(b[2:], uint16(len(b)))
			*seq += uint32(n) // IPFIX counts data records
		} else {
			*seq++ // v9 counts datagrams
		}
		if err := w.write(at, b); err != nil {
			return t, err
		}
	}
	return t, w.flush()
}

// routed maps an address onto 1.0.0.0 to 223.255.255.255 by a fixed hash,
// so that the keys' addresses fall in routes all over a full table.
func routed(a [4]byte) [4]byte {
	v := binary.BigEndian.Uint32(a[:])
	v *= 0x9e3779b1
	v ^= v >> 15
	v = 0x01000000 + v%(0xe0000000-0x01000000)
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], v)
	return out
}
