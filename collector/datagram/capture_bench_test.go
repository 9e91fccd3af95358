//go:build unix

package datagram

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// captureBenchPackets is the size of the capture BenchmarkCaptureRead reads:
// a large replay, about 80 MB.
const captureBenchPackets = 100_000

// captureBenchFiles writes the same 100,000 Ethernet/IPv4/UDP frames (exporter
// datagrams of 100 to 1,360 bytes, 1 ms apart) as pcap and as pcapng
// (pcapgo's writer: one interface, nanoseconds) in b's temporary directory.
func captureBenchFiles(b *testing.B) (pcapPath, ngPath string) {
	b.Helper()
	dir := b.TempDir()
	pcapPath, ngPath = filepath.Join(dir, "replay.pcap"), filepath.Join(dir, "replay.pcapng")
	frames := make([][]byte, 64)
	for i := range frames {
		frames[i] = serialize(b, ether(layers.EthernetTypeIPv4), ip4("192.0.2.1", layers.IPProtocolUDP), udpLayer(2055),
			gopacket.Payload(bytes.Repeat([]byte{0, 9}, 50+i*climb)))
	}
	base := time.Unix(1_700_000_000, 0)
	all := make([][]byte, captureBenchPackets)
	stamps := make([]time.Time, captureBenchPackets)
	for i := range all {
		all[i], stamps[i] = frames[i%len(frames)], base.Add(time.Duration(i)*time.Millisecond)
	}
	if err := os.WriteFile(pcapPath, pcapFile(binary.LittleEndian, false, linkEthernet, 65535, all, stamps), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(ngPath)
	if err != nil {
		b.Fatal(err)
	}
	w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
	if err != nil {
		b.Fatal(err)
	}
	for i, fr := range all {
		ci := gopacket.CaptureInfo{Timestamp: stamps[i], CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return pcapPath, ngPath
}

// climb makes the 64 frames' payloads grow from 100 to 1,360 bytes.
const climb = 10

// BenchmarkCaptureRead reads the same large capture file with flowdex's
// reader (capture.go) and with gopacket's pcapgo (zero-copy reads, as the
// replay needs), as pcap and as pcapng: the time and the allocations per
// packet, the reader's set-up included. The file is in the page cache.
func BenchmarkCaptureRead(b *testing.B) {
	pcapPath, ngPath := captureBenchFiles(b)
	type readFunc func(io.Reader) (packets int, sum int, err error)
	readers := []struct {
		name string
		path string
		read readFunc
	}{
		{"format=pcap/reader=flowdex", pcapPath, readFlowdex},
		{"format=pcap/reader=pcapgo", pcapPath, func(r io.Reader) (int, int, error) {
			pr, err := pcapgo.NewReader(r)
			if err != nil {
				return 0, 0, err
			}
			return readPcapgo(pr.ZeroCopyReadPacketData, func(gopacket.CaptureInfo) uint32 { return uint32(pr.LinkType()) })
		}},
		{"format=pcapng/reader=flowdex", ngPath, readFlowdex},
		{"format=pcapng/reader=pcapgo", ngPath, func(r io.Reader) (int, int, error) {
			nr, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{WantMixedLinkType: true})
			if err != nil {
				return 0, 0, err
			}
			return readPcapgo(nr.ZeroCopyReadPacketData, func(ci gopacket.CaptureInfo) uint32 {
				return uint32(ci.AncillaryData[0].(layers.LinkType))
			})
		}},
	}
	for _, rd := range readers {
		b.Run(rd.name, func(b *testing.B) {
			var packets int
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			cpu0 := cpuTime(b)
			for b.Loop() {
				f, err := os.Open(rd.path)
				if err != nil {
					b.Fatal(err)
				}
				n, _, err := rd.read(bufio.NewReaderSize(f, 1<<16))
				f.Close()
				if err != nil || n != captureBenchPackets {
					b.Fatalf("%d packets, %v", n, err)
				}
				packets += n
			}
			cpu := cpuTime(b) - cpu0
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(packets), "ns/packet")
			// CPU time is steadier than wall time on shared cores
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(packets), "cpu-ns/packet")
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(packets), "allocs/packet")
		})
	}
}

// cpuTime is the user and system time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readFlowdex reads every packet with capture.go's reader.
func readFlowdex(r io.Reader) (packets, sum int, err error) {
	cr, err := newCaptureReader(r)
	if err != nil {
		return 0, 0, err
	}
	for {
		data, ts, link, err := cr.next()
		if err == io.EOF {
			return packets, sum, nil
		}
		if err != nil {
			return packets, sum, err
		}
		packets++
		sum += len(data) + int(link) + ts.Nanosecond()
	}
}

// readPcapgo reads every packet with one of pcapgo's readers.
func readPcapgo(next func() ([]byte, gopacket.CaptureInfo, error), link func(gopacket.CaptureInfo) uint32) (packets, sum int, err error) {
	for {
		data, ci, err := next()
		if err == io.EOF {
			return packets, sum, nil
		}
		if err != nil {
			return packets, sum, err
		}
		packets++
		sum += len(data) + int(link(ci)) + ci.Timestamp.Nanosecond()
	}
}
