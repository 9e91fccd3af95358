package netflow

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// Fuzz targets: any datagram must decode without panic, in bounded time,
// and the counters must agree with what was emitted. Seeds are the
// captures of testdata and handmade datagrams.
//
//	go test -run '^$' -fuzz FuzzDecodeNetFlowV9 -fuzztime 2m ./collector/netflow

func FuzzDecodeNetFlowV5(f *testing.F) {
	seedCaptures(f, versionV5, "testdata/softflowd-v5.pcap")
	rec := v5rec{src: "192.0.2.1", dst: "192.0.2.2", nh: "192.0.2.3", proto: 6, flags: 2, pkts: 1, octets: 40}.bytes()
	f.Add(v5(2, 0x4005, rec, rec))
	f.Add(v5(3, 0, rec))
	f.Fuzz(func(t *testing.T, payload []byte) {
		recs, err := fuzzDecode(t, payload)
		if err != nil || len(payload) < 2 || binary.BigEndian.Uint16(payload) != versionV5 {
			return
		}
		// Well-formed: goflow2's decoder must read the same records.
		want, rerr := newReference(t, DefaultConfiguration()).decode(datagram{payload: payload, exporter: exporterA, received: arrival})
		if rerr != nil || len(want) != len(recs) {
			t.Fatalf("goflow2: %d records (%v), compiled %d", len(want), rerr, len(recs))
		}
		for i := range recs {
			if recs[i] != want[i] {
				t.Fatalf("record %d differs:\n%s", i, diff(recs[i], want[i]))
			}
		}
	})
}

func FuzzDecodeNetFlowV9(f *testing.F) {
	seedCaptures(f, versionV9, "testdata/softflowd-v9.pcap", "testdata/nfprobe-v9.pcap")
	fields := []fld{{8, 4, 0}, {12, 4, 0}, {1, 4, 0}, {22, 4, 0}, {48, 1, 0}}
	f.Add(v9(3,
		set(v9OptionsTemplateSet, optTmplV9(400, []fld{{1, 4, 0}}, []fld{{48, 1, 0}, {50, 4, 0}}), u16(0)),
		set(400, cat(u32(0), u8(1), u32(10))),
		set(v9TemplateSet, tmpl(9, 300, fields...)),
		set(300, cat(ip("192.0.2.1"), ip("192.0.2.2"), u32(5), u32(tUptime), u8(1)))))
	f.Fuzz(func(t *testing.T, payload []byte) { fuzzDecode(t, payload) })
}

func FuzzDecodeIPFIX(f *testing.F) {
	seedCaptures(f, versionIPFIX, "testdata/softflowd-ipfix.pcap", "testdata/softflowd-ipfix-nano.pcap",
		"testdata/softflowd-ipfix-sampled.pcap", "testdata/nfprobe-ipfix.pcap")
	fields := []fld{{27, 16, 0}, {82, varLength, 0}, {1, 8, 0}, {154, 8, 0}, {1, 4, 29305}}
	f.Add(ipfix(
		set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{309, 4, 0}, {310, 4, 0}}), u16(0)),
		set(400, cat(u32(tDomain), u32(1), u32(100))),
		set(ipfixTemplateSet, tmpl(10, 300, fields...)),
		set(300, cat(ip("2001:db8::1"), u8(2), []byte("ab"), u64(9), u64(1), u32(0))),
		set(ipfixTemplateSet, u16(300), u16(0), u16(2), u16(0)),
		set(ipfixOptionsTemplateSet, u16(3), u16(0))))
	f.Fuzz(func(t *testing.T, payload []byte) { fuzzDecode(t, payload) })
}

func seedCaptures(f *testing.F, version uint16, paths ...string) {
	for _, p := range paths {
		for _, dg := range readPcap(f, p) {
			if binary.BigEndian.Uint16(dg.payload) == version {
				f.Add(dg.payload)
			}
		}
	}
}

// fuzzDecode decodes payload on a new decoder, failing on a hang or when the
// counters disagree with what was emitted.
func fuzzDecode(t *testing.T, payload []byte) ([]flow.Record, error) {
	d := mustNew(t, DefaultConfiguration())
	type result struct {
		recs []flow.Record
		n    int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = d.Decode(payload, exporterA, arrival, func(rec *flow.Record) {
			// A datagram holds at most 65535 records of one octet: keep no
			// more, so that a runaway loop is caught by the timer below
			// rather than by the memory it would fill.
			if r.n++; r.n <= 1<<16 {
				r.recs = append(r.recs, *rec)
			}
		})
		done <- r
	}()
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	select {
	case r := <-done:
		s := d.Stats()
		if r.n > 1<<16 || s.Records != uint64(r.n) {
			t.Fatalf("%d records emitted, %d counted", r.n, s.Records)
		}
		if (r.err != nil) != (s.Malformed == 1) {
			t.Fatalf("error %v, %d counted malformed", r.err, s.Malformed)
		}
		return r.recs, r.err
	case <-timer.C:
		t.Fatalf("Decode did not return within a second")
	}
	return nil, nil
}
