package datagram

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Reading a packet allocates nothing, from either format, once the buffers
// have grown.
func TestCaptureReaderAllocs(t *testing.T) {
	frame := serialize(t, ether(layers.EthernetTypeIPv4), ip4("192.0.2.1", layers.IPProtocolUDP), udpLayer(2055), gopacket.Payload("x"))
	const n = 300
	frames, stamps := make([][]byte, n), make([]time.Time, n)
	for i := range frames {
		frames[i], stamps[i] = frame, time.Unix(1_700_000_000, int64(i))
	}
	var ng bytes.Buffer
	w, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: stamps[i], CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"pcap":   pcapFile(binary.LittleEndian, false, linkEthernet, 65535, frames, stamps),
		"pcapng": ng.Bytes(),
	} {
		cr, err := newCaptureReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := cr.next(); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(n/2, func() {
			if _, _, _, err := cr.next(); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s: %v allocations per packet", name, a)
		}
	}
}
