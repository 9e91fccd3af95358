package webview

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/flowdex/flowdex/aggregate/document"
	"github.com/flowdex/flowdex/sink/elasticsearch"
	"github.com/flowdex/flowdex/sink/elasticsearch/estest"
)

// testFlow is one document of the test's data.
type testFlow struct {
	src, dst       string
	sport, dport   int
	proto          string
	minute         int // after start
	packets, bytes int64
	label          string // a pre_tag_map's; tag is 0 in every document
}

var start = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// testFlows is an hour of traffic with a clear ranking, and two documents
// outside the hour the page is asked for (they must not count).
func testFlows() []testFlow {
	var fs []testFlow
	for m := range 60 {
		fs = append(fs,
			testFlow{"10.0.0.1", "192.0.2.10", 40000 + m, 443, "tcp", m, 100, 150_000 + int64(m), "customer-a"}, // no two ports tie
			testFlow{"10.0.0.2", "192.0.2.53", 50000 + m, 53, "udp", m, 10, 1_200, "customer-b"},
			// pmacct with num_protos writes 6 for tcp: one row all the same
			testFlow{"10.0.0.3", "192.0.2.10", 60000 + m, 22, []string{"tcp", "6"}[m%2], m, 20, 3_000, ""})
		if m%10 == 0 {
			fs = append(fs, testFlow{"2001:db8::7", "2001:db8::1", 123, 123, "udp", m, 1, 90, ""})
		}
	}
	return append(fs, testFlow{"10.9.9.9", "192.0.2.10", 1, 443, "tcp", -5, 1000, 9_999_999, ""},
		testFlow{"10.9.9.9", "192.0.2.10", 1, 443, "tcp", 61, 1000, 9_999_999, ""})
}

// indexFlows writes the flows through flowdex's own sink, so that the
// documents have its template and its @timestamp, and returns the searcher
// of the same output.
func indexFlows(t *testing.T, url string, fs []testFlow) *elasticsearch.Searcher {
	t.Helper()
	cfg := elasticsearch.DefaultConfiguration()
	cfg.URLs = []string{url}
	cfg.Index = estest.Index(t, "flowdex-test-web") + "-%Y.%m.%d"
	cfg.Replicas = 0
	sink, err := elasticsearch.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var d document.Document
	for i, f := range fs {
		d.Reset()
		d.SetString("ip_src", f.src)
		d.SetString("ip_dst", f.dst)
		d.SetInt("port_src", int64(f.sport))
		d.SetInt("port_dst", int64(f.dport))
		d.SetString("ip_proto", f.proto)
		d.SetInt("tag", 0)
		d.SetString("label", f.label)
		at := start.Add(time.Duration(f.minute) * time.Minute)
		d.SetString("stamp_inserted", at.Format(time.DateTime))
		d.SetInt("packets", f.packets)
		d.SetInt("bytes", f.bytes)
		if err := sink.Write(context.Background(), &d, "web-"+strconv.Itoa(i), at); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := sink.Stats(); st.Indexed != uint64(len(fs)) {
		t.Fatalf("%d of %d documents indexed", st.Indexed, len(fs))
	}
	searcher, err := elasticsearch.NewSearcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	estest.Refresh(t, url, searcher.Pattern())
	return searcher
}

// chromium finds Debian's chromium; without it the test is skipped, or fails
// on CI.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci || os.Getenv("FLOWDEX_REQUIRE_ES") == "1" {
		t.Fatal("no chromium (CI: this test must run; make deps installs Debian's chromium)")
	}
	t.Skip("no chromium (make deps installs it)")
	return ""
}

// headless runs chromium on url with args (--dump-dom, --screenshot=...),
// letting the page's scripts and requests finish first.
func headless(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=20000"}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	return stdout.Bytes()
}

// The page in headless Chromium against the real Elasticsearch: for the hour
// asked for, its tables show exactly the sums of the documents in that hour
// (ranked talkers, ports, protocols, with "other"), the traffic chart covers
// the hour, and a screenshot shows the charts drawn in their colours.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	url := estest.URL(t)
	fs := testFlows()
	searcher := indexFlows(t, url, fs)
	view, err := New(Configuration{Searcher: searcher, Indices: searcher.Pattern()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(view)
	defer srv.Close()
	page := fmt.Sprintf("%s/?from=%s&to=%s", srv.URL, start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339))

	// what the page must show, summed here from the documents
	type sums struct{ bytes, packets int64 }
	want := map[string]map[string]sums{}
	var total sums
	for _, f := range fs {
		if f.minute < 0 || f.minute >= 60 {
			continue
		}
		total.bytes += f.bytes
		total.packets += f.packets
		proto := f.proto
		if proto == "6" {
			proto = "tcp"
		}
		for by, key := range map[string]string{"ip_src": f.src, "ip_dst": f.dst, "port_dst": strconv.Itoa(f.dport),
			"port_src": strconv.Itoa(f.sport), "ip_proto": proto, "label": f.label} {
			if want[by] == nil {
				want[by] = map[string]sums{}
			}
			s := want[by][key]
			want[by][key] = sums{s.bytes + f.bytes, s.packets + f.packets}
		}
	}

	dumped := headless(t, bin, page, "--dump-dom")
	dom, err := html.Parse(bytes.NewReader(dumped))
	if err != nil {
		t.Fatal(err)
	}
	body := find(dom, func(n *html.Node) bool { return n.Data == "body" })
	if r := attr(body, "data-rendered"); r != "true" {
		t.Fatalf("the page did not render (data-rendered=%q): %s\n%.3000s", r, text(find(dom, func(n *html.Node) bool { return attr(n, "id") == "error" })), dumped)
	}
	tot := find(dom, func(n *html.Node) bool { return attr(n, "id") == "traffic-total" })
	if attr(tot, "data-bytes") != strconv.FormatInt(total.bytes, 10) || attr(tot, "data-packets") != strconv.FormatInt(total.packets, 10) ||
		attr(tot, "data-buckets") != "60" {
		t.Errorf("traffic total: bytes %s packets %s buckets %s; want %d, %d, 60 one-minute buckets",
			attr(tot, "data-bytes"), attr(tot, "data-packets"), attr(tot, "data-buckets"), total.bytes, total.packets)
	}
	// the traffic chart plots each minute's bits per second
	perMinute := make([]float64, 60)
	for _, f := range fs {
		if f.minute >= 0 && f.minute < 60 {
			perMinute[f.minute] += float64(f.bytes) * 8 / 60
		}
	}
	var plotted []float64
	traffic := find(dom, func(n *html.Node) bool { return attr(n, "id") == "traffic-chart" })
	if title := attr(traffic, "data-x-title"); title != "time (UTC)" {
		t.Errorf("the traffic chart's time axis is titled %q, want it to say its zone: \"time (UTC)\"", title)
	}
	if err := json.Unmarshal([]byte(attr(traffic, "data-values")), &plotted); err != nil || len(plotted) != 60 {
		t.Errorf("traffic chart values %q: %v", attr(traffic, "data-values"), err)
	}
	for m := range plotted {
		if math.Abs(plotted[m]-perMinute[m]) > 1e-6*perMinute[m] {
			t.Errorf("traffic chart, minute %d: %v bit/s, want %v", m, plotted[m], perMinute[m])
		}
	}
	// the optional sections: labels, which the documents have; no tags
	// (all 0) nor NAT
	for by, hidden := range map[string]bool{"label": false, "tag": true, "post_nat_ip_src": true} {
		section := find(dom, func(n *html.Node) bool { return n.Data == "section" && attr(n, "data-by") == by })
		if section == nil {
			t.Errorf("no section for %s", by)
		} else if _, h := attrOK(section, "hidden"); h != hidden {
			t.Errorf("section %s: hidden %v, want %v", by, h, hidden)
		}
	}
	for by, keys := range want {
		section := find(dom, func(n *html.Node) bool { return n.Data == "section" && attr(n, "data-by") == by })
		if section == nil {
			t.Errorf("no section for %s", by)
			continue
		}
		// the ten largest by bytes, then "other" with the rest
		ranked := make([]string, 0, len(keys))
		for k := range keys {
			ranked = append(ranked, k)
		}
		sort.Slice(ranked, func(i, j int) bool { return keys[ranked[i]].bytes > keys[ranked[j]].bytes })
		var wantRows []string
		var other sums
		for i, k := range ranked {
			if i < 10 {
				wantRows = append(wantRows, fmt.Sprintf("%s %d %d", k, keys[k].bytes, keys[k].packets))
			} else {
				other = sums{other.bytes + keys[k].bytes, other.packets + keys[k].packets}
			}
		}
		if other.bytes > 0 {
			wantRows = append(wantRows, fmt.Sprintf("other %d %d", other.bytes, other.packets))
		}
		var gotRows []string
		for _, tr := range findAll(section, func(n *html.Node) bool { _, row := attrOK(n, "data-key"); return n.Data == "tr" && row }) {
			gotRows = append(gotRows, fmt.Sprintf("%s %s %s", attr(tr, "data-key"), attr(tr, "data-bytes"), attr(tr, "data-packets")))
		}
		if strings.Join(gotRows, "\n") != strings.Join(wantRows, "\n") {
			t.Errorf("%s table:\n%s\nwant\n%s", by, strings.Join(gotRows, "\n"), strings.Join(wantRows, "\n"))
		}
		// the bar chart plots the top rows' bytes (not "other")
		var labels []string
		var values []int64
		canvas := find(section, func(n *html.Node) bool { return n.Data == "canvas" })
		if json.Unmarshal([]byte(attr(canvas, "data-labels")), &labels) != nil || json.Unmarshal([]byte(attr(canvas, "data-values")), &values) != nil {
			t.Errorf("%s chart: labels %q values %q", by, attr(canvas, "data-labels"), attr(canvas, "data-values"))
			continue
		}
		var bars []string
		for i := range labels {
			bars = append(bars, fmt.Sprintf("%s %d", labels[i], values[i]))
		}
		var wantBars []string
		for i, k := range ranked {
			if i < 10 {
				wantBars = append(wantBars, fmt.Sprintf("%s %d", k, keys[k].bytes))
			}
		}
		if strings.Join(bars, "\n") != strings.Join(wantBars, "\n") {
			t.Errorf("%s chart:\n%s\nwant\n%s", by, strings.Join(bars, "\n"), strings.Join(wantBars, "\n"))
		}
	}

	dir := os.Getenv("FLOWDEX_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "webview.png")
	headless(t, bin, page, "--screenshot="+shot, "--window-size=1280,1600")
	t.Logf("screenshot: %s", shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 1600 {
		t.Errorf("screenshot is %v", b)
	}
	// the charts' colours: the traffic line (#1d6fb8) and the bars (#457b9d)
	seen := map[[3]uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}]++
		}
	}
	if line, bars := seen[[3]uint32{0x1d, 0x6f, 0xb8}], seen[[3]uint32{0x45, 0x7b, 0x9d}]; line < 50 || bars < 500 {
		t.Errorf("the charts are not drawn: %d pixels of the line colour, %d of the bars'", line, bars)
	}
}

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if all := findAll(n, match); len(all) > 0 {
		return all[0]
	}
	return nil
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range findAll(n, func(*html.Node) bool { return true }) {
		for t := c.FirstChild; t != nil; t = t.NextSibling {
			if t.Type == html.TextNode {
				b.WriteString(t.Data)
			}
		}
	}
	return b.String()
}

// attrOK returns n's attribute key and whether it has one.
func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}
