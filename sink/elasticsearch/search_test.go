package elasticsearch

import (
	"strings"
	"testing"
)

// A searcher reads the output's indices only: its pattern is the fixed
// prefix and "*", and an index name without a prefix (its pattern would be
// "*", the whole cluster) is refused.
func TestSearcherPattern(t *testing.T) {
	for _, tt := range []struct{ index, pattern, err string }{
		{"flows-%Y.%m.%d", "flows-*", ""},
		{"flows", "flows", ""},
		{"%Y.%m.%d-flows", "", "no fixed prefix"},
		{".%Y.%m.%d", "", "no fixed prefix"},
		{"%%flows-%Y", "%flows-*", ""},
	} {
		cfg := DefaultConfiguration()
		cfg.URLs = []string{"http://127.0.0.1:1"}
		cfg.Index = tt.index
		s, err := NewSearcher(cfg)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.index, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.index, err)
		case s.Pattern() != tt.pattern:
			t.Errorf("%s: pattern %q, want %q", tt.index, s.Pattern(), tt.pattern)
		}
	}
}
