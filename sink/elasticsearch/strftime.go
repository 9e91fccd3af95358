package elasticsearch

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flowdex/flowdex/internal/strftime"
)

// templatePattern is the index pattern matching every name of p: the prefix
// and "*", or the name itself when it has no codes.
func templatePattern(p *strftime.Pattern) string {
	if !p.HasCodes() {
		return p.Prefix()
	}
	return p.Prefix() + "*"
}

// sampleTimes give every code its widest and its edge values.
var sampleTimes = []time.Time{
	time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 9, 25, 12, 30, 30, 500000000, time.UTC), // Wednesday, September
	time.Date(2099, 12, 31, 23, 59, 59, 999999999, time.UTC),
}

// validateIndex renders p at sample times and checks the names against
// Elasticsearch's rules for index names: names, %p, %Z and the composites with
// spaces, slashes or colons never make a valid one (uppercase, forbidden
// characters).
func validateIndex(p *strftime.Pattern) error {
	for _, t := range sampleTimes {
		name := string(p.Render(nil, t))
		if err := validateName(name); err != nil {
			if p.HasCodes() {
				return fmt.Errorf("renders as %q, which is not a valid Elasticsearch index name: %w", name, err)
			}
			return fmt.Errorf("not a valid Elasticsearch index name: %w", err)
		}
	}
	return nil
}

// validateName applies Elasticsearch's index-name rules
// (MetadataCreateIndexService.validateIndexOrAliasName), and refuses control
// characters too.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case name == "." || name == "..":
		return errors.New(`must not be "." or ".."`)
	case len(name) > 255:
		return fmt.Errorf("longer than 255 bytes (%d)", len(name))
	case strings.ToLower(name) != name:
		return errors.New("must be lowercase")
	case strings.IndexAny(name[:1], "-_+") == 0:
		return fmt.Errorf("must not start with %q", name[:1])
	}
	if i := strings.IndexAny(name, "\\/*?\"<>| ,#:"); i >= 0 {
		return fmt.Errorf("must not contain %q", name[i:i+1])
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("must not contain the control character %q", r)
		}
	}
	return nil
}

// Strftime renders a Python strftime pattern (the codes index names accept) for t.
func Strftime(pattern string, t time.Time) (string, error) {
	p, err := strftime.Compile(pattern)
	if err != nil {
		return "", err
	}
	return string(p.Render(nil, t)), nil
}
