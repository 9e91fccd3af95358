package pretag

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkApply: a 20-rule map, the record matching the last rule (the
// worst case: every rule tried), then a jeq chain of two labels.
func BenchmarkApply(b *testing.B) {
	var m strings.Builder
	for i := range 19 {
		fmt.Fprintf(&m, "set_tag=%d ip=192.0.2.%d in=-%d\n", i+1, i+1, 100+i)
	}
	m.WriteString("set_tag=20 ip=198.51.100.0/24 src_net=10.0.0.0/8\n")
	mp, err := Parse("m", []byte(m.String()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := rec("198.51.100.1", 7, "10.1.2.3")
	b.Run("20 rules", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mp.Apply(r)
		}
		if r.Tag != 20 {
			b.Fatal(r.Tag)
		}
	})
	chain, err := Parse("m", []byte("set_label=a ip=198.51.100.1 jeq=b\nset_label=b label=b\n"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("labels chained", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			chain.Apply(r)
		}
	})
}

// BenchmarkFilters: the three filters of a pipeline on one record.
func BenchmarkFilters(b *testing.B) {
	var f Filters
	var err error
	if f.Tag, err = ParseTagFilter("1-10,-20,30"); err != nil {
		b.Fatal(err)
	}
	if f.Label, err = ParseLabelFilter("core,edge"); err != nil {
		b.Fatal(err)
	}
	r := rec("198.51.100.1", 7, "10.1.2.3")
	r.Tag = 30
	b.ReportAllocs()
	for b.Loop() {
		if f.Match(r) {
			b.Fatal("matched")
		}
	}
}
