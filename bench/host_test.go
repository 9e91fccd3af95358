package bench

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// writeTraffic writes n Ethernet/IPv4 TCP and UDP packets between 4096 host
// pairs to a pcap file.
func writeTraffic(b *testing.B, path string, n int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		b.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	payload := gopacket.Payload(make([]byte, 200))
	start := time.Unix(1704067200, 0)
	for i := range n {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, SrcIP: net.IP{10, 0, byte(i >> 8 & 15), byte(i)}, DstIP: net.IP{192, 0, 2, byte(i >> 4)}}
		var l4 gopacket.SerializableLayer
		if i%3 == 0 {
			ip.Protocol = layers.IPProtocolUDP
			l4 = &layers.UDP{SrcPort: layers.UDPPort(40000 + i%64), DstPort: 53}
		} else {
			ip.Protocol = layers.IPProtocolTCP
			l4 = &layers.TCP{SrcPort: layers.TCPPort(40000 + i%64), DstPort: 443, ACK: true}
		}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, ip, l4, payload); err != nil {
			b.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuSeconds runs cmd and returns the CPU time it used (user + system).
func cpuSeconds(b *testing.B, cmd *exec.Cmd) float64 {
	b.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", cmd.Path, err, out)
	}
	return (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
}

// Host mode side by side: flowdex and Debian's pmacctd read the same pcap
// (500k packets) into the same 5-tuple aggregation, in the same run; the
// metrics are packets per CPU-second of each process and their ratio.
func BenchmarkHostPcapVsPmacctd(b *testing.B) {
	if _, err := exec.LookPath("pmacctd"); err != nil {
		b.Skip("pmacctd is not installed")
	}
	const packets = 500_000
	dir := b.TempDir()
	trace := filepath.Join(dir, "trace.pcap")
	writeTraffic(b, trace, packets)
	bin := filepath.Join(dir, "flowdex")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/flowdex").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	aggregate := `["src_host", "dst_host", "src_port", "dst_port", "proto"]`
	conf := filepath.Join(dir, "flowdex.toml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[log]\nlevel = \"warn\"\n[[input]]\ntype = \"pcap\"\nfile = %q\n[[pipeline]]\naggregate = %s\n[output.out]\ntype = \"print\"\nfile = \"flowdex.json\"\n", trace, aggregate), 0o644); err != nil {
		b.Fatal(err)
	}
	pconf := filepath.Join(dir, "pmacctd.conf")
	if err := os.WriteFile(pconf, fmt.Appendf(nil, "daemonize: false\npcap_savefile: %s\nplugins: print\naggregate: src_host, dst_host, src_port, dst_port, proto\nprint_output: json\nprint_output_file: %s\nprint_refresh_time: 86400\nprint_cache_entries: 65537\n", trace, filepath.Join(dir, "pmacctd.json")), 0o644); err != nil {
		b.Fatal(err)
	}
	var fdx, pm float64
	for b.Loop() {
		fdx += cpuSeconds(b, exec.Command(bin, "run", "-c", conf))
		pm += cpuSeconds(b, exec.Command("pmacctd", "-f", pconf))
	}
	n := float64(b.N) * packets
	b.ReportMetric(n/fdx, "flowdex-pkts/cpu-s")
	b.ReportMetric(n/pm, "pmacctd-pkts/cpu-s")
	b.ReportMetric(pm/fdx, "flowdex/pmacctd")
}
