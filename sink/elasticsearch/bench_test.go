package elasticsearch

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/document"
)

// discardTransport answers like Elasticsearch without doing anything: bulk
// bodies are read and dropped.
type discardTransport struct{}

func (discardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body := `{"acknowledged":true}`
	switch {
	case r.URL.Path == "/":
		body = `{"version":{"number":"8.19.21"}}`
	case strings.HasSuffix(r.URL.Path, "/_bulk"):
		body = `{"errors":false,"items":[]}`
	}
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"X-Elastic-Product": {"Elasticsearch"}, "Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

// benchDoc is a typical nfacctd record: 22 fields, about 520 bytes of JSON.
func benchDoc() *document.Document {
	var d document.Document
	d.SetString("event_type", "purge")
	d.SetInt("tag", 0)
	d.SetString("label", "")
	d.SetInt("as_src", 64496)
	d.SetInt("as_dst", 64511)
	d.SetString("peer_ip_src", "192.0.2.254")
	d.SetInt("iface_in", 3)
	d.SetInt("iface_out", 7)
	d.SetString("ip_src", "198.51.100.23")
	d.SetString("net_src", "198.51.100.0")
	d.SetString("ip_dst", "203.0.113.200")
	d.SetString("net_dst", "203.0.113.0")
	d.SetInt("port_src", 51234)
	d.SetInt("port_dst", 443)
	d.SetString("tcp_flags", "27")
	d.SetString("ip_proto", "tcp")
	d.SetString("timestamp_start", "2024-01-01 00:00:00.100000")
	d.SetString("timestamp_end", "2024-01-01 00:00:05.250000")
	d.SetString("timestamp_arrival", "2024-01-01 00:00:06.000000")
	d.SetString("stamp_inserted", "2024-01-01 00:00:00")
	d.SetString("stamp_updated", "2024-01-01 00:01:01")
	d.SetInt("packets", 7)
	d.SetInt("bytes", 430)
	return &d
}

func benchSink(b *testing.B, cfg Configuration) *Sink {
	cfg.URLs = []string{"http://es.invalid:9200"}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	s.transport = discardTransport{}
	return s
}

// BenchmarkEncode: time, index name, action line and document line.
func BenchmarkEncode(b *testing.B) {
	s := benchSink(b, DefaultConfiguration())
	doc := benchDoc()
	var e encoder
	b.ReportAllocs()
	for b.Loop() {
		t := recordTime(doc, time.UTC) // the pipeline's part, measured here as before
		s.encode(&e, doc, "Xq3v9c2Jd0n5fPqzT1mWkA", t)
	}
	b.SetBytes(int64(len(e.buf)))
}

// BenchmarkWrite: Write through to a transport that discards the bulk bodies.
func BenchmarkWrite(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run("workers="+string(rune('0'+workers)), func(b *testing.B) {
			cfg := DefaultConfiguration()
			cfg.Workers = workers
			cfg.FlushInterval.Duration = time.Hour
			s := benchSink(b, cfg)
			if err := s.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			doc := benchDoc()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Write(ctx, doc, "Xq3v9c2Jd0n5fPqzT1mWkA", recordTime(doc, time.UTC)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := s.Stop(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
