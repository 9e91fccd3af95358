package elasticsearch

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
	var buf []byte
	buf, _ = s.encode(buf[:0], good, "id", at)
	if n := s.Stats().MalformedAddresses; n != 0 || logs.String() != "" {
		t.Fatalf("valid addresses: %d counted, log %q", n, logs.String())
	}
	if n := testing.AllocsPerRun(100, func() { buf, _ = s.encode(buf[:0], good, "id", at) }); n != 0 {
		t.Errorf("%v allocations per valid document, want 0", n)
	}
	bad := benchDoc()
	bad.SetString("ip_src", "not-an-address")
	bad.SetString("ip_dst", "192.0.2.0/24") // a prefix is not an ip
	bad.SetInt("tunnel_ip_dst", 3232235777) // nor a number
	bad.SetString("label", "junk")          // not an address field: a keyword
	buf, _ = s.encode(buf[:0], bad, "id", at)
	if n := s.Stats().MalformedAddresses; n != 3 {
		t.Errorf("%d malformed addresses counted, want 3", n)
	}
	log := logs.String()
	if strings.Count(log, "\n") != 1 || !strings.Contains(log, "level=WARN") || !strings.Contains(log, "field=ip_src") ||
		!strings.Contains(log, `value="\"not-an-address\""`) || !strings.Contains(log, "index=flowdex-2024.01.02") {
		t.Errorf("want one warning naming the field, value and index:\n%s", log)
	}
	// the document goes as it came: Elasticsearch keeps it, without the field
	if !strings.Contains(string(buf), `"ip_src":"not-an-address"`) {
		t.Errorf("document changed: %s", buf)
	}
}
