// Command mkpcap writes traffic.pcap, the packets the exporter golden tests feed
// to softflowd and pmacctd: a few minutes of Ethernet traffic between
// documentation prefixes (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32), starting 2024-01-01 00:00:00 UTC. It is deterministic:
//
//	go run ./testdata/exporters/mkpcap > testdata/exporters/traffic.pcap
//	go run ./testdata/exporters/mkpcap -host > testdata/exporters/host.pcap
//
// What is in it, and why:
//   - several hosts, IPv4 and IPv6, TCP (closed by FIN and by RST), UDP, ICMP
//     echo and unreachable, ICMPv6 echo, GRE: the primitives of every protocol;
//   - 802.1Q VLANs 10 and 20 with a priority, DSCP marks on IPv4 and IPv6: L2
//     primitives and tos;
//   - flows in four different minutes, one crossing a minute boundary and some
//     starting exactly on one: one-minute history bins and pmacct's edge quirk;
//   - more flows than one NetFlow v5 datagram holds, alternating IPv4 and IPv6
//     so that NetFlow v9 exporters write many small FlowSets per datagram.
//
// host.pcap (-host) adds what only a packet capture sees, for the pmacctd
// golden test: IPv4 and IPv6 UDP fragments in and out of order, a fragmented
// ICMP echo, a fragment whose first never comes, MPLS (one label: pmacct
// 1.7.7 walks longer stacks 16 bytes at a time) and VXLAN.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

var start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type packet struct {
	at   time.Duration
	data []byte
}

// host is one end of the traffic: an address, the MAC it is seen with, and
// the VLAN (0: untagged) and priority of its segment.
type host struct {
	ip   net.IP
	mac  net.HardwareAddr
	vlan uint16
	pcp  uint8
}

var (
	packets []packet
	ipID    uint16
)

func newHost(addr string, mac byte, vlan uint16, pcp uint8) host {
	return host{ip: net.ParseIP(addr), mac: net.HardwareAddr{0x02, 0, 0, 0, 0, mac}, vlan: vlan, pcp: pcp}
}

const (
	fin = 1 << iota
	syn
	rst
	psh
	ack
)

// filler is n bytes of letters.
func filler(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}

// send appends one frame from a to b carrying l4 (and payload bytes).
func send(at time.Duration, a, b host, tos uint8, l4 gopacket.SerializableLayer, payload int) {
	sendBytes(at, a, b, tos, l4, filler(payload))
}

// link is the Ethernet header (and 802.1Q tag) of a frame from a to b.
func link(a, b host, typ layers.EthernetType) []gopacket.SerializableLayer {
	eth := &layers.Ethernet{SrcMAC: a.mac, DstMAC: b.mac, EthernetType: typ}
	if a.vlan == 0 {
		return []gopacket.SerializableLayer{eth}
	}
	eth.EthernetType = layers.EthernetTypeDot1Q
	return []gopacket.SerializableLayer{eth, &layers.Dot1Q{Priority: a.pcp, VLANIdentifier: a.vlan, Type: typ}}
}

func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipPacket is the IP packet from a to b carrying l4 and payload, and its IP
// header alone, for fragmenting.
func ipPacket(a, b host, tos uint8, l4 gopacket.SerializableLayer, payload []byte) (pkt []byte, ip gopacket.SerializableLayer) {
	var proto layers.IPProtocol
	switch l := l4.(type) {
	case *layers.TCP:
		proto = layers.IPProtocolTCP
	case *layers.UDP:
		proto = layers.IPProtocolUDP
	case *layers.ICMPv4:
		proto = layers.IPProtocolICMPv4
	case *layers.ICMPv6:
		proto = layers.IPProtocolICMPv6
	case gopacket.Payload: // GRE: a bare header
		proto = layers.IPProtocolGRE
	default:
		panic(fmt.Sprintf("unexpected layer %T", l))
	}
	var nl gopacket.NetworkLayer
	if a.ip.To4() != nil {
		ipID++
		ip4 := &layers.IPv4{Version: 4, TTL: 64, TOS: tos, Id: ipID, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: a.ip.To4(), DstIP: b.ip.To4()}
		ip, nl = ip4, ip4
	} else {
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, TrafficClass: tos, NextHeader: proto, SrcIP: a.ip, DstIP: b.ip}
		ip, nl = ip6, ip6
	}
	switch l := l4.(type) {
	case *layers.TCP:
		l.SetNetworkLayerForChecksum(nl)
	case *layers.UDP:
		l.SetNetworkLayerForChecksum(nl)
	case *layers.ICMPv6:
		l.SetNetworkLayerForChecksum(nl)
	}
	return serialize(ip, l4, gopacket.Payload(payload)), ip
}

// sendBytes appends one frame from a to b carrying l4 and payload.
func sendBytes(at time.Duration, a, b host, tos uint8, l4 gopacket.SerializableLayer, payload []byte) {
	pkt, _ := ipPacket(a, b, tos, l4, payload)
	packets = append(packets, packet{at, frame(a, b, pkt)})
}

// frame puts an IP packet in an Ethernet frame from a to b.
func frame(a, b host, pkt []byte) []byte {
	typ := layers.EthernetTypeIPv4
	if pkt[0]>>4 == 6 {
		typ = layers.EthernetTypeIPv6
	}
	return serialize(append(link(a, b, typ), gopacket.Payload(pkt))...)
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func tcp(sport, dport uint16, flags int) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, Window: 65535,
		FIN: flags&fin != 0, SYN: flags&syn != 0, RST: flags&rst != 0, PSH: flags&psh != 0, ACK: flags&ack != 0}
}

func udp(sport, dport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
}

// session is a TCP connection: handshake, requests and responses of the given
// sizes, then FIN (or an RST from the server when reset is set).
func session(at time.Duration, c, s host, cport, sport uint16, tos uint8, request, response []int, reset bool) {
	t := at
	step := func(d time.Duration) time.Duration { t += d; return t }
	send(t, c, s, tos, tcp(cport, sport, syn), 0)
	send(step(ms(1)), s, c, tos, tcp(sport, cport, syn|ack), 0)
	send(step(ms(1)), c, s, tos, tcp(cport, sport, ack), 0)
	for i := range request {
		send(step(ms(2)), c, s, tos, tcp(cport, sport, psh|ack), request[i])
		if i < len(response) {
			send(step(ms(20)), s, c, tos, tcp(sport, cport, psh|ack), response[i])
		}
	}
	if reset {
		send(step(ms(5)), s, c, tos, tcp(sport, cport, rst), 0)
		return
	}
	send(step(ms(5)), c, s, tos, tcp(cport, sport, fin|ack), 0)
	send(step(ms(1)), s, c, tos, tcp(sport, cport, fin|ack), 0)
	send(step(ms(1)), c, s, tos, tcp(cport, sport, ack), 0)
}

// exchange is a UDP query and its answer.
func exchange(at time.Duration, c, s host, cport, sport uint16, tos uint8, query, answer int) {
	send(at, c, s, tos, udp(cport, sport), query)
	send(at+ms(3), s, c, tos, udp(sport, cport), answer)
}

func ping(at time.Duration, c, s host, n int) {
	for i := range n {
		t := at + time.Duration(i)*time.Second
		if c.ip.To4() != nil {
			send(t, c, s, 0, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: uint16(i)}, 56)
			send(t+ms(1), s, c, 0, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: 7, Seq: uint16(i)}, 56)
		} else {
			send(t, c, s, 0, &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, 60)
			send(t+ms(1), s, c, 0, &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(129, 0)}, 60)
		}
	}
}

// fragmented sends the packet from a to b carrying l4 and size payload bytes
// in fragments of at most fragSize payload bytes (a multiple of 8), in the
// order given (indexes of fragments), a millisecond apart.
func fragmented(at time.Duration, a, b host, l4 gopacket.SerializableLayer, size, fragSize int, order []int) {
	pkt, ip := ipPacket(a, b, 0, l4, filler(size))
	var frags [][]byte
	if ip4, ok := ip.(*layers.IPv4); ok {
		body := pkt[20:]
		for off := 0; off < len(body); off += fragSize {
			end := min(off+fragSize, len(body))
			h := *ip4
			h.Flags, h.FragOffset = 0, uint16(off/8)
			if end < len(body) {
				h.Flags = layers.IPv4MoreFragments
			}
			frags = append(frags, serialize(&h, gopacket.Payload(body[off:end])))
		}
	} else {
		ip6 := ip.(*layers.IPv6)
		body := pkt[40:]
		ipID++
		for off := 0; off < len(body); off += fragSize {
			end := min(off+fragSize, len(body))
			v := uint16(off/8) << 3
			if end < len(body) {
				v |= 1
			}
			hdr := []byte{byte(ip6.NextHeader), 0, byte(v >> 8), byte(v), 0, 0, byte(ipID >> 8), byte(ipID)}
			h := *ip6
			h.NextHeader = layers.IPProtocolIPv6Fragment
			frags = append(frags, serialize(&h, gopacket.Payload(append(hdr, body[off:end]...))))
		}
	}
	for i, n := range order {
		packets = append(packets, packet{at + ms(i), frame(a, b, frags[n])})
	}
}

// mpls sends a TCP packet from a to b under one MPLS label.
func mpls(at time.Duration, a, b host, label uint32, l4 gopacket.SerializableLayer, payload int) {
	pkt, _ := ipPacket(a, b, 0, l4, filler(payload))
	eth := &layers.Ethernet{SrcMAC: a.mac, DstMAC: b.mac, EthernetType: layers.EthernetTypeMPLSUnicast}
	packets = append(packets, packet{at, serialize(eth, &layers.MPLS{Label: label, TTL: 64, StackBottom: true}, gopacket.Payload(pkt))})
}

// vxlan sends from VTEP a to VTEP b the frame from ia to ib carrying l4, in VNI vni.
func vxlan(at time.Duration, a, b host, vni uint32, ia, ib host, l4 gopacket.SerializableLayer, payload int) {
	inner, _ := ipPacket(ia, ib, 0x28, l4, filler(payload))
	hdr := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	sendBytes(at, a, b, 0, udp(49152, 4789), append(hdr, frame(ia, ib, inner)...))
}

// hostTraffic is what only a packet capture sees, in minute 0 between the
// flows of the exporter traffic.
func hostTraffic(c1, c5, c6, v1, web1, dns, v6dns host) {
	// a 3000-byte DNS answer in three fragments, in order
	fragmented(ms(30000), dns, c1, udp(53, 53001), 3000, 1480, []int{0, 1, 2})
	// the same, last fragment first: pmacctd holds it for the first's ports
	fragmented(ms(31000), dns, c5, udp(53, 53005), 2000, 1200, []int{1, 0})
	// IPv6: a fragment header, three fragments
	fragmented(ms(32000), v6dns, v1, udp(53, 50004), 2500, 1232, []int{0, 2, 1})
	// a big ping: fragments of ICMP are packets of their own
	fragmented(ms(33000), c1, web1, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 9}, 3000, 1480, []int{0, 1, 2})
	// the last fragment of a datagram whose other fragments were lost
	fragmented(ms(34000), c6, dns, udp(53106, 53), 3000, 1480, []int{2})
	// MPLS-labelled TCP, two labels
	mpls(ms(36000), c1, web1, 16001, tcp(40100, 80, syn), 0)
	mpls(ms(36010), web1, c1, 16002, tcp(80, 40100, syn|ack), 0)
	mpls(ms(36020), c1, web1, 16001, tcp(40100, 80, psh|ack), 200)
	// VXLAN between two VTEPs: IPv4 TCP and IPv6 UDP inside, two VNIs
	vtep1, vtep2 := newHost("192.0.2.61", 0x21, 0, 0), newHost("192.0.2.62", 0x22, 0, 0)
	in1, in2 := newHost("198.51.100.201", 0x31, 0, 0), newHost("203.0.113.201", 0x32, 0, 0)
	in3, in4 := newHost("2001:db8:0:3::1", 0x33, 0, 0), newHost("2001:db8:0:3::2", 0x34, 0, 0)
	vxlan(ms(38000), vtep1, vtep2, 5001, in1, in2, tcp(40200, 443, syn), 0)
	vxlan(ms(38010), vtep2, vtep1, 5001, in2, in1, tcp(443, 40200, syn|ack), 0)
	vxlan(ms(38020), vtep1, vtep2, 5001, in1, in2, tcp(40200, 443, psh|ack), 300)
	vxlan(ms(38030), vtep1, vtep2, 7002, in3, in4, udp(50300, 53), 40)
}

func main() {
	withHost := flag.Bool("host", false, "add the traffic only a packet capture sees (host.pcap)")
	flag.Parse()
	// clients: two untagged, three on VLAN 10 (priority 3), IPv6 ones on VLAN 20
	c1 := newHost("192.0.2.1", 0x01, 0, 0)
	c2 := newHost("192.0.2.2", 0x02, 10, 3)
	c3 := newHost("192.0.2.3", 0x03, 10, 3)
	c4 := newHost("192.0.2.4", 0x04, 10, 5)
	c5 := newHost("192.0.2.5", 0x05, 0, 0)
	c6 := newHost("192.0.2.6", 0x06, 0, 0)
	g1 := newHost("192.0.2.50", 0x07, 0, 0)
	v1 := newHost("2001:db8:0:1::1", 0x11, 0, 0)
	v2 := newHost("2001:db8:0:1::2", 0x12, 20, 1)
	v3 := newHost("2001:db8:0:1::3", 0x13, 20, 1)
	// servers, behind the router 02:00:00:00:00:fe
	router := func(addr string) host { return newHost(addr, 0xfe, 0, 0) }
	routerOn := func(addr string, from host) host { h := router(addr); h.vlan, h.pcp = from.vlan, from.pcp; return h }
	web1 := router("198.51.100.10")
	dns := router("203.0.113.53")
	scanner := router("203.0.113.99")
	v6web := router("2001:db8:0:2::10")
	v6dns := router("2001:db8:0:2::53")

	// minute 0
	session(ms(100), c1, web1, 40001, 80, 0, []int{120, 80}, []int{1200, 600}, false)
	exchange(ms(1000), c1, dns, 53001, 53, 0, 40, 120)
	session(ms(2000), c2, routerOn("198.51.100.11", c2), 40002, 443, 0, []int{300}, []int{1400}, true)
	ping(ms(5000), c3, routerOn("198.51.100.12", c3), 3)
	session(ms(10000), v1, v6web, 50001, 443, 0, []int{200}, []int{1300, 900}, false)
	ping(ms(12000), v2, routerOn("2001:db8:0:2::10", v2), 2)
	for i := range 10 { // voice, EF
		send(ms(20000+20*i), c4, routerOn("198.51.100.13", c4), 0xb8, udp(5004, 5004), 160)
	}
	for i := range 5 { // an SSH session across the minute boundary
		send(ms(50000+5000*i), c5, web1, 0, tcp(40005, 22, psh|ack), 48)
		send(ms(50010+5000*i), web1, c5, 0, tcp(22, 40005, psh|ack), 96)
	}
	// minute 1, the first flow exactly on its edge
	exchange(ms(60000), c6, dns, 53006, 53, 0, 44, 160)
	send(ms(65000), routerOn("198.51.100.11", c2), c2, 0, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, 28)
	session(ms(70000), c1, routerOn("198.51.100.11", c1), 40011, 80, 0, []int{90}, []int{700}, false)
	exchange(ms(80000), v3, routerOn("2001:db8:0:2::53", v3), 50003, 53, 0, 50, 200)
	exchange(ms(81000), v1, v6dns, 50004, 53, 0, 50, 210)
	// minute 2: a scan exactly on the edge, GRE, AF11-marked traffic
	for i, c := range []host{c1, c2, c3, c4} {
		s := scanner
		s.vlan, s.pcp = c.vlan, c.pcp
		send(ms(120000+i), s, c, 0, tcp(61000, 22, syn), 0)
		send(ms(120005+i), c, s, 0, tcp(22, 61000, rst|ack), 0)
	}
	send(ms(130000), g1, router("203.0.113.60"), 0, gopacket.Payload{0, 0, 0x08, 0}, 0)
	session(ms(140000), c3, routerOn("198.51.100.12", c3), 40013, 8080, 0x28, []int{400, 400}, []int{800}, false)
	// minute 3
	exchange(ms(185000), c4, routerOn("203.0.113.123", c4), 123, 123, 0xb8, 48, 48)
	// IPv6 marked AF11 (traffic class 0x28): sfacctd 1.7.7 to 1.7.9 reads
	// the low nibble of the first header byte (2)
	session(ms(190000), v2, routerOn("2001:db8:0:2::10", v2), 50010, 80, 0x28, []int{100}, []int{500}, false)
	for i, c := range []host{c1, c5, c6} {
		exchange(ms(200000+100*i), c, dns, uint16(53100+i), 53, 0, 40+i, 100+i)
	}
	ping(ms(210000), v1, v6web, 1)
	if *withHost {
		hostTraffic(c1, c5, c6, v1, web1, dns, v6dns)
	}

	sort.SliceStable(packets, func(i, j int) bool { return packets[i].at < packets[j].at })
	out := bufio.NewWriter(os.Stdout)
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		panic(err)
	}
	for _, p := range packets {
		ci := gopacket.CaptureInfo{Timestamp: start.Add(p.at), CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			panic(err)
		}
	}
	if err := out.Flush(); err != nil {
		panic(err)
	}
}
