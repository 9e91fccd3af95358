package netflow

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// largestFields is the most fields an IPFIX template record can have in a
// datagram of MaxDatagram (9216) bytes: message, set and record headers,
// then 4 bytes a field. The types cycle through the IEs flowdex reads, so
// that the plan is as long as it gets.
const largestFields = (9216 - 16 - 4 - 4) / 4

func largestTemplate(id uint16) []byte {
	fields := make([]fld, largestFields)
	for i := range fields {
		fields[i] = fld{uint16(1 + i%240), 4, 0}
	}
	return ipfix(set(ipfixTemplateSet, tmpl(versionIPFIX, id, fields...)))
}

// samplerOptions is an IPFIX message with an options template (scope: the
// observation domain; selectorId 302 and samplingInterval 34) and
// one options record for each of ids, at rate.
func samplerOptions(ids []uint64, rate uint32) []byte {
	var recs [][]byte
	for _, id := range ids {
		recs = append(recs, cat(u32(tDomain), u64(id), u32(rate)))
	}
	return ipfix(set(ipfixOptionsTemplateSet, optTmplIPFIX(400, []fld{{149, 4, 0}}, []fld{{302, 8, 0}, {34, 4, 0}})),
		set(400, recs...))
}

// saved is what Save would write of d.
func saved(t *testing.T, d *Decoder) fileFormat {
	t.Helper()
	var b bytes.Buffer
	if err := d.write(&b); err != nil {
		t.Fatal(err)
	}
	var f fileFormat
	if err := json.Unmarshal(b.Bytes(), &f); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return f
}

func decodeQuiet(t *testing.T, d *Decoder, from netip.Addr, payload []byte) {
	t.Helper()
	if err := d.Decode(payload, from, arrival, func(*flow.Record) {}); err != nil {
		t.Fatal(err)
	}
}

// Options data with ever new sampler ids from one exporter keep at most
// MaxSamplers rates (a known id still takes its new rate); the others are
// refused, counted, and logged once a minute naming the exporter.
func TestSamplersBounded(t *testing.T) {
	var logs bytes.Buffer
	d := mustNew(t, Configuration{MaxSamplers: 100})
	d.logger = slog.New(slog.NewTextHandler(&logs, nil))
	for batch := range 5 {
		ids := make([]uint64, 50)
		for i := range ids {
			ids[i] = uint64(1000 + batch*50 + i)
		}
		decodeQuiet(t, d, exporterA, samplerOptions(ids, 10))
	}
	decodeQuiet(t, d, exporterA, samplerOptions([]uint64{1000}, 77))
	s := d.Stats()
	if n := len(saved(t, d).Samplers); n != 100 || s.SamplersOverLimit != 150 {
		t.Errorf("%d sampling rates kept, %d refused; want 100 and 150", n, s.SamplersOverLimit)
	}
	if rate, ok := d.exporters.Get(exporterA).State().(*exporterState).samplingRate(tDomain, 1000); !ok || rate != 77 {
		t.Errorf("known sampler id: rate %d (%v), want its new rate 77", rate, ok)
	}
	if n := strings.Count(logs.String(), "sampling rate refused"); n != 1 || !strings.Contains(logs.String(), "exporter="+exporterA.String()) {
		t.Errorf("%d warnings, want one naming the exporter:\n%s", n, logs.String())
	}
	// the default bound holds for a router's few thousand ids
	d = mustNew(t, Configuration{})
	ids := make([]uint64, 500)
	for batch := range DefaultMaxSamplers/len(ids) + 2 {
		for i := range ids {
			ids[i] = uint64(batch*len(ids) + i)
		}
		decodeQuiet(t, d, exporterA, samplerOptions(ids, 10))
	}
	if n := len(saved(t, d).Samplers); n != DefaultMaxSamplers || d.Stats().SamplersOverLimit != uint64(2*len(ids)-DefaultMaxSamplers%len(ids)) {
		t.Errorf("%d sampling rates kept, %d refused; want %d kept", n, d.Stats().SamplersOverLimit, DefaultMaxSamplers)
	}
}

// The template store is bounded in bytes, per exporter and in all: past
// either bound new templates are refused and counted, a withdrawal frees
// its bytes, and the store's size never passes the bounds.
func TestTemplateStoreBytes(t *testing.T) {
	one := func() int64 {
		d := mustNew(t, Configuration{})
		decodeQuiet(t, d, exporterA, largestTemplate(300))
		return int64(d.Stats().StoreBytes)
	}()
	if one < largestFields*30 {
		t.Fatalf("the largest template is estimated at %d bytes, want at least %d", one, largestFields*30)
	}
	t.Logf("largest template: %d fields, %d bytes", largestFields, one)

	// per exporter: room for 3
	d := mustNew(t, Configuration{TemplatesMaxBytesPerExporter: 3*one + one/2})
	for id := uint16(300); id < 310; id++ {
		decodeQuiet(t, d, exporterA, largestTemplate(id))
	}
	decodeQuiet(t, d, exporterB, largestTemplate(300))
	s := d.Stats()
	if s.TemplatesAdded != 4 || s.TemplatesOverBytes != 7 || s.StoreBytes != uint64(4*one) {
		t.Errorf("per exporter: %d added, %d over bytes, store %d bytes; want 4 (3 of A, 1 of B), 7, %d", s.TemplatesAdded, s.TemplatesOverBytes, s.StoreBytes, 4*one)
	}
	// a withdrawal frees room for another
	decodeQuiet(t, d, exporterA, ipfix(set(ipfixTemplateSet, cat(u16(300), u16(0)))))
	decodeQuiet(t, d, exporterA, largestTemplate(309))
	if s := d.Stats(); s.TemplatesAdded != 5 || s.StoreBytes != uint64(4*one) {
		t.Errorf("after a withdrawal: %d added, store %d bytes; want 5, %d", s.TemplatesAdded, s.StoreBytes, 4*one)
	}

	// in all: room for 5, whatever the exporters
	d = mustNew(t, Configuration{TemplatesMaxBytes: 5*one + one/2})
	for i := range 4 {
		src := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		decodeQuiet(t, d, src, largestTemplate(300))
		decodeQuiet(t, d, src, largestTemplate(301))
	}
	if s := d.Stats(); s.TemplatesAdded != 5 || s.TemplatesOverBytes != 3 || s.StoreBytes != uint64(5*one) {
		t.Errorf("in all: %d added, %d over bytes, store %d bytes; want 5, 3, %d", s.TemplatesAdded, s.TemplatesOverBytes, s.StoreBytes, 5*one)
	}
	// sampling rates count in the bytes too
	decodeQuiet(t, d, exporterA, samplerOptions([]uint64{1, 2, 3}, 10))
	if s := d.Stats(); s.SamplersOverLimit != 0 || s.TemplatesOverBytes != 3 {
		t.Errorf("small sampling rates with room left: %d refused", s.SamplersOverLimit)
	}
	options := mustNew(t, Configuration{})
	decodeQuiet(t, options, exporterA, samplerOptions([]uint64{1}, 10))
	full := mustNew(t, Configuration{TemplatesMaxBytes: int64(options.Stats().StoreBytes) + one + samplerCost/2})
	decodeQuiet(t, full, exporterA, samplerOptions([]uint64{1}, 10))
	decodeQuiet(t, full, exporterA, largestTemplate(300))
	decodeQuiet(t, full, exporterA, samplerOptions([]uint64{1, 2}, 20))
	if s := full.Stats(); s.SamplersOverLimit != 1 || s.TemplatesAdded != 2 {
		t.Errorf("a new sampling rate past the byte bound: %d refused, want 1 (the known one updated); %d templates added, want 2", s.SamplersOverLimit, s.TemplatesAdded)
	}
}

// A template replaced by a larger one the bounds refuse is removed, not
// kept: data sets would be read with a layout the exporter no longer uses.
func TestTemplateReplacementOverBytes(t *testing.T) {
	small := ipfix(set(ipfixTemplateSet, tmpl(versionIPFIX, 300, fld{8, 4, 0})))
	d := mustNew(t, Configuration{TemplatesMaxBytesPerExporter: 4096})
	decodeQuiet(t, d, exporterA, small)
	decodeQuiet(t, d, exporterA, largestTemplate(300))
	n := 0
	if err := d.Decode(ipfix(set(300, ip("192.0.2.9"))), exporterA, arrival, func(*flow.Record) { n++ }); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); n != 0 || s.TemplatesOverBytes != 1 || s.StoreBytes != 0 {
		t.Errorf("%d records read with the replaced template, stats %+v", n, s)
	}
}

// The estimates the bounds use are close to what the heap holds: the
// largest templates, and sampling rates.
func TestStoreEstimates(t *testing.T) {
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	const n = 200
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = largestTemplate(uint16(300 + i))
	}
	d := mustNew(t, Configuration{TemplatesMaxBytesPerExporter: 1 << 30, TemplatesMaxBytes: 1 << 30})
	decodeQuiet(t, d, exporterA, samplerOptions([]uint64{0}, 1)) // the exporter's state and maps
	before := heap()
	for _, p := range payloads {
		decodeQuiet(t, d, exporterA, p)
	}
	measured := (heap() - before) / n
	estimated := int64(d.Stats().StoreBytes-samplerCost) / n
	t.Logf("largest template (%d fields): %d bytes on the heap, %d estimated", largestFields, measured, estimated)
	if estimated < measured*9/10 || estimated > measured*3/2 {
		t.Errorf("largest template: estimated %d bytes, the heap holds %d", estimated, measured)
	}

	runtime.KeepAlive(d)
	runtime.KeepAlive(payloads)

	const m = 1 << 16
	ids := make([]uint64, 500)
	d = mustNew(t, Configuration{MaxSamplers: m})
	decodeQuiet(t, d, exporterA, samplerOptions([]uint64{0}, 1))
	before = heap()
	for batch := range m / len(ids) {
		for i := range ids {
			ids[i] = uint64(1 + batch*len(ids) + i)
		}
		decodeQuiet(t, d, exporterA, samplerOptions(ids, 10))
	}
	measured = (heap() - before) / (m / int64(len(ids)) * int64(len(ids)))
	t.Logf("sampling rate: %d bytes on the heap, %d estimated", measured, samplerCost)
	if samplerCost < measured*9/10 || samplerCost > measured*3 {
		t.Errorf("sampling rate: estimated %d bytes, the heap holds %d", samplerCost, measured)
	}
	runtime.KeepAlive(d)
}

// A save streams: for an exporter's 16 MiB of the largest templates it
// allocates a small part of what it writes (a build that marshalled the whole
// store allocated 107 MB here, for a file of 24 MB).
func TestSaveStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "templates.json")
	d := fullStore(t, path, 1)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := d.Save(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("saved %d bytes of %d templates, allocating %d bytes", fi.Size(), d.Stats().TemplatesAdded, allocated)
	if allocated > 2<<20 {
		t.Errorf("a save of %d bytes allocated %d bytes, want less than 2 MiB", fi.Size(), allocated)
	}
	if f := saved(t, d); len(f.Templates) != 224 {
		t.Errorf("%d templates in the file, want 224", len(f.Templates))
	}
}
