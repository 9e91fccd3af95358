package main

import (
	bin "encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// sflowSample is one flow sample: its data source, sequence number, rate
// and sample pool, and the sampled packet's source address.
type sflowSample struct {
	source          uint32 // ds_class<<24 | ds_index
	seq, rate, pool uint32
	src             string
}

// sflowDatagram builds an sFlow v5 datagram of agent 192.0.2.60 with one
// flow sample (enterprise 0, format 1) each, whose one record is a sampled
// Ethernet/IPv4/UDP header of 100 bytes.
func sflowDatagram(seq uint32, samples []sflowSample) []byte {
	u32 := func(b []byte, v uint32) []byte { return bin.BigEndian.AppendUint32(b, v) }
	b := u32(nil, 5)
	b = u32(b, 1) // agent address: IPv4
	b = append(b, 192, 0, 2, 60)
	b = u32(b, 0) // sub-agent
	b = u32(b, seq)
	b = u32(b, 60_000) // uptime, ms
	b = u32(b, uint32(len(samples)))
	for _, s := range samples {
		frame := make([]byte, 42)
		copy(frame, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
		ip := frame[14:34]
		ip[0], ip[2], ip[3], ip[8], ip[9] = 0x45, 0, 86, 64, 17
		copy(ip[12:], netip.MustParseAddr(s.src).AsSlice())
		copy(ip[16:], []byte{198, 51, 100, 1})
		bin.BigEndian.PutUint16(frame[34:], 5000)
		bin.BigEndian.PutUint16(frame[36:], 53)
		bin.BigEndian.PutUint16(frame[38:], 66)
		var rec []byte
		rec = u32(rec, 1)   // header protocol: Ethernet
		rec = u32(rec, 100) // frame length
		rec = u32(rec, 0)   // stripped
		rec = u32(rec, uint32(len(frame)))
		rec = append(rec, frame...)
		for len(rec)%4 != 0 {
			rec = append(rec, 0)
		}
		var body []byte
		body = u32(body, s.seq)
		body = u32(body, s.source)
		body = u32(body, s.rate)
		body = u32(body, s.pool)
		body = u32(body, 0) // drops
		body = u32(body, 1) // input
		body = u32(body, 2) // output
		body = u32(body, 1) // records
		body = u32(body, 1) // raw packet header
		body = u32(body, uint32(len(rec)))
		body = append(body, rec...)
		b = u32(b, 1) // flow sample
		b = u32(b, uint32(len(body)))
		b = append(b, body...)
	}
	return b
}

// sfacctd_renormalize multiplies a sample's counters by its data source's
// sample pool growth over its sequence's, when both grew, else by its rate:
// the spec's eight samples, against sfacctd 1.7.7 (each sample's packet of
// its own source address, so that each multiplier shows).
func TestSFlowPoolRenormalizeMatchesSfacctd(t *testing.T) {
	requireTools(t, "sfacctd")
	requireFaketime(t)
	dir := t.TempDir()
	samples := []sflowSample{
		{1, 10, 100, 1000, "10.0.0.1"}, // first: the rate, 100
		{1, 11, 100, 1500, "10.0.0.2"}, // 500 over 1
		{1, 13, 100, 1700, "10.0.0.3"}, // 200 over 2
		{1, 13, 7, 1800, "10.0.0.4"},   // no new sequence: the rate, 7
		{1, 100, 9, 1500, "10.0.0.5"},  // the pool fell; the sequence jumped: the rate, 9, and anew
		{1, 101, 9, 1600, "10.0.0.6"},  // 100 over 1
		{2, 1, 3, 5000, "10.0.0.7"},    // another source: its first
		{2, 2, 3, 5000, "10.0.0.8"},    // the pool did not grow: the rate
	}
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	capture := filepath.Join(dir, "export.pcap")
	if err := writeExportPcap(capture, []exportDatagram{{at: at, src: netip.MustParseAddrPort("192.0.2.60:6343"),
		dst: netip.MustParseAddrPort("127.0.0.1:6343"), payload: sflowDatagram(1, samples)}}); err != nil {
		t.Fatal(err)
	}
	agg := []string{"src_host", "sampling_rate"}
	want, got := goldenRun(t, dir, pmacctRun{daemon: "sfacctd", savefile: capture, renormalize: true}, "",
		fmt.Sprintf("type = \"sflow\"\nreplay = %q", capture), "renormalize = true", agg)
	if len(want) != len(samples) {
		t.Fatalf("sfacctd made %d records: %v", len(want), want)
	}
	compareSums(t, got, want)
	if w := want[`{"ip_src":"10.0.0.2","sampling_rate":1}`]; w != "packets 500 bytes 50000 flags []" {
		t.Errorf("sfacctd's multiplier of the second sample: %s, want 500", w)
	}
}
