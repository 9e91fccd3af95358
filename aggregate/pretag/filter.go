package pretag

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// Filters are a pipeline's pre_tag_filter, pre_tag2_filter and
// pre_tag_label_filter: a record goes through when each accepts it. The
// zero Filters accepts every record.
type Filters struct {
	Tag, Tag2 TagFilter
	Label     LabelFilter
}

// Match reports whether r passes the filters.
func (f *Filters) Match(r *flow.Record) bool {
	return f.Tag.Match(r.Tag) && f.Tag2.Match(r.Tag2) && f.Label.Match(flow.LabelText(r.Label))
}

// Empty reports whether the filters accept every record.
func (f *Filters) Empty() bool {
	return f.Tag.items == nil && f.Tag2.items == nil && f.Label.items == nil
}

// TagFilter is pmacct's pre_tag_filter (or pre_tag2_filter): a comma list
// of tags ("0": untagged) and ranges low-high, each with '-' before it for
// "not". As pmacct's evaluate_tags, the items are tried in order: one that
// covers the tag decides (in, or out if negated); a negated one that does
// not cover it lets the record in at once. So only the first negated item
// counts ("-1,-2" lets tag 2 through, pmacct's behaviour kept and named in
// the README); no item deciding keeps the record out.
type TagFilter struct{ items []tagItem }

type tagItem struct {
	lo, hi uint64
	neg    bool
}

// ParseTagFilter reads a pre_tag_filter. Blanks are ignored, as pmacct
// does; a range whose high end is not above its low end, or an item that is
// no number, is an error (pmacct reads "abc" as 0, and stops reading at a
// bad range).
func ParseTagFilter(s string) (TagFilter, error) {
	var f TagFilter
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	for item := range strings.SplitSeq(s, ",") {
		if item == "" {
			continue
		}
		it := tagItem{neg: strings.HasPrefix(item, "-")}
		body := strings.TrimPrefix(item, "-")
		lo, hi, isRange := strings.Cut(body, "-")
		var err error
		if it.lo, err = strconv.ParseUint(lo, 10, 64); err != nil {
			return TagFilter{}, fmt.Errorf("%q: expected a tag, a range low-high, or either after '-' for \"not\"", item)
		}
		it.hi = it.lo
		if isRange {
			if it.hi, err = strconv.ParseUint(hi, 10, 64); err != nil || it.hi <= it.lo {
				return TagFilter{}, fmt.Errorf("%q: expected a range low-high with high above low", item)
			}
		}
		f.items = append(f.items, it)
	}
	return f, nil
}

// Match reports whether tag passes.
func (f TagFilter) Match(tag uint64) bool {
	return decide(len(f.items), func(i int) (bool, bool) {
		it := &f.items[i]
		return tag >= it.lo && tag <= it.hi, it.neg
	})
}

// decide is pmacct's evaluation of a filter's n items (evaluate_tags,
// evaluate_labels): item(i) says whether item i covers the record and
// whether it is negated. No item: every record passes.
func decide(n int, item func(i int) (covers, neg bool)) bool {
	if n == 0 {
		return true
	}
	for i := range n {
		covers, neg := item(i)
		if covers {
			return !neg
		}
		if neg {
			return true
		}
	}
	return false
}

// LabelFilter is pmacct's pre_tag_label_filter: a comma list of labels,
// "null" for a record without one, each with '-' before it for "not",
// tried as TagFilter's items are. As in pmacct, an item matches a label
// that starts with it: "core" matches "core,r1" (a chain's labels) and
// "core2" too.
type LabelFilter struct{ items []labelItem }

type labelItem struct {
	label string
	neg   bool
}

// ParseLabelFilter reads a pre_tag_label_filter; blanks around an item are
// ignored (pmacct keeps them, so that "a, b" never matches b).
func ParseLabelFilter(s string) (LabelFilter, error) {
	var f LabelFilter
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		it := labelItem{neg: strings.HasPrefix(item, "-"), label: strings.TrimPrefix(item, "-")}
		if it.label == "" {
			return LabelFilter{}, fmt.Errorf("%q: expected a label, or null, after '-'", item)
		}
		f.items = append(f.items, it)
	}
	return f, nil
}

// Match reports whether a record of label ("" without one) passes.
func (f LabelFilter) Match(label string) bool {
	if label == "" {
		label = "null"
	}
	return decide(len(f.items), func(i int) (bool, bool) {
		it := &f.items[i]
		return strings.HasPrefix(label, it.label), it.neg
	})
}
