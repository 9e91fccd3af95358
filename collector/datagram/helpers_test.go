package datagram

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// pcapFile builds a classic pcap file. The reader under test is hand-written,
// so the writer is too, but kept independent of it: the byte layout follows
// the pcap format description, and tshark checks the files in
// TestReplayLinkTypes.
func pcapFile(order binary.ByteOrder, nanos bool, link uint32, snaplen uint32, frames [][]byte, stamps []time.Time) []byte {
	var b bytes.Buffer
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	hdr := make([]byte, 24)
	order.PutUint32(hdr[0:], magic)
	order.PutUint16(hdr[4:], 2)
	order.PutUint16(hdr[6:], 4)
	order.PutUint32(hdr[16:], snaplen)
	order.PutUint32(hdr[20:], link)
	b.Write(hdr)
	for i, f := range frames {
		rec := make([]byte, 16)
		ts := stamps[i]
		frac := uint32(ts.Nanosecond())
		if !nanos {
			frac /= 1000
		}
		order.PutUint32(rec[0:], uint32(ts.Unix()))
		order.PutUint32(rec[4:], frac)
		captured := f
		if snaplen > 0 && len(captured) > int(snaplen) {
			captured = captured[:snaplen]
		}
		order.PutUint32(rec[8:], uint32(len(captured)))
		order.PutUint32(rec[12:], uint32(len(f)))
		b.Write(rec)
		b.Write(captured)
	}
	return b.Bytes()
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := t.TempDir() + "/" + name
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// serialize builds a packet with gopacket, fixing lengths and checksums.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		if u, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					if err := u.SetNetworkLayerForChecksum(nl); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ip4(src string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP("198.51.100.1").To4()}
}

func ip6(src string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP("2001:db8:ffff::1")}
}

func udpLayer(sport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 2055}
}

func ether(typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1},
		DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: typ}
}

// sllHeader is a Linux cooked v1 header: packet type, ARPHRD_ETHER, address
// length, 8 address bytes, protocol.
func sllHeader(proto uint16) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[2:], 1)
	binary.BigEndian.PutUint16(h[4:], 6)
	copy(h[6:], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(h[14:], proto)
	return h
}

// sll2Header is a Linux cooked v2 header: protocol, reserved, ifindex,
// ARPHRD_ETHER, packet type, address length, 8 address bytes.
func sll2Header(proto uint16) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], proto)
	binary.BigEndian.PutUint32(h[4:], 2)
	binary.BigEndian.PutUint16(h[8:], 1)
	h[11] = 6
	copy(h[12:], []byte{2, 0, 0, 0, 0, 1})
	return h
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func mustAddrPort(s string) netip.AddrPort {
	return netip.MustParseAddrPort(s)
}
