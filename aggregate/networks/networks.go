// Package networks reads pmacct's networks_file and answers longest-prefix
// matches on it.
//
// A line is [nexthop,][[peer_as_]origin_as,]prefix/len, as in pmacct's
// load_networks (src/net_aggr.c). Whitespace anywhere on a line is ignored,
// lines whose first character is '!' or '#' are comments, blank lines are
// skipped. Unlike pmacct, which logs and skips a malformed line, Parse rejects
// the file: a networks_file is configuration, and a silently missing prefix
// changes every aggregate it would have matched.
package networks

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Entry is one line of a networks_file.
type Entry struct {
	Prefix  netip.Prefix // masked: host bits are cleared, as pmacct does
	AS      uint32       // origin AS (as_src/as_dst), 0 when the line has none
	PeerAS  uint32       // peer AS (peer_as_src/peer_as_dst), 0 when none
	NextHop netip.Addr   // BGP next hop (peer_ip_dst), invalid when none
}

// Table answers longest-prefix matches over the entries of a networks_file.
// It is immutable once built and safe for concurrent use.
//
// Prefixes are flattened into disjoint address ranges, each labelled with its
// most specific entry, so a lookup is one binary search over a flat array:
// no allocation, no pointer chasing, and a few bytes per prefix.
type Table struct {
	entries []Entry
	v4      ranges[uint32]
	v6      ranges[u128]
	// v4top[h] is the first v4 range starting at or after the top 16 bits h;
	// it narrows a large table's search to the ranges of one /16 (256 KiB,
	// built only for tables large enough to gain from it). v6top likewise.
	v4top, v6top []uint32
}

// topMin is the number of ranges from which a top index pays for itself.
const topMin = 4096

// topIndex builds a top index over starts, given their top 16 bits.
func topIndex[T any](starts []T, top16 func(T) uint32) []uint32 {
	if len(starts) < topMin {
		return nil
	}
	idx := make([]uint32, 1<<16+1)
	j := 0
	for h := range uint32(1 << 16) {
		for j < len(starts) && top16(starts[j]) < h {
			j++
		}
		idx[h] = uint32(j)
	}
	idx[1<<16] = uint32(len(starts))
	return idx
}

// ranges holds the start of each range and the entry that covers it (-1: none).
// A range runs until the next start.
type ranges[T any] struct {
	starts []T
	idx    []int32
}

// u128 is an IPv6 address as a big-endian number, hi first.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) lessEq(b u128) bool { return !b.less(a) }

func (a u128) next() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

// hostMask returns the host bits of a prefix of the given length over width bits.
func hostMask(bits, width int) u128 {
	host := width - bits
	switch {
	case host <= 0:
		return u128{}
	case host < 64:
		return u128{0, 1<<host - 1}
	case host == 64:
		return u128{0, ^uint64(0)}
	case host < 128:
		return u128{1<<(host-64) - 1, ^uint64(0)}
	default:
		return u128{^uint64(0), ^uint64(0)}
	}
}

func key6(a netip.Addr) u128 {
	b := a.As16()
	return u128{
		uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
			uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7]),
		uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
			uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15]),
	}
}

func key4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Lookup returns the most specific entry whose prefix contains a. IPv4 addresses
// match IPv4 prefixes only; IPv4-mapped IPv6 addresses match IPv6 prefixes, as
// in pmacct where the family decides the table. A nil Table matches nothing.
func (t *Table) Lookup(a netip.Addr) (e Entry, ok bool) {
	if t == nil {
		return Entry{}, false
	}
	i := int32(-1)
	switch {
	case a.Is4():
		k := key4(a)
		s := t.v4.starts
		lo, hi := 0, len(s)
		if t.v4top != nil {
			lo, hi = int(t.v4top[k>>16]), int(t.v4top[k>>16+1])
		}
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if s[m] <= k {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo > 0 { // lo == 0 only when the table has no IPv4 range
			i = t.v4.idx[lo-1]
		}
	case a.Is6():
		k := key6(a)
		s := t.v6.starts
		lo, hi := 0, len(s)
		if t.v6top != nil {
			lo, hi = int(t.v6top[k.hi>>48]), int(t.v6top[k.hi>>48+1])
		}
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if s[m].lessEq(k) {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo > 0 { // lo == 0 only when the table has no IPv6 range
			i = t.v6.idx[lo-1]
		}
	}
	if i < 0 {
		return Entry{}, false
	}
	return t.entries[i], true
}

// Len returns the number of distinct prefixes in the table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Load reads a networks_file.
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("networks file: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// maxLine bounds a line; pmacct's own buffer is far smaller.
const maxLine = 64 << 10

// Parse reads a networks_file from r; name is used in error messages, which
// read "name:line: what was expected".
func Parse(r io.Reader, name string) (*Table, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var entries []Entry
	for line := 1; sc.Scan(); line++ {
		text := stripSpace(sc.Text())
		if text == "" || text[0] == '!' || text[0] == '#' {
			continue
		}
		e, err := parseLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return build(entries), nil
}

// stripSpace removes every white-space character, as pmacct's trim_all_spaces
// does before parsing ("10.0.0.1, 65000, 192.0.2.0/24" is valid).
func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\v\f") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\v', '\f':
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

const syntax = "[nexthop,][[peer_as_]origin_as,]prefix/len"

func parseLine(text string) (Entry, error) {
	var e Entry
	fields := strings.Split(text, ",")
	switch len(fields) {
	case 1, 2, 3:
	case 4:
		// pmacct skips a fourth leading field, the prefix label of a feature it
		// has since removed; accept and ignore it the same way.
		fields = fields[1:]
	default:
		return e, fmt.Errorf("%d comma-separated fields, expected %s", len(fields), syntax)
	}
	n := len(fields)
	if n == 3 {
		if nh := fields[0]; nh != "" {
			a, err := netip.ParseAddr(nh)
			if err != nil || a.Zone() != "" {
				return e, fmt.Errorf("next hop %q: expected an IPv4 or IPv6 address (%s)", nh, syntax)
			}
			e.NextHop = a
		}
	}
	if n >= 2 {
		asField := fields[n-2]
		origin := asField
		if peer, rest, found := strings.Cut(asField, "_"); found {
			v, err := parseAS(peer)
			if err != nil {
				return e, fmt.Errorf("peer AS %q: %w (%s)", peer, err, syntax)
			}
			e.PeerAS = v
			origin = rest
		}
		v, err := parseAS(origin)
		if err != nil {
			return e, fmt.Errorf("origin AS %q: %w (%s)", origin, err, syntax)
		}
		e.AS = v
	}
	p, err := parsePrefix(fields[n-1])
	if err != nil {
		return e, err
	}
	e.Prefix = p
	return e, nil
}

var errAS = errors.New("expected a decimal AS number (0-4294967295)")

// parseAS reads an AS number; an empty field is 0, as pmacct's strtoul gives.
func parseAS(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errAS
	}
	return uint32(v), nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	addr, bits, found := strings.Cut(s, "/")
	if !found {
		return netip.Prefix{}, fmt.Errorf("%q: missing /len, expected prefix/len such as 192.0.2.0/24 (%s)", s, syntax)
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: expected an IPv4 or IPv6 network address", s)
	}
	n, err := strconv.ParseUint(bits, 10, 8)
	if err != nil || int(n) > a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("%q: expected a prefix length from 0 to %d", s, a.BitLen())
	}
	return netip.PrefixFrom(a, int(n)).Masked(), nil
}

// span is an entry's prefix as an inclusive address range.
type span struct {
	start, end u128
	bits       int
	idx        int32
}

func build(all []Entry) *Table {
	// The same prefix listed twice: the later line wins, as in pmacct.
	last := make(map[netip.Prefix]int, len(all))
	for i, e := range all {
		last[e.Prefix] = i
	}
	entries := make([]Entry, 0, len(last))
	for i, e := range all {
		if last[e.Prefix] == i {
			entries = append(entries, e)
		}
	}
	var s4, s6 []span
	for i, e := range entries {
		p := e.Prefix
		if p.Addr().Is4() {
			start := u128{0, uint64(key4(p.Addr()))}
			m := hostMask(p.Bits(), 32)
			s4 = append(s4, span{start: start, end: u128{0, start.lo | m.lo}, bits: p.Bits(), idx: int32(i)})
			continue
		}
		start := key6(p.Addr())
		m := hostMask(p.Bits(), 128)
		s6 = append(s6, span{start: start, end: u128{start.hi | m.hi, start.lo | m.lo}, bits: p.Bits(), idx: int32(i)})
	}
	t := &Table{entries: entries}
	st4, id4 := flatten(s4, u128{0, 1<<32 - 1})
	t.v4.starts = make([]uint32, len(st4))
	for i, s := range st4 {
		t.v4.starts[i] = uint32(s.lo)
	}
	t.v4.idx = id4
	t.v6.starts, t.v6.idx = flatten(s6, u128{^uint64(0), ^uint64(0)})
	t.v4top = topIndex(t.v4.starts, func(s uint32) uint32 { return s >> 16 })
	t.v6top = topIndex(t.v6.starts, func(s u128) uint32 { return uint32(s.hi >> 48) })
	return t
}

// flatten turns distinct prefixes, which are either nested or disjoint, into
// sorted range starts, each with the index of the most specific span covering
// it (-1: none).
func flatten(spans []span, max u128) ([]u128, []int32) {
	if len(spans) == 0 {
		return nil, nil
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			if a.start.less(b.start) {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.bits, b.bits)
	})
	var starts []u128
	var idx []int32
	emit := func(pos u128, v int32) {
		n := len(starts)
		if n > 0 && starts[n-1] == pos {
			idx[n-1] = v
			if n > 1 && idx[n-2] == v {
				starts, idx = starts[:n-1], idx[:n-1]
			}
			return
		}
		if n > 0 && idx[n-1] == v {
			return
		}
		starts = append(starts, pos)
		idx = append(idx, v)
	}
	top := func(stack []span) int32 {
		if len(stack) == 0 {
			return -1
		}
		return stack[len(stack)-1].idx
	}
	emit(u128{}, -1)
	var stack []span
	for _, s := range spans {
		for len(stack) > 0 && stack[len(stack)-1].end.less(s.start) {
			done := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if done.end != max {
				emit(done.end.next(), top(stack))
			}
		}
		emit(s.start, s.idx)
		stack = append(stack, s)
	}
	for len(stack) > 0 {
		done := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if done.end != max {
			emit(done.end.next(), top(stack))
		}
	}
	return slices.Clip(starts), slices.Clip(idx)
}
