package routes

import (
	"strings"

	"github.com/flowdex/flowdex/aggregate/setting"
)

// Texts says what a route's texts keep, as pmacct's bgp_stdcomm_pattern,
// bgp_extcomm_pattern, bgp_lrgcomm_pattern and bgp_aspath_radius: of many
// communities only those an accounting task needs, of a long AS path its
// first hops. The zero value keeps everything.
type Texts struct {
	// StdComm, ExtComm and LrgComm are patterns: a community is kept when
	// one occurs in its text, as pmacct's do ("64500:64" keeps 64500:64,
	// 64500:640 to 64500:649, ... and 164500:64); '.' stands for any one
	// character, and a pattern with dots must reach the end of the text
	// ("64500:64..." keeps 64500:64000 to 64500:64999 only). None: every
	// community is kept.
	StdComm, ExtComm, LrgComm []string
	// ASPathRadius cuts AS paths to their first N hops (a set is one hop,
	// a prepended AS one hop each time); 0: whole.
	ASPathRadius int
}

// Validate checks the patterns and the radius; its errors name the key
// (setting.KeyError).
func (t *Texts) Validate() error {
	for _, p := range []struct {
		key      string
		patterns []string
	}{{"std_comm_patterns", t.StdComm}, {"ext_comm_patterns", t.ExtComm}, {"lrg_comm_patterns", t.LrgComm}} {
		for _, s := range p.patterns {
			if s == "" || strings.ContainsAny(s, "_, ") {
				return setting.Errorf(p.key, "%q: expected the beginning of a community's text, '.' for any character (e.g. \"64500:1..\")", s)
			}
		}
	}
	if t.ASPathRadius < 0 {
		return setting.Errorf("as_path_radius", "%d is negative (expected 0 for whole paths, or a number of hops)", t.ASPathRadius)
	}
	return nil
}

// Shape applies t to a's texts.
func (t *Texts) Shape(a *Attrs) {
	if t == nil {
		return
	}
	a.StdComm = keep(a.StdComm, t.StdComm)
	a.ExtComm = keep(a.ExtComm, t.ExtComm)
	a.LrgComm = keep(a.LrgComm, t.LrgComm)
	if t.ASPathRadius > 0 {
		hops := 0
		for i := range len(a.ASPath) {
			if a.ASPath[i] == '_' {
				if hops++; hops == t.ASPathRadius {
					a.ASPath = a.ASPath[:i]
					break
				}
			}
		}
	}
}

// keep returns the communities of text (joined by '_') that a pattern
// matches, in their order, each once; text whole without patterns. pmacct
// 1.7.7 differs in three ways, flowdex's choice each time: it writes a
// community from where the pattern occurs ("4501:9" keeps "4501:9" of
// 64501:9), lists the communities pattern by pattern (one that two match
// twice), and stops looking for a pattern with dots at its first
// occurrence that does not reach the end of its community.
func keep(text string, patterns []string) string {
	if len(patterns) == 0 || text == "" {
		return text
	}
	var b strings.Builder
	for c := range strings.SplitSeq(text, "_") {
		for _, p := range patterns {
			if matches(c, p) {
				if b.Len() > 0 {
					b.WriteByte('_')
				}
				b.WriteString(c)
				break
			}
		}
	}
	return b.String()
}

// matches tells whether pattern p occurs in community c: without dots
// anywhere, with dots (any one character each) from where its part before
// the first dot occurs to c's end.
func matches(c, p string) bool {
	fixed, _, dotted := strings.Cut(p, ".")
	if !dotted {
		return strings.Contains(c, p)
	}
	for i := 0; ; i++ {
		j := strings.Index(c[i:], fixed)
		if j < 0 {
			return false
		}
		i += j
		if len(c)-i == len(p) && wildMatch(c[i:], p) {
			return true
		}
	}
}

// wildMatch compares s and p of the same length, '.' in p matching any
// character.
func wildMatch(s, p string) bool {
	for i := range len(p) {
		if p[i] != '.' && p[i] != s[i] {
			return false
		}
	}
	return true
}
