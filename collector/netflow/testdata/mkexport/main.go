// Command mkexport receives UDP datagrams on loopback and writes them to a
// pcap file (Ethernet, IPv4, UDP), as an exporter's traffic would have been
// captured: it records the NetFlow/IPFIX exports of softflowd and pmacctd's
// nfprobe for the tests (see ../generate.sh).
//
//	mkexport -out FILE [-src 192.0.2.1] [-idle 2s] [-max 60s]
//
// It prints the port it listens on (127.0.0.1) on stdout, then writes every
// datagram it receives until none came for -idle after the first, or -max
// passed. -src replaces the sender's address in the capture.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func main() {
	out := flag.String("out", "", "pcap file to write")
	src := flag.String("src", "", "exporter address to write instead of the sender's")
	idle := flag.Duration("idle", 2*time.Second, "stop after this long without a datagram")
	maxTime := flag.Duration("max", time.Minute, "stop after this long in any case")
	flag.Parse()
	if *out == "" {
		log.Fatal("mkexport: -out is required")
	}
	var srcAddr netip.Addr
	if *src != "" {
		srcAddr = netip.MustParseAddr(*src)
	}

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(conn.LocalAddr().(*net.UDPAddr).Port)
	os.Stdout.Sync()

	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		log.Fatal(err)
	}

	deadline := time.Now().Add(*maxTime)
	buf := make([]byte, 65535)
	n := 0
	for {
		wait := deadline
		if n > 0 {
			wait = time.Now().Add(*idle)
		}
		conn.SetReadDeadline(wait)
		size, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		now := time.Now()
		sender := from.Addr()
		if srcAddr.IsValid() {
			sender = srcAddr
		}
		frame := encapsulate(buf[:size], sender, from.Port(), conn.LocalAddr().(*net.UDPAddr).Port)
		ci := gopacket.CaptureInfo{Timestamp: now, CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			log.Fatal(err)
		}
		n++
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "mkexport: %d datagrams in %s\n", n, *out)
}

func encapsulate(payload []byte, src netip.Addr, sport uint16, dport int) []byte {
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
		DstMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{
		Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: src.AsSlice(), DstIP: net.IPv4(127, 0, 0, 1).To4(),
	}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	sb := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(sb, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		log.Fatal(err)
	}
	return sb.Bytes()
}
