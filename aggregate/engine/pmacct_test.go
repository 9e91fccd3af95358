package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowdex/flowdex/internal/testwatch"
)

// A pmacct line with bytes that are not UTF-8 in a value is written (with
// U+FFFD in their place), counted in the engine's counters and on /metrics,
// and the warning names its line.
func TestInvalidUTF8Counted(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.json")
	in := `{"ip_src": "192.0.2.1", "bytes": 1}` + "\n" +
		`{"ip_src": "192.0.2.2", "label": "caf` + "\xe9" + `", "bytes": 2}` + "\n" +
		`{"ip_src": "192.0.2.3", "bytes": 3}` + "\n"
	e := startEngine(t, `
[[input]]
type = "pmacct"
file = "-"
[[pipeline]]
[output.print]
type = "print"
file = "`+out+`"
[http]
listen = "127.0.0.1:0"
`, strings.NewReader(in))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	m := testwatch.Metrics(t, "http://"+e.HTTPAddr())
	if _, err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if c := e.Counters(); c.Records != 3 || c.BadLines != 0 || c.InvalidUTF8 != 1 {
		t.Errorf("counters %+v, want 3 records, 1 with invalid UTF-8", c)
	}
	if got := m["flowdex_pmacct_invalid_utf8_lines_total"][""]; got != 1 {
		t.Errorf("flowdex_pmacct_invalid_utf8_lines_total %v, want 1", got)
	}
	printed, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(printed), "\n"); n != 3 || !strings.Contains(string(printed), `"label": "caf\ufffd"`) {
		t.Errorf("printed %d documents, want 3, the label with U+FFFD:\n%s", n, printed)
	}
	var warning string
	for _, l := range strings.Split(e.log.String(), "\n") {
		if strings.Contains(l, "invalid UTF-8") {
			warning = l
		}
	}
	if !strings.Contains(warning, "level=WARN") || !strings.Contains(warning, "source=stdin") || !strings.Contains(warning, "line=2 ") {
		t.Errorf("warning %q, want one naming line 2 of stdin\n%s", warning, e.log.String())
	}
}
