package datagram

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"

	"github.com/flowdex/flowdex/collector/pace"
)

// ReplayStats counts what a replay read. Packets = Datagrams + Skipped().
type ReplayStats struct {
	Packets   uint64 // packet records read from the capture
	Datagrams uint64 // UDP payloads handed to the handler
	Bytes     uint64 // their payload bytes

	SkippedLinkType  uint64 // link type not supported
	SkippedNotIP     uint64 // neither IPv4 nor IPv6 (ARP, LLDP...)
	SkippedNotUDP    uint64 // IP but not UDP (or an unknown IPv6 extension header)
	SkippedFragment  uint64 // IP fragments: not reassembled
	SkippedMalformed uint64 // headers cut short by the snap length or inconsistent
}

// Skipped returns the number of packets that were not delivered.
func (s ReplayStats) Skipped() uint64 {
	return s.SkippedLinkType + s.SkippedNotIP + s.SkippedNotUDP + s.SkippedFragment + s.SkippedMalformed
}

// Replay reads a pcap or pcapng file (either may be gzip-compressed) of exported
// datagrams and calls handler for each UDP payload, with Source the packet's
// IP source address and UDP source port and Received its capture timestamp.
// speed 0 replays as fast as possible, 1 at the recorded pace, 2 twice as
// fast, and so on. It stops at the end of the file, on a read error, or when
// ctx is done (returning ctx.Err()); the stats count what was read so far.
func Replay(ctx context.Context, path string, speed float64, handler Handler) (ReplayStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return ReplayStats{}, fmt.Errorf("datagram: replay: %w", err)
	}
	defer f.Close()
	st, err := ReplayReader(ctx, f, speed, handler)
	if err != nil {
		err = fmt.Errorf("datagram: replay %s: %w", path, err)
	}
	return st, err
}

// ReplayReader is Replay on a capture read from r.
func ReplayReader(ctx context.Context, r io.Reader, speed float64, handler Handler) (ReplayStats, error) {
	var st ReplayStats
	if handler == nil {
		return st, errors.New("nil handler")
	}
	if speed < 0 || math.IsNaN(speed) {
		return st, fmt.Errorf("replay speed %v, want 0 or more", speed)
	}
	cr, err := newCaptureReader(r)
	if err != nil {
		return st, err
	}
	var (
		d     Datagram
		done  = ctx.Done()
		pacer = pace.New(speed)
	)
	defer pacer.Stop()
	for {
		select {
		case <-done:
			return st, ctx.Err()
		default:
		}
		data, ts, link, err := cr.next()
		if err != nil {
			if err == io.EOF {
				return st, nil
			}
			return st, fmt.Errorf("packet %d: %w", st.Packets+1, err)
		}
		st.Packets++
		if !pacer.Wait(ctx, ts) {
			return st, ctx.Err()
		}
		payload, src, why := udpPayload(link, data)
		if why != delivered {
			st.count(why)
			continue
		}
		d.Payload, d.Source, d.Received = payload, src, ts
		handler(&d)
		st.Datagrams++
		st.Bytes += uint64(len(payload))
	}
}

// outcome is why a packet was or was not delivered.
type outcome uint8

const (
	delivered outcome = iota
	badLinkType
	notIP
	notUDP
	fragment
	malformed
)

func (st *ReplayStats) count(o outcome) {
	switch o {
	case badLinkType:
		st.SkippedLinkType++
	case notIP:
		st.SkippedNotIP++
	case notUDP:
		st.SkippedNotUDP++
	case fragment:
		st.SkippedFragment++
	case malformed:
		st.SkippedMalformed++
	}
}

// Link types (LINKTYPE_* of the pcap format; 12 and 14 are DLT_RAW values
// some writers store as they are).
const (
	linkNull     = 0
	linkEthernet = 1
	linkRawDLT12 = 12
	linkRawDLT14 = 14
	linkRaw      = 101
	linkLoop     = 108
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherVLAN  = 0x8100
	etherQinQ  = 0x88a8
	etherQinQ2 = 0x9100
)

// udpPayload finds the UDP payload of a captured frame and its source. The
// payload aliases data.
func udpPayload(link uint32, data []byte) ([]byte, netip.AddrPort, outcome) {
	var ip []byte
	switch link {
	case linkEthernet:
		if len(data) < 14 {
			return nil, netip.AddrPort{}, malformed
		}
		return etherPayload(binary.BigEndian.Uint16(data[12:14]), data[14:])
	case linkSLL:
		// Packet type, ARPHRD type, address length, 8 address bytes, protocol.
		if len(data) < 16 {
			return nil, netip.AddrPort{}, malformed
		}
		return etherPayload(binary.BigEndian.Uint16(data[14:16]), data[16:])
	case linkSLL2:
		// Protocol, reserved, ifindex, ARPHRD type, packet type, address length, 8 address bytes.
		if len(data) < 20 {
			return nil, netip.AddrPort{}, malformed
		}
		return etherPayload(binary.BigEndian.Uint16(data[0:2]), data[20:])
	case linkRaw, linkRawDLT12, linkRawDLT14, linkIPv4, linkIPv6:
		ip = data
	case linkNull, linkLoop:
		// A 4-byte address family: in the capturing host's byte order for
		// NULL, in network order for LOOP. Families are small numbers, so
		// the order that gives one wins.
		if len(data) < 4 {
			return nil, netip.AddrPort{}, malformed
		}
		family := binary.LittleEndian.Uint32(data)
		if family > 0xffff {
			family = binary.BigEndian.Uint32(data)
		}
		switch family {
		case 2: // AF_INET everywhere
		case 10, 24, 28, 30: // AF_INET6: Linux, BSDs, FreeBSD, Darwin
		default:
			return nil, netip.AddrPort{}, notIP
		}
		ip = data[4:]
	default:
		return nil, netip.AddrPort{}, badLinkType
	}
	return ipPayload(ip)
}

// etherPayload skips VLAN tags and returns the UDP payload of an IP packet.
func etherPayload(etherType uint16, data []byte) ([]byte, netip.AddrPort, outcome) {
	for etherType == etherVLAN || etherType == etherQinQ || etherType == etherQinQ2 {
		if len(data) < 4 {
			return nil, netip.AddrPort{}, malformed
		}
		etherType = binary.BigEndian.Uint16(data[2:4])
		data = data[4:]
	}
	if etherType != etherIPv4 && etherType != etherIPv6 {
		return nil, netip.AddrPort{}, notIP
	}
	return ipPayload(data)
}

func ipPayload(ip []byte) ([]byte, netip.AddrPort, outcome) {
	if len(ip) < 1 {
		return nil, netip.AddrPort{}, malformed
	}
	switch ip[0] >> 4 {
	case 4:
		return ipv4Payload(ip)
	case 6:
		return ipv6Payload(ip)
	}
	return nil, netip.AddrPort{}, notIP
}

func ipv4Payload(ip []byte) ([]byte, netip.AddrPort, outcome) {
	if len(ip) < 20 {
		return nil, netip.AddrPort{}, malformed
	}
	hlen := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if hlen < 20 || total < hlen || total > len(ip) {
		return nil, netip.AddrPort{}, malformed
	}
	// Total length also trims Ethernet padding.
	ip = ip[:total]
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		// More fragments set, or a non-zero offset.
		return nil, netip.AddrPort{}, fragment
	}
	if ip[9] != 17 {
		return nil, netip.AddrPort{}, notUDP
	}
	return udp(netip.AddrFrom4([4]byte(ip[12:16])), ip[hlen:])
}

func ipv6Payload(ip []byte) ([]byte, netip.AddrPort, outcome) {
	if len(ip) < 40 {
		return nil, netip.AddrPort{}, malformed
	}
	total := 40 + int(binary.BigEndian.Uint16(ip[4:6]))
	if total > len(ip) || total == 40 {
		// Cut short, or a jumbogram (payload length 0), which no exporter sends.
		return nil, netip.AddrPort{}, malformed
	}
	ip = ip[:total]
	src := netip.AddrFrom16([16]byte(ip[8:24])).Unmap()
	next, off := ip[6], 40
	for {
		switch next {
		case 17:
			return udp(src, ip[off:])
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if off+8 > len(ip) {
				return nil, netip.AddrPort{}, malformed
			}
			next, off = ip[off], off+(int(ip[off+1])+1)*8
		case 51: // authentication header
			if off+8 > len(ip) {
				return nil, netip.AddrPort{}, malformed
			}
			next, off = ip[off], off+(int(ip[off+1])+2)*4
		case 44:
			return nil, netip.AddrPort{}, fragment
		default:
			return nil, netip.AddrPort{}, notUDP
		}
		if off > len(ip) {
			return nil, netip.AddrPort{}, malformed
		}
	}
}

func udp(src netip.Addr, seg []byte) ([]byte, netip.AddrPort, outcome) {
	if len(seg) < 8 {
		return nil, netip.AddrPort{}, malformed
	}
	n := int(binary.BigEndian.Uint16(seg[4:6]))
	if n < 8 || n > len(seg) {
		return nil, netip.AddrPort{}, malformed
	}
	return seg[8:n], netip.AddrPortFrom(src, binary.BigEndian.Uint16(seg[0:2])), delivered
}
