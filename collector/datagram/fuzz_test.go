package datagram

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReplay feeds arbitrary bytes as a capture: no panic, and the stats
// always add up.
func FuzzReplay(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.pcap*")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var n uint64
		st, _ := ReplayReader(context.Background(), bytes.NewReader(data), 0, func(d *Datagram) {
			n++
			if len(d.Payload) > len(data) {
				t.Fatalf("payload of %d bytes from %d bytes of input", len(d.Payload), len(data))
			}
		})
		if st.Datagrams != n || st.Packets != st.Datagrams+st.Skipped() {
			t.Fatalf("stats do not add up: %+v, %d delivered", st, n)
		}
	})
}

// FuzzUDPPayload walks arbitrary frames of every supported link type.
func FuzzUDPPayload(f *testing.F) {
	for _, c := range linkCases(f) {
		f.Add(c.link, c.frame)
	}
	f.Fuzz(func(t *testing.T, link uint32, frame []byte) {
		p, _, o := udpPayload(link, frame)
		if o == delivered && len(p) > len(frame) {
			t.Fatalf("payload longer than the frame")
		}
	})
}
