package flow

import (
	"fmt"
	"strings"

	"github.com/flowdex/flowdex/aggregate/spelling"
)

// Sum modes: pmacct's sum_* primitives count each record twice, once under its
// source and once under its destination, keyed by the source's JSON name.
const (
	SumNone Sum = iota
	SumHost
	SumNet
	SumAS
	SumPort
	SumMAC
)

// Sum is the sum_* mode of an aggregate, SumNone for a plain one.
type Sum uint8

// Aggregate is a parsed pmacct aggregate list.
type Aggregate struct {
	Set Set
	Sum Sum
}

var sumNames = map[string]Sum{"sum_host": SumHost, "sum_net": SumNet, "sum_as": SumAS, "sum_port": SumPort, "sum_mac": SumMAC}

// sumPrimitive is the source primitive a sum_* mode reports under.
var sumPrimitive = [...]Primitive{SumHost: SrcHost, SumNet: SrcNet, SumAS: SrcAS, SumPort: SrcPort, SumMAC: SrcMAC}

// SumPrimitive returns the primitive a sum mode is written as (sum_host: ip_src).
func (s Sum) Primitive() Primitive { return sumPrimitive[s] }

// ParseAggregate reads pmacct's aggregate list. An empty list means src_host, as in
// pmacct; "none" alone means a single grand total; a sum_* primitive must be alone
// (flows may go with it).
func ParseAggregate(names []string) (Aggregate, error) {
	var a Aggregate
	if len(names) == 0 {
		return Aggregate{Set: Set{}.With(SrcHost)}, nil
	}
	seenNone := false
	for _, raw := range names {
		n := strings.ToLower(strings.TrimSpace(raw))
		if n == "none" {
			seenNone = true
			continue
		}
		if s, ok := sumNames[n]; ok {
			if a.Sum != SumNone {
				return Aggregate{}, fmt.Errorf("%q: only one sum_* primitive is allowed", raw)
			}
			a.Sum = s
			continue
		}
		p, ok := byName[n]
		if !ok {
			return Aggregate{}, fmt.Errorf("unknown primitive %q%s", raw, didYouMean(n))
		}
		if !table[p].Aggregated() {
			return Aggregate{}, fmt.Errorf("primitive %q is pmacct's, but flowdex does not aggregate on it yet", raw)
		}
		if a.Set.Has(p) {
			return Aggregate{}, fmt.Errorf("primitive %q listed twice", raw)
		}
		a.Set = a.Set.With(p)
	}
	if seenNone && (a.Set != (Set{}) || a.Sum != SumNone) {
		return Aggregate{}, fmt.Errorf(`"none" cannot be combined with other primitives`)
	}
	if a.Sum != SumNone {
		if a.Set.without(Flows) != (Set{}) {
			return Aggregate{}, fmt.Errorf("a sum_* primitive cannot be combined with other primitives (flows aside)")
		}
		a.Set = a.Set.With(a.Sum.Primitive())
	}
	return a, nil
}

// byName finds the primitives of the table by aggregate name, those flowdex
// does not aggregate on yet included.
var byName = func() map[string]Primitive {
	m := make(map[string]Primitive, numPrimitives)
	for p := range numPrimitives {
		if n := table[p].Name; n != "" {
			m[n] = p
		}
	}
	m["tcp_flags"] = TCPFlags // the JSON name, which people write too
	return m
}()

// KnownNames lists every aggregate name flowdex accepts, for messages.
func KnownNames() []string {
	names := []string{"none"}
	for p := range numPrimitives {
		if table[p].Aggregated() {
			names = append(names, table[p].Name)
		}
	}
	for n := range sumNames {
		names = append(names, n)
	}
	return names
}

func didYouMean(n string) string {
	if best := spelling.Closest(n, KnownNames()); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}
