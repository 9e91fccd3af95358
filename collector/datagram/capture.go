package datagram

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// captureReader reads pcap (microsecond or nanosecond, either byte order,
// optionally gzip-compressed) and pcapng files. Packet data returned by next
// is only valid until the following call.
//
// It is hand-written rather than gopacket's pcapgo (v1.1.19), which uses more
// CPU per packet (BenchmarkCaptureRead: about 30% more on pcap, 13% on
// pcapng) and does not replay what this does: its layers.LinkType is a
// uint8, so LINKTYPE_LINUX_SLL2 (276, what tcpdump writes for "-i any") reads
// as 20; a pcapng cut in a block, or with a corrupt block length, reads as a
// clean end; an if_tsresol of 2^-64 or finer panics (division by zero); a
// corrupt packet length is allocated as it is, up to 4 GiB.
type captureReader struct {
	r   *bufio.Reader
	buf []byte
	ng  bool

	// pcap
	order  binary.ByteOrder
	nanos  bool
	link   uint32
	header [16]byte // a pcap record header, or the start of a pcapng block

	// pcapng: the current section's byte order and interfaces
	ifaces []ngInterface
	lastTS time.Time
}

type ngInterface struct {
	link     uint32
	snaplen  uint32
	perSec   uint64 // timestamp units per second
	offsetNS int64  // if_tsoffset, in nanoseconds
}

// maxRecord bounds a packet or block length so that a corrupt length cannot
// make us allocate gigabytes.
const maxRecord = 1 << 20

const (
	pcapMicros    = 0xa1b2c3d4
	pcapNanos     = 0xa1b23c4d
	ngSection     = 0x0a0d0d0a
	ngByteOrder   = 0x1a2b3c4d
	ngInterfaceID = 1
	ngObsolete    = 2
	ngSimple      = 3
	ngEnhanced    = 6
)

func newCaptureReader(r io.Reader) (*captureReader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("read capture header: %w", err)
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read gzip header: %w", err)
		}
		br = bufio.NewReaderSize(zr, 1<<16)
		if magic, err = br.Peek(4); err != nil {
			return nil, fmt.Errorf("read capture header: %w", err)
		}
	}
	c := &captureReader{r: br}
	if binary.BigEndian.Uint32(magic) == ngSection {
		c.ng = true
		return c, nil
	}
	var hdr [24]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	switch {
	case binary.LittleEndian.Uint32(hdr[:]) == pcapMicros:
		c.order = binary.LittleEndian
	case binary.LittleEndian.Uint32(hdr[:]) == pcapNanos:
		c.order, c.nanos = binary.LittleEndian, true
	case binary.BigEndian.Uint32(hdr[:]) == pcapMicros:
		c.order = binary.BigEndian
	case binary.BigEndian.Uint32(hdr[:]) == pcapNanos:
		c.order, c.nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("not a pcap or pcapng file (magic %#08x)", binary.BigEndian.Uint32(hdr[:]))
	}
	if major := c.order.Uint16(hdr[4:]); major != 2 {
		return nil, fmt.Errorf("pcap version %d not supported", major)
	}
	// The upper bits of the link type field carry FCS information.
	c.link = c.order.Uint32(hdr[20:]) & 0xffff
	return c, nil
}

// next returns the next packet, its timestamp and link type, or io.EOF.
func (c *captureReader) next() (data []byte, ts time.Time, link uint32, err error) {
	if c.ng {
		return c.nextNg()
	}
	if _, err := io.ReadFull(c.r, c.header[:]); err != nil {
		return nil, time.Time{}, 0, err
	}
	sec := c.order.Uint32(c.header[0:])
	frac := c.order.Uint32(c.header[4:])
	capLen := c.order.Uint32(c.header[8:])
	if capLen > maxRecord {
		return nil, time.Time{}, 0, fmt.Errorf("packet length %d: corrupt pcap", capLen)
	}
	if !c.nanos {
		frac *= 1000
	}
	data = c.grow(int(capLen))
	if _, err := io.ReadFull(c.r, data); err != nil {
		return nil, time.Time{}, 0, unexpected(err)
	}
	return data, time.Unix(int64(sec), int64(frac)), c.link, nil
}

func (c *captureReader) grow(n int) []byte {
	if cap(c.buf) < n {
		c.buf = make([]byte, n, max(n, 2*cap(c.buf), 2048))
	}
	return c.buf[:n]
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (c *captureReader) nextNg() ([]byte, time.Time, uint32, error) {
	for {
		head := c.header[:8]
		if _, err := io.ReadFull(c.r, head); err != nil {
			return nil, time.Time{}, 0, err
		}
		if binary.BigEndian.Uint32(head) == ngSection {
			// A section header sets the byte order of what follows.
			bom, err := c.r.Peek(4)
			if err != nil {
				return nil, time.Time{}, 0, unexpected(err)
			}
			switch {
			case binary.LittleEndian.Uint32(bom) == ngByteOrder:
				c.order = binary.LittleEndian
			case binary.BigEndian.Uint32(bom) == ngByteOrder:
				c.order = binary.BigEndian
			default:
				return nil, time.Time{}, 0, errors.New("pcapng section header: bad byte-order magic")
			}
			c.ifaces = c.ifaces[:0]
		} else if c.order == nil {
			return nil, time.Time{}, 0, errors.New("pcapng: block before the section header")
		}
		kind := c.order.Uint32(head[0:])
		total := c.order.Uint32(head[4:])
		if total < 12 || total%4 != 0 || total > maxRecord {
			return nil, time.Time{}, 0, fmt.Errorf("pcapng block length %d: corrupt file", total)
		}
		// Body and the trailing copy of the length.
		block := c.grow(int(total) - 8)
		if _, err := io.ReadFull(c.r, block); err != nil {
			return nil, time.Time{}, 0, unexpected(err)
		}
		body := block[:len(block)-4]
		switch kind {
		case ngInterfaceID:
			if err := c.addInterface(body); err != nil {
				return nil, time.Time{}, 0, err
			}
		case ngEnhanced, ngObsolete:
			var id uint32
			var rest []byte
			if kind == ngEnhanced {
				if len(body) < 20 {
					return nil, time.Time{}, 0, errors.New("pcapng packet block too short")
				}
				id, rest = c.order.Uint32(body), body[4:]
			} else {
				if len(body) < 20 {
					return nil, time.Time{}, 0, errors.New("pcapng packet block too short")
				}
				id, rest = uint32(c.order.Uint16(body)), body[4:]
			}
			if id >= uint32(len(c.ifaces)) {
				return nil, time.Time{}, 0, fmt.Errorf("pcapng packet on undeclared interface %d", id)
			}
			iface := &c.ifaces[id]
			stamp := uint64(c.order.Uint32(rest))<<32 | uint64(c.order.Uint32(rest[4:]))
			capLen := c.order.Uint32(rest[8:])
			data := rest[16:]
			if uint64(capLen) > uint64(len(data)) {
				return nil, time.Time{}, 0, fmt.Errorf("pcapng packet length %d beyond its block", capLen)
			}
			c.lastTS = iface.time(stamp)
			return data[:capLen], c.lastTS, iface.link, nil
		case ngSimple:
			// No timestamp: keep the previous one so that pacing does not jump.
			if len(c.ifaces) == 0 || len(body) < 4 {
				return nil, time.Time{}, 0, errors.New("pcapng simple packet block without interface")
			}
			n := min(uint64(c.order.Uint32(body)), uint64(len(body)-4))
			if s := c.ifaces[0].snaplen; s != 0 {
				n = min(n, uint64(s))
			}
			return body[4 : 4+n], c.lastTS, c.ifaces[0].link, nil
		}
	}
}

func (c *captureReader) addInterface(body []byte) error {
	if len(body) < 8 {
		return errors.New("pcapng interface block too short")
	}
	iface := ngInterface{
		link:    uint32(c.order.Uint16(body)),
		snaplen: c.order.Uint32(body[4:]),
		perSec:  1_000_000,
	}
	for opts := body[8:]; len(opts) >= 4; {
		code, n := c.order.Uint16(opts), int(c.order.Uint16(opts[2:]))
		if code == 0 || 4+n > len(opts) {
			break
		}
		val := opts[4 : 4+n]
		switch {
		case code == 9 && n >= 1: // if_tsresol
			v := val[0]
			if v&0x80 != 0 {
				if v&0x7f > 63 {
					return fmt.Errorf("pcapng timestamp resolution 2^-%d not supported", v&0x7f)
				}
				iface.perSec = 1 << (v & 0x7f)
			} else {
				if v > 19 {
					return fmt.Errorf("pcapng timestamp resolution 10^-%d not supported", v)
				}
				iface.perSec = 1
				for range v {
					iface.perSec *= 10
				}
			}
		case code == 14 && n >= 8: // if_tsoffset, seconds
			iface.offsetNS = int64(c.order.Uint64(val)) * int64(time.Second)
		}
		adv := 4 + (n+3)&^3
		if adv > len(opts) {
			break
		}
		opts = opts[adv:]
	}
	c.ifaces = append(c.ifaces, iface)
	return nil
}

func (i *ngInterface) time(stamp uint64) time.Time {
	sec, rem := stamp/i.perSec, stamp%i.perSec
	hi, lo := bits.Mul64(rem, uint64(time.Second))
	nsec, _ := bits.Div64(hi, lo, i.perSec)
	return time.Unix(int64(sec), int64(nsec)+i.offsetNS)
}
