package elasticsearch

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/aggregate/setting"
	"github.com/flowdex/flowdex/internal/testwatch"
)

// The fields checked as addresses are those the template maps as ip with
// ignore_malformed: flowdex's own, or an index body file's.
func TestIgnoredAddressFields(t *testing.T) {
	s, err := New(DefaultConfiguration(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ip_dst", "ip_src", "net_dst", "net_src", "peer_ip_dst", "peer_ip_src", "post_nat_ip_dst", "post_nat_ip_src", "tunnel_ip_dst", "tunnel_ip_src"}
	if got := s.c.addrFields.names; !slices.Equal(got, want) {
		t.Errorf("flowdex's template: %q, want %q", got, want)
	}
	body := filepath.Join(t.TempDir(), "index.json")
	if err := os.WriteFile(body, []byte(`{"mappings": {"properties": {"src": {"type": "ip", "ignore_malformed": "true"},
		"dst": {"type": "ip"}, "peer": {"type": "keyword", "ignore_malformed": true}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfiguration()
	cfg.IndexBodyFile = body
	if s, err = New(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.c.addrFields.names; !slices.Equal(got, []string{"src"}) {
		t.Errorf("index body: %q, want [src] (dst: Elasticsearch refuses the document)", got)
	}
	cfg = DefaultConfiguration()
	cfg.Template = false
	if s, err = New(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.c.addrFields.names; got != nil {
		t.Errorf("no template: %q, want none (the mapping is unknown)", got)
	}
}

// A value of an address field that is not an address is counted and
// logged, rate-limited, with its field, value and index; pmacct's "" for
// none is not; the valid path allocates nothing.
func TestMalformedAddressesCounted(t *testing.T) {
	var logs testwatch.Log
	s, err := New(DefaultConfiguration(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.addrs.log.Every = time.Hour // the third is held back, whatever the machine's speed
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	good := benchDoc()
	good.SetString("peer_ip_dst", "") // pmacct's none
	good.SetString("post_nat_ip_src", "2001:db8::1")
	good.SetString("tunnel_ip_src", "fe80::1%eth0")
	var e encoder
	s.encode(&e, good, "id", at)
	if n := s.Stats().MalformedAddresses; n != 0 || logs.String() != "" {
		t.Fatalf("valid addresses: %d counted, log %q", n, logs.String())
	}
	if n := testing.AllocsPerRun(100, func() { s.encode(&e, good, "id", at) }); n != 0 {
		t.Errorf("%v allocations per valid document, want 0", n)
	}
	bad := benchDoc()
	bad.SetString("ip_src", "not-an-address")
	bad.SetString("ip_dst", "192.0.2.0/24") // a prefix is not an ip
	bad.SetInt("tunnel_ip_dst", 3232235777) // nor a number
	bad.SetString("label", "junk")          // not an address field: a keyword
	s.encode(&e, bad, "id", at)
	if n := s.Stats().MalformedAddresses; n != 3 {
		t.Errorf("%d malformed addresses counted, want 3", n)
	}
	log := logs.String()
	if strings.Count(log, "\n") != 1 || !strings.Contains(log, "level=WARN") || !strings.Contains(log, "field=ip_src") ||
		!strings.Contains(log, `value="\"not-an-address\""`) || !strings.Contains(log, "index=flowdex-2024.01.02") {
		t.Errorf("want one warning naming the field, value and index:\n%s", log)
	}
	// the document goes as it came: Elasticsearch keeps it, without the field
	if !strings.Contains(string(e.buf), `"ip_src":"not-an-address"`) {
		t.Errorf("document changed: %s", e.buf)
	}
}

// encode keeps the last second's index name and @timestamp text: documents
// of other seconds, zones and index patterns get their own, as formatting
// each time would give them.
func TestEncodeTimes(t *testing.T) {
	tokyo, err := setting.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	doc := benchDoc()
	for _, c := range []struct {
		index string
		zone  setting.Location
		times []time.Time
		want  []string // index name, @timestamp
	}{
		{"flows-%Y.%m.%d", setting.Location{}, []time.Time{
			time.Date(2024, 1, 1, 23, 59, 59, 999_999_999, time.UTC),
			time.Date(2024, 1, 1, 23, 59, 59, 5_000_000, time.UTC),
			time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC),
			time.Date(2024, 1, 2, 9, 0, 0, 120_000_000, tokyo.Location), // the same second as before, another zone
			time.Date(2023, 12, 31, 23, 59, 59, 999_000_000, time.FixedZone("-01", -3600)),
		}, []string{
			"flows-2024.01.01", "2024-01-01T23:59:59.999Z",
			"flows-2024.01.01", "2024-01-01T23:59:59.005Z",
			"flows-2024.01.02", "2024-01-02T00:00:00.000Z",
			"flows-2024.01.02", "2024-01-02T00:00:00.120Z",
			"flows-2024.01.01", "2024-01-01T00:59:59.999Z",
		}},
		{"flows-%Y.%m.%d-%H", tokyo, []time.Time{
			time.Date(2024, 1, 1, 14, 59, 59, 0, time.UTC),
			time.Date(2024, 1, 1, 15, 0, 0, 0, time.UTC),
		}, []string{
			"flows-2024.01.01-23", "2024-01-01T14:59:59.000Z",
			"flows-2024.01.02-00", "2024-01-01T15:00:00.000Z",
		}},
		{"flows-%S.%f", setting.Location{}, []time.Time{
			time.Date(2024, 1, 1, 0, 0, 7, 1_000, time.UTC),
			time.Date(2024, 1, 1, 0, 0, 7, 2_000, time.UTC),
		}, []string{
			"flows-07.000001", "2024-01-01T00:00:07.000Z",
			"flows-07.000002", "2024-01-01T00:00:07.000Z",
		}},
	} {
		cfg := DefaultConfiguration()
		cfg.Index, cfg.IndexLocation = c.index, c.zone
		s, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var e encoder
		for i, at := range c.times {
			it := s.encode(&e, doc, "id", at)
			index := strings.Trim(string(it.index(e.buf)), `"`)
			var got struct {
				Timestamp string `json:"@timestamp"`
			}
			if err := json.Unmarshal(it.document(e.buf), &got); err != nil {
				t.Fatalf("%s: %v", it.document(e.buf), err)
			}
			if index != c.want[2*i] || got.Timestamp != c.want[2*i+1] {
				t.Errorf("%s, %v: index %s, @timestamp %s; want %s, %s", c.index, at, index, got.Timestamp, c.want[2*i], c.want[2*i+1])
			}
		}
	}
}
