package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// pointerPrimitives reads every layer pmacct's packet pointers name, with
// protocols, offsets, several pointers to one primitive (the last that fits
// wins), each semantics and a string of variable length.
const pointerPrimitives = `! flowdex and pmacctd 1.7.7, the same file
name=ttl packet_ptr=l3:0x800+8 packet_ptr=l3:0x86dd+7 len=1 semantics=u_int
name=udp_len packet_ptr=l4:17+4 len=2 semantics=u_int
name=tcp_win packet_ptr=l4:6+14 len=2 semantics=u_int
name=smac packet_ptr=mac+6 len=6 semantics=mac
name=vlanx packet_ptr=vlan len=4 semantics=hex
name=mplsx packet_ptr=mpls len=4 semantics=hex
name=pl4 packet_ptr=payload len=4 semantics=raw
name=plstr packet_ptr=payload len=vlen semantics=str
name=pkt0 packet_ptr=packet len=2 semantics=hex
name=l3src packet_ptr=l3:2048+12 len=4 semantics=ip
name=multi packet_ptr=l3+8 packet_ptr=l4:17 len=1 semantics=u_int
`

// pointerTraffic writes a capture of four kinds of frames, three of each:
// IPv4/UDP, 802.1Q/IPv4/TCP, IPv6/UDP and MPLS/IPv4/UDP, each at least 60
// octets (no Ethernet padding), their payloads text then zeros but the
// TCP one's, which runs to the capture's end.
func pointerTraffic(t *testing.T, path string) {
	t.Helper()
	mac := func(last byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, last} }
	udp := func(payload string) []gopacket.SerializableLayer {
		u := &layers.UDP{SrcPort: 1000, DstPort: 2000}
		return []gopacket.SerializableLayer{u, gopacket.Payload(payload)}
	}
	ip4 := func(src string, ttl uint8, proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP("192.0.2.200").To4()}
	}
	frames := [][]gopacket.SerializableLayer{
		append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac(1), DstMAC: mac(0xff), EthernetType: layers.EthernetTypeIPv4},
			ip4("10.0.0.1", 64, layers.IPProtocolUDP)}, udp("HELLOabc"+strings.Repeat("\x00", 12))...),
		{&layers.Ethernet{SrcMAC: mac(2), DstMAC: mac(0xff), EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, ip4("10.0.0.2", 33, layers.IPProtocolTCP),
			&layers.TCP{SrcPort: 1234, DstPort: 80, Window: 4321, ACK: true, DataOffset: 5}, gopacket.Payload("GET /\r\n")},
		append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac(3), DstMAC: mac(0xff), EthernetType: layers.EthernetTypeIPv6},
			&layers.IPv6{Version: 6, HopLimit: 17, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::200")}},
			udp("v6pay\x00")...),
		append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: mac(4), DstMAC: mac(0xff), EthernetType: layers.EthernetTypeMPLSUnicast},
			&layers.MPLS{Label: 1000, StackBottom: true, TTL: 5}, ip4("10.0.0.4", 44, layers.IPProtocolUDP)},
			udp("mplspay!"+strings.Repeat("\x00", 6))...),
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for n := range 3 {
		for i, fr := range frames {
			buf := gopacket.NewSerializeBuffer()
			for _, l := range fr {
				if nl, ok := l.(interface {
					SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
				}); ok {
					_ = nl.SetNetworkLayerForChecksum(fr[len(fr)-3].(gopacket.NetworkLayer))
				}
			}
			if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, fr...); err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()
			if len(data) < 60 {
				t.Fatalf("frame %d: %d octets, which Ethernet pads", i, len(data))
			}
			ci := gopacket.CaptureInfo{Timestamp: at.Add(time.Duration(n*4+i) * time.Second), CaptureLength: len(data), Length: len(data)}
			if err := w.WritePacket(ci, data); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Custom primitives read from captured packets (packet_ptr), against
// pmacctd 1.7.7 with the same file on the same capture.
func TestPacketPointersMatchPmacctd(t *testing.T) {
	requireTools(t, "pmacctd")
	dir := t.TempDir()
	traffic := filepath.Join(dir, "traffic.pcap")
	pointerTraffic(t, traffic)
	primitives := writeFile(t, dir, "primitives.lst", pointerPrimitives)
	// src_port: pmacctd sets IPv4's l4 and payload pointers only when it
	// tracks fragments, which aggregating on ports turns on
	agg := append([]string{"src_host", "src_port", "proto"}, primitiveNames(pointerPrimitives)...)
	want, got := goldenRun(t, dir, pmacctRun{daemon: "pmacctd", savefile: traffic, primitives: primitives},
		fmt.Sprintf("aggregate_primitives = %q", primitives), fmt.Sprintf("type = \"pcap\"\nfile = %q", traffic), "", agg)
	if len(want) != 4 {
		t.Fatalf("pmacctd made %d records, want 4: %v", len(want), want)
	}
	// pmacctd 1.7.7 bug: a string of variable length that runs to the
	// capture's end loses its last octet (pmacct writes a zero over it);
	// flowdex keeps the TCP payload whole
	for k, v := range want {
		if fixed := strings.Replace(k, `"plstr":"GET /\r"`, `"plstr":"GET /\r\n"`, 1); fixed != k {
			delete(want, k)
			want[fixed] = v
		} else if strings.Contains(k, `"ip_src":"10.0.0.2"`) {
			t.Errorf("pmacctd's TCP record %s: the bug (or the capture) changed", k)
		}
	}
	compareSums(t, got, want)
	requireValues(t, got, `"ttl":"64"`, `"ttl":"17"`, `"udp_len":"28"`, `"tcp_win":"4321"`, `"vlanx":"640800"`, `"mplsx":"3e8105"`, `"pl4":"48-45-4C-4C"`, `"plstr":"v6pay"`, `"multi":"3"`, `"l3src":"10.0.0.4"`)
}

// requireValues fails t unless each of values is in a key of records.
func requireValues(t *testing.T, records map[string]string, values ...string) {
	t.Helper()
	for _, v := range values {
		found := false
		for k := range records {
			found = found || strings.Contains(k, v)
		}
		if !found {
			t.Errorf("no record with %s: %v", v, records)
		}
	}
}

// The same primitives read from sFlow's sampled headers: pmacctd's sfprobe
// exports the capture, sfacctd 1.7.7 and flowdex read the export.
// pmacctd_force_frag_handling: sfacctd sets IPv4's l4 and payload pointers
// only with it, whatever the aggregate.
func TestPacketPointersMatchSfacctd(t *testing.T) {
	requireTools(t, "pmacctd", "sfacctd")
	requireFaketime(t)
	dir := t.TempDir()
	traffic := filepath.Join(dir, "traffic.pcap")
	pointerTraffic(t, traffic)
	export, _, err := exporterCase{name: "sfprobe", sflow: true, command: sfprobeOn(traffic, 1), probes: 2}.capture(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	// sfacctd 1.7.7 refuses len=vlen with packet pointers (flowdex reads it)
	var defs []string
	for _, line := range strings.Split(pointerPrimitives, "\n") {
		if !strings.Contains(line, "len=vlen") {
			defs = append(defs, line)
		}
	}
	file := strings.Join(defs, "\n")
	primitives := writeFile(t, dir, "primitives.lst", file)
	agg := append([]string{"src_host", "src_port", "proto"}, primitiveNames(file)...)
	want, got := goldenRun(t, dir, pmacctRun{daemon: "sfacctd", savefile: export, primitives: primitives, extra: "pmacctd_force_frag_handling: true\n"},
		fmt.Sprintf("aggregate_primitives = %q", primitives), fmt.Sprintf("type = \"sflow\"\nreplay = %q", export), "", agg)
	if len(want) != 4 {
		t.Fatalf("sfacctd made %d records, want 4: %v", len(want), want)
	}
	compareSums(t, got, want)
	requireValues(t, got, `"ttl":"64"`, `"ttl":"17"`, `"udp_len":"28"`, `"tcp_win":"4321"`, `"vlanx":"640800"`, `"mplsx":"3e8105"`, `"pl4":"48-45-4C-4C"`, `"multi":"3"`, `"l3src":"10.0.0.4"`)
}
