package main

// Comparing pmacct's print-plugin records with flowdex's: as multisets of
// primitives -> counters, so that record order, and a key written in two
// records that sum up, do not matter.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// notCompared are keys that differ between two runs over the same datagrams
// by design: write and arrival times are wall clock in nfacctd and sfacctd.
// @timestamp is what the Elasticsearch output adds to a record.
var notCompared = []string{"stamp_updated", "timestamp_arrival", "@timestamp"}

// keySums are what the records of one key add up to.
type keySums struct {
	records        int
	packets, bytes int64
	flows          int64
	tcpFlags       int64 // OR-ed, as pmacct does
	hasFlags       bool
}

func (c keySums) String() string {
	s := fmt.Sprintf("packets %d bytes %d", c.packets, c.bytes)
	if c.flows != 0 {
		s += fmt.Sprintf(" flows %d", c.flows)
	}
	if c.hasFlags {
		s += fmt.Sprintf(" tcp_flags %d", c.tcpFlags)
	}
	return s
}

// sameSums: records is how many lines made up the key, not compared: pmacct
// and flowdex may split a key over purges differently.
func (c keySums) sameSums(o keySums) bool {
	return c.packets == o.packets && c.bytes == o.bytes && c.flows == o.flows &&
		c.hasFlags == o.hasFlags && c.tcpFlags == o.tcpFlags
}

// recordSums groups records by their primitives (every key but the keySums
// and notCompared) and adds up their keySums.
type recordSums map[string]keySums

func (s recordSums) total() (packets, bytes int64) {
	for _, c := range s {
		packets += c.packets
		bytes += c.bytes
	}
	return packets, bytes
}

// sumLines parses pmacct JSON lines (markers excluded); keep names fields of
// notCompared that are compared all the same (timestamp_arrival, where it is
// the capture's time).
func sumLines(lines []string, keep ...string) (recordSums, error) {
	docs := make([]map[string]any, 0, len(lines))
	for i, l := range lines {
		var m map[string]any
		d := json.NewDecoder(strings.NewReader(l))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return nil, fmt.Errorf("line %d: %v: %s", i+1, err, l)
		}
		if et, _ := m["event_type"].(string); et == "purge_init" || et == "purge_close" {
			continue // markers, if any
		}
		docs = append(docs, m)
	}
	return sumDocs(docs, keep...)
}

// sumDocs groups decoded documents as sumLines does.
func sumDocs(docs []map[string]any, keep ...string) (recordSums, error) {
	sums := recordSums{}
	for _, m := range docs {
		key := map[string]any{}
		var c keySums
		c.records = 1
		for k, v := range m {
			switch {
			case slices.Contains(notCompared, k) && !slices.Contains(keep, k):
			case k == "packets" || k == "bytes" || k == "flows":
				n, err := number(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %v in %v", k, err, m)
				}
				switch k {
				case "packets":
					c.packets = n
				case "bytes":
					c.bytes = n
				default:
					c.flows = n
				}
			case k == "tcp_flags":
				n, err := number(v)
				if err != nil {
					return nil, fmt.Errorf("tcp_flags: %v in %v", err, m)
				}
				c.tcpFlags, c.hasFlags = n, true
			default:
				key[k] = v
			}
		}
		b, err := json.Marshal(key) // sorted keys
		if err != nil {
			return nil, err
		}
		k := string(b)
		prev := sums[k]
		c.records += prev.records
		c.packets += prev.packets
		c.bytes += prev.bytes
		c.flows += prev.flows
		c.tcpFlags |= prev.tcpFlags
		c.hasFlags = c.hasFlags || prev.hasFlags
		sums[k] = c
	}
	return sums, nil
}

// number reads a counter or tcp_flags: a JSON number, or pmacct 1.7.7's
// decimal string ("tcp_flags": "27").
func number(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		return x.Int64()
	case float64:
		return int64(x), nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("not a number: %v (%T)", v, v)
}

// diffRecords lists the keys of want that got writes in another number of
// records. Where both purged once (pmacct at exit, flowdex with a refresh
// longer than the run), that number is 1 on both sides: a key written twice
// in one purge is a primitive aggregated on more than it shows.
func diffRecords(got, want recordSums) []string {
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; ok && g.records != w.records {
			diffs = append(diffs, fmt.Sprintf("%s: flowdex %d records, pmacct %d", k, g.records, w.records))
		}
	}
	slices.Sort(diffs)
	return diffs
}

// diffSums lists how got differs from want, one line each, sorted.
func diffSums(got, want recordSums) []string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, "missing "+k+": "+w.String())
		case !g.sameSums(w):
			diffs = append(diffs, "differs "+k+":\n      flowdex "+g.String()+"\n      pmacct  "+w.String())
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra   "+k+": "+g.String())
		}
	}
	slices.Sort(diffs)
	return diffs
}
