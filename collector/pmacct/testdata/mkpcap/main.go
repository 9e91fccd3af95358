// Command mkpcap writes the small, deterministic Ethernet pcaps the pmacct samples
// are made from, all between documentation prefixes (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) and starting 2024-01-01 00:00:00 UTC.
//
//	go run ./testdata/mkpcap traffic  > testdata/traffic.pcap
//	go run ./testdata/mkpcap netflow5 > testdata/netflow5.pcap
//
// traffic: IPv4 and IPv6 TCP, UDP, ICMP, a VLAN-tagged flow with a DSCP mark, GRE,
// SCTP and an unnamed protocol, over three minutes so that one-minute history bins
// differ. netflow5: two NetFlow v5 datagrams describing similar flows, for nfacctd's
// primitives (interfaces, ASNs, exporter, export protocol, flow start and end).
package main

import (
	"bufio"
	"encoding/binary"
	"net/netip"
	"os"
)

const t0 = 1704067200 // 2024-01-01T00:00:00Z

var (
	macA = []byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macB = []byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
	macC = []byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x0c}
)

type pkt struct {
	usec int64 // since t0
	data []byte
}

func main() {
	var ps []pkt
	switch {
	case len(os.Args) == 2 && os.Args[1] == "traffic":
		ps = traffic()
	case len(os.Args) == 2 && os.Args[1] == "netflow5":
		ps = netflow5()
	default:
		os.Stderr.WriteString("usage: mkpcap traffic|netflow5 > file.pcap\n")
		os.Exit(2)
	}
	writePcap(ps)
}

func traffic() []pkt {
	var ps []pkt
	add := func(ms int64, b []byte) { ps = append(ps, pkt{ms * 1000, b}) }

	c4 := netip.MustParseAddr("192.0.2.10")
	s4 := netip.MustParseAddr("198.51.100.20")
	dns := netip.MustParseAddr("203.0.113.53")
	c6 := netip.MustParseAddr("2001:db8::10")
	s6 := netip.MustParseAddr("2001:db8:1::20")

	// bin 00:00: an HTTP exchange, a DNS query, a ping
	const (
		fin = 0x01
		syn = 0x02
		psh = 0x08
		ack = 0x10
	)
	add(100, eth(macA, macB, 0, ipv4(c4, s4, 6, 0, 64, tcp(c4, s4, 49152, 80, syn, 0))))
	add(101, eth(macB, macA, 0, ipv4(s4, c4, 6, 0, 64, tcp(s4, c4, 80, 49152, syn|ack, 0))))
	add(102, eth(macA, macB, 0, ipv4(c4, s4, 6, 0, 64, tcp(c4, s4, 49152, 80, ack, 0))))
	add(103, eth(macA, macB, 0, ipv4(c4, s4, 6, 0, 64, tcp(c4, s4, 49152, 80, psh|ack, 100))))
	add(150, eth(macB, macA, 0, ipv4(s4, c4, 6, 0, 64, tcp(s4, c4, 80, 49152, psh|ack, 500))))
	add(151, eth(macB, macA, 0, ipv4(s4, c4, 6, 0, 64, tcp(s4, c4, 80, 49152, psh|ack, 1200))))
	add(152, eth(macA, macB, 0, ipv4(c4, s4, 6, 0, 64, tcp(c4, s4, 49152, 80, ack, 0))))
	add(200, eth(macA, macB, 0, ipv4(c4, s4, 6, 0, 64, tcp(c4, s4, 49152, 80, fin|ack, 0))))
	add(201, eth(macB, macA, 0, ipv4(s4, c4, 6, 0, 64, tcp(s4, c4, 80, 49152, fin|ack, 0))))
	add(202, eth(macA, macB, 0, ipv4(c4, s4, 6, 0, 64, tcp(c4, s4, 49152, 80, ack, 0))))
	add(5000, eth(macA, macC, 0, ipv4(c4, dns, 17, 0, 64, udp(c4, dns, 53000, 53, 40))))
	add(5003, eth(macC, macA, 0, ipv4(dns, c4, 17, 0, 64, udp(dns, c4, 53, 53000, 120))))
	add(10000, eth(macA, macB, 0, ipv4(c4, s4, 1, 0, 64, icmp4(8, 56))))
	add(10001, eth(macB, macA, 0, ipv4(s4, c4, 1, 0, 64, icmp4(0, 56))))

	// bin 00:01: IPv6 HTTPS, ICMPv6 echo, the ping again
	add(65000, eth(macA, macB, 0, ipv6(c6, s6, 6, tcp(c6, s6, 50000, 443, syn, 0))))
	add(65001, eth(macB, macA, 0, ipv6(s6, c6, 6, tcp(s6, c6, 443, 50000, syn|ack, 0))))
	add(65002, eth(macA, macB, 0, ipv6(c6, s6, 6, tcp(c6, s6, 50000, 443, ack, 0))))
	add(65003, eth(macA, macB, 0, ipv6(c6, s6, 6, tcp(c6, s6, 50000, 443, psh|ack, 517))))
	add(65040, eth(macB, macA, 0, ipv6(s6, c6, 6, tcp(s6, c6, 443, 50000, psh|ack, 1400))))
	add(66000, eth(macA, macB, 0, ipv6(c6, s6, 58, icmp6(c6, s6, 128, 56))))
	add(66001, eth(macB, macA, 0, ipv6(s6, c6, 58, icmp6(s6, c6, 129, 56))))
	add(70000, eth(macA, macB, 0, ipv4(c4, s4, 1, 0, 64, icmp4(8, 56))))
	add(70001, eth(macB, macA, 0, ipv4(s4, c4, 1, 0, 64, icmp4(0, 56))))

	// bin 00:02: voice on VLAN 100 (PCP 5, DSCP EF), GRE, SCTP, protocol 253
	rtpA := netip.MustParseAddr("192.0.2.30")
	rtpB := netip.MustParseAddr("198.51.100.40")
	for i := int64(0); i < 5; i++ {
		add(125000+20*i, eth(macA, macB, 100<<0|5<<13, ipv4(rtpA, rtpB, 17, 184, 64, udp(rtpA, rtpB, 5004, 5004, 172))))
	}
	greA, greB := netip.MustParseAddr("192.0.2.50"), netip.MustParseAddr("203.0.113.60")
	add(130000, eth(macA, macC, 0, ipv4(greA, greB, 47, 0, 64, make([]byte, 4+28))))
	scA, scB := netip.MustParseAddr("192.0.2.51"), netip.MustParseAddr("203.0.113.61")
	add(131000, eth(macA, macC, 0, ipv4(scA, scB, 132, 0, 64, sctp(36412, 36412))))
	exA, exB := netip.MustParseAddr("192.0.2.52"), netip.MustParseAddr("203.0.113.62")
	add(132000, eth(macA, macC, 0, ipv4(exA, exB, 253, 0, 64, make([]byte, 24))))
	return ps
}

// nfRecord is one NetFlow v5 flow record.
type nfRecord struct {
	src, dst, nexthop netip.Addr
	in, out           uint16
	packets, octets   uint32
	first, last       uint32 // sysUptime in ms
	sport, dport      uint16
	flags, proto, tos byte
	srcAS, dstAS      uint16
	srcMask, dstMask  byte
}

// netflow5 returns NetFlow v5 datagrams from 192.0.2.1 to a collector at 192.0.2.2:2055.
func netflow5() []pkt {
	exporter := netip.MustParseAddr("192.0.2.1")
	collector := netip.MustParseAddr("192.0.2.2")
	a := netip.MustParseAddr
	const uptime = 3600000 // ms at t0
	datagrams := [][]nfRecord{
		{
			{a("192.0.2.10"), a("198.51.100.20"), a("192.0.2.254"), 10, 20, 6, 340, uptime + 100, uptime + 202, 49152, 80, 0x1b, 6, 0, 64496, 64511, 24, 24},
			{a("198.51.100.20"), a("192.0.2.10"), a("192.0.2.253"), 20, 10, 4, 1860, uptime + 101, uptime + 201, 80, 49152, 0x1b, 6, 0, 64511, 64496, 24, 24},
			{a("192.0.2.10"), a("203.0.113.53"), a("192.0.2.254"), 10, 30, 1, 68, uptime + 5000, uptime + 5000, 53000, 53, 0, 17, 0, 64496, 64500, 24, 24},
		},
		{
			{a("192.0.2.30"), a("198.51.100.40"), a("192.0.2.254"), 11, 20, 5, 1000, uptime + 125000, uptime + 125080, 5004, 5004, 0, 17, 184, 64496, 64511, 26, 22},
			{a("192.0.2.10"), a("198.51.100.20"), a("192.0.2.254"), 10, 20, 1, 84, uptime + 70000, uptime + 70000, 0, 2048, 0, 1, 0, 64496, 64511, 24, 24},
		},
	}
	var ps []pkt
	seq := uint32(1000)
	for i, recs := range datagrams {
		ms := int64(60000 + 120000*i) // 00:01 and 00:03
		b := make([]byte, 24, 24+48*len(recs))
		binary.BigEndian.PutUint16(b[0:], 5)
		binary.BigEndian.PutUint16(b[2:], uint16(len(recs)))
		binary.BigEndian.PutUint32(b[4:], uint32(uptime+ms))
		binary.BigEndian.PutUint32(b[8:], uint32(t0+ms/1000))
		binary.BigEndian.PutUint32(b[16:], seq)
		b[20] = 1 // engine type
		b[21] = 7 // engine id
		seq += uint32(len(recs))
		for _, r := range recs {
			rec := make([]byte, 48)
			copy(rec[0:], r.src.AsSlice())
			copy(rec[4:], r.dst.AsSlice())
			copy(rec[8:], r.nexthop.AsSlice())
			binary.BigEndian.PutUint16(rec[12:], r.in)
			binary.BigEndian.PutUint16(rec[14:], r.out)
			binary.BigEndian.PutUint32(rec[16:], r.packets)
			binary.BigEndian.PutUint32(rec[20:], r.octets)
			binary.BigEndian.PutUint32(rec[24:], r.first)
			binary.BigEndian.PutUint32(rec[28:], r.last)
			binary.BigEndian.PutUint16(rec[32:], r.sport)
			binary.BigEndian.PutUint16(rec[34:], r.dport)
			rec[37] = r.flags
			rec[38] = r.proto
			rec[39] = r.tos
			binary.BigEndian.PutUint16(rec[40:], r.srcAS)
			binary.BigEndian.PutUint16(rec[42:], r.dstAS)
			rec[44] = r.srcMask
			rec[45] = r.dstMask
			b = append(b, rec...)
		}
		ps = append(ps, pkt{ms * 1000, eth(macA, macB, 0, ipv4(exporter, collector, 17, 0, 64, udp(exporter, collector, 50000, 2055, b)))})
	}
	return ps
}

func writePcap(ps []pkt) {
	w := bufio.NewWriter(os.Stdout)
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // Ethernet
	w.Write(hdr)
	for _, p := range ps {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[0:], uint32(t0+p.usec/1e6))
		binary.LittleEndian.PutUint32(rec[4:], uint32(p.usec%1e6))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(p.data)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(p.data)))
		w.Write(rec)
		w.Write(p.data)
	}
	if err := w.Flush(); err != nil {
		os.Exit(1)
	}
}

// eth frames payload; tci != 0 adds an 802.1Q tag.
func eth(src, dst []byte, tci uint16, payload []byte) []byte {
	b := append(append([]byte{}, dst...), src...)
	etype := uint16(0x0800)
	if payload[0]>>4 == 6 {
		etype = 0x86dd
	}
	if tci != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, tci)
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

func sum16(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

var ipID uint16 = 0x1000

func ipv4(src, dst netip.Addr, proto, tos, ttl byte, l4 []byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	h[1] = tos
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
	ipID++
	binary.BigEndian.PutUint16(h[4:], ipID)
	h[6] = 0x40 // don't fragment
	h[8] = ttl
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], fold(sum16(h, 0)))
	return append(h, l4...)
}

func ipv6(src, dst netip.Addr, next byte, l4 []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	h[6] = next
	h[7] = 64
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, l4...)
}

// pseudo returns the checksum of the pseudo-header for an upper-layer length.
func pseudo(src, dst netip.Addr, proto byte, n int) uint32 {
	var s uint32
	s = sum16(src.AsSlice(), s)
	s = sum16(dst.AsSlice(), s)
	return s + uint32(proto) + uint32(n)
}

func tcp(src, dst netip.Addr, sport, dport uint16, flags byte, n int) []byte {
	b := make([]byte, 20+n)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	if flags&0x10 != 0 {
		binary.BigEndian.PutUint32(b[8:], 2000)
	}
	b[12] = 5 << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 65535)
	for i := range n {
		b[20+i] = byte('a' + i%26)
	}
	binary.BigEndian.PutUint16(b[16:], fold(sum16(b, pseudo(src, dst, 6, len(b)))))
	return b
}

// udp returns a datagram with payload, or with n filler bytes when payload is an int.
func udp[P int | []byte](src, dst netip.Addr, sport, dport uint16, payload P) []byte {
	var b []byte
	switch p := any(payload).(type) {
	case int:
		b = make([]byte, 8+p)
	case []byte:
		b = append(make([]byte, 8, 8+len(p)), p...)
	}
	n := len(b) - 8
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+n))
	binary.BigEndian.PutUint16(b[6:], fold(sum16(b, pseudo(src, dst, 17, len(b)))))
	return b
}

func icmp4(typ byte, n int) []byte {
	b := make([]byte, 8+n)
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], 0x4242)
	binary.BigEndian.PutUint16(b[6:], 1)
	binary.BigEndian.PutUint16(b[2:], fold(sum16(b, 0)))
	return b
}

func icmp6(src, dst netip.Addr, typ byte, n int) []byte {
	b := make([]byte, 8+n)
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], 0x4242)
	binary.BigEndian.PutUint16(b[6:], 1)
	binary.BigEndian.PutUint16(b[2:], fold(sum16(b, pseudo(src, dst, 58, len(b)))))
	return b
}

func sctp(sport, dport uint16) []byte {
	b := make([]byte, 12+16)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = 1 // INIT chunk (checksum left zero: nobody here verifies CRC32c)
	binary.BigEndian.PutUint16(b[14:], 16)
	return b
}
