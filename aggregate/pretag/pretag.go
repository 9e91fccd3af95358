// Package pretag is pmacct's pre_tag_map: rules, read from a file, that set
// each record's tag, tag2 and label before the pipelines see it; and the
// pipelines' pre_tag_filter, pre_tag2_filter and pre_tag_label_filter, which
// select records by that result (filter.go).
//
// A line is a rule of key=value pairs separated by blanks (a value with
// blanks in single quotes, as a filter's); lines whose first character
// other than a blank is '!' or '#' are comments. Rules are tried in file
// order among those of the exporter's address family (a rule without ip
// serves both), the first whose every condition holds sets what it sets and
// ends the search, unless it has jeq: the search then goes on from the
// later rule of that label (or the next rule, jeq=next), and a rule matched
// after it overwrites the tags (stack=sum adds to them, stack=or ORs) and
// appends its label after a ','.
//
// Where flowdex differs from pmacct 1.7.7 (the project's README,
// "pre_tag_map", says the same), on purpose:
//   - a line pmacct would log and skip (an unknown key, a bad value, a key
//     twice) refuses the whole map, with file:line:column and what was
//     expected: a rule silently gone changes every record it would have
//     tagged;
//   - a rule sets every set_* key it has: 1.7.7 sets only one of set_tag,
//     set_tag2 and set_label, with the value of the last tag key on the
//     line;
//   - jeq=next works for IPv6 exporters too (1.7.7 leaves it unresolved),
//     and a jeq that names no later rule at all is an error, not a
//     warning (one whose rule is of the other address family ends the
//     search for that family, as in pmacct);
//   - set_label may hold ',' (as pmacct 1.7.8 allows; 1.7.7 refuses it);
//   - nexthop does not match a record without a next hop (1.7.7 compares
//     nothing and matches it);
//   - return is refused (deprecated in pmacct, and 1.7.7 crashes when
//     return=true meets jeq); keys of pmacct that flowdex does not match on
//     yet are refused by name, not ignored.
package pretag

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flowdex/flowdex/aggregate/filter"
	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/mapfile"
)

// Map is a loaded pre_tag_map. It is immutable, and Apply is safe for
// concurrent use.
type Map struct {
	v4, v6, all []entry // the rules by exporter family; all: every rule, a capture's (no exporter)

	// chains are the labels of jeq chains, joined: up to 4 labels' numbers
	// to the number of their join, so that a chained record costs a lookup,
	// not a join and the label table's lock
	chainMu sync.RWMutex
	chains  map[[maxChain]uint32]uint32
}

// maxChain is the longest chain of labels whose join is kept; a longer one
// is joined for each record.
const maxChain = 4

// entry is a rule in one of the lists, with its jump resolved in that list.
type entry struct {
	*rule
	jump int // the index jeq resumes at; -1: none
	// next counts the N++ tags given out, tag's and tag2's: each list's
	// entry its own, as pmacct's (a rule without ip counts apart for IPv4
	// and IPv6 exporters)
	next *[2]atomic.Uint64
}

type rule struct {
	line   int
	ip     netip.Prefix // !IsValid: any exporter
	conds  []cond
	sets   uint8 // setTag, setTag2, setLabel
	tag    uint64
	tag2   uint64
	incs   uint8 // setTag, setTag2: N++, the value increases each time the rule sets it
	label  string
	lid    uint32 // label's flow.LabelID
	stack  byte   // 0, '+' (sum) or '|' (or)
	name   string
	jeq    string
	jeqCol int
}

const (
	setTag = 1 << iota
	setTag2
	setLabel
)

// cond is one condition of a rule: a record field against a value.
type cond struct {
	what   condKind
	neg    bool
	num    uint64
	prefix netip.Prefix
	mac    [6]byte
	filter *filter.Filter
}

type condKind uint8

const (
	condIn condKind = iota
	condOut
	condEngineID // NetFlow's source id, IPFIX's domain
	condAgentID  // sFlow's sub-agent id (the same Record field)
	condVLAN
	condSrcMAC
	condDstMAC
	condSrcNet
	condDstNet
	condFilter
	condSrcAS
	condDstAS
	condNATEvent
	condMPLSPWID
	condDirection  // IE 61: 0 ingress (or none), 1 egress
	condSampleType // num: 0 a flow, 1 an event
	condNextHop    // prefix: the address
	condEngineType // NetFlow v5's; never another version's
	condCVLAN
	condMulticast // num 1: the destination MAC's group bit is set
	condBiFlow    // num 1: the template has both bi-flow counters
	condFwdStatus // never without a one-octet status; a class (0, 64, 128, 192) matches its statuses
	condFlowsetID // never but for a v9/IPFIX record
)

// Options say what the map is for.
type Options struct {
	// Capture: the records come from a packet capture (pmacctd), which has
	// no exporter: ip is refused and every rule is tried.
	Capture bool
	// SFlow: the records come from sFlow (sfacctd): agent_id is taken,
	// engine_id refused (sfacctd ignores it); elsewhere the reverse.
	SFlow bool
}

// Load reads and parses the map in path.
func Load(path string, o Options) (*Map, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, o)
}

// Parse parses a map; name prefixes the errors (file:line:column: ...).
func Parse(name string, data []byte, o Options) (*Map, error) {
	var rules []*rule
	err := mapfile.Read(name, data, func(n int, pairs []mapfile.Pair) error {
		r, err := parseRule(n, pairs, o)
		if err == nil {
			rules = append(rules, r)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	m := &Map{}
	for _, r := range rules {
		m.all = append(m.all, entry{rule: r, next: new([2]atomic.Uint64)})
		if !r.ip.IsValid() || r.ip.Addr().Is4() {
			m.v4 = append(m.v4, entry{rule: r, next: new([2]atomic.Uint64)})
		}
		if !r.ip.IsValid() || r.ip.Addr().Is6() {
			m.v6 = append(m.v6, entry{rule: r, next: new([2]atomic.Uint64)})
		}
	}
	if err := resolve(m.all, true); err != nil {
		return nil, fmt.Errorf("%s:%w", name, err)
	}
	resolve(m.v4, false)
	resolve(m.v6, false)
	return m, nil
}

// resolve finds each jeq's rule in list: the first later one of that label,
// or the next one. In the list of one address family the rule may not be
// there (its ip is of the other): the jeq then ends the search, as in
// pmacct; strict, for the list of all rules, it is an error.
func resolve(list []entry, strict bool) error {
	for i := range list {
		e := &list[i]
		e.jump = -1
		if e.jeq == "" {
			continue
		}
		for j := i + 1; j < len(list); j++ {
			if e.jeq == "next" || list[j].name == e.jeq {
				e.jump = j
				break
			}
		}
		if e.jump < 0 && strict {
			return fmt.Errorf("%d:%d: jeq=%s: no later rule has label=%s (jeq only jumps forward)", e.line, e.jeqCol, e.jeq, e.jeq)
		}
	}
	return nil
}

// Rules returns how many rules the map has.
func (m *Map) Rules() int { return len(m.all) }

// Apply sets r's Tag, Tag2 and Label by the map; a record no rule matches
// has them 0 (and the label "").
func (m *Map) Apply(r *flow.Record) {
	list := m.all
	if ex := r.PeerSrcIP.Unmap(); ex.IsValid() {
		list = m.v4
		if ex.Is6() {
			list = m.v6
		}
	}
	var tag, tag2 uint64
	var lids [maxChain]uint32
	var labels []string // a chain's past maxChain
	var sets uint8      // what the rules set
	n := 0
	for i := 0; i < len(list); {
		e := &list[i]
		if !e.matches(r) {
			i++
			continue
		}
		if e.sets&setTag != 0 {
			v := e.tag
			if e.incs&setTag != 0 {
				v += e.next[0].Add(1) - 1
			}
			tag = stack(e.stack, tag, v)
		}
		if e.sets&setTag2 != 0 {
			v := e.tag2
			if e.incs&setTag2 != 0 {
				v += e.next[1].Add(1) - 1
			}
			tag2 = stack(e.stack, tag2, v)
		}
		sets |= e.sets
		if e.sets&setLabel != 0 {
			switch {
			case n < maxChain:
				lids[n] = e.lid
			case n == maxChain: // a long chain: joined as text
				for _, id := range lids {
					labels = append(labels, flow.LabelText(id))
				}
				fallthrough
			default:
				labels = append(labels, e.label)
			}
			n++
		}
		if e.jump < 0 {
			break
		}
		i = e.jump
	}
	label := m.label(lids, n, labels)
	if r.MapFlags&(flow.MapProbeTag|flow.MapProbeTag2|flow.MapProbeLabel) == 0 {
		r.Tag, r.Tag2, r.Label = tag, tag2, label
		return
	}
	// what one of pmacct's probes sent: nfacctd keeps it over the map's,
	// sfacctd only where the map sets none
	yields := r.MapFlags&flow.MapProbeYields != 0
	if r.MapFlags&flow.MapProbeTag == 0 || yields && sets&setTag != 0 {
		r.Tag = tag
	}
	if r.MapFlags&flow.MapProbeTag2 == 0 || yields && sets&setTag2 != 0 {
		r.Tag2 = tag2
	}
	if r.MapFlags&flow.MapProbeLabel == 0 || yields && sets&setLabel != 0 {
		r.Label = label
	}
}

// label is the number of the labels set, in order: lids holds the first
// maxChain of the n numbers, labels all n when n > maxChain.
func (m *Map) label(lids [maxChain]uint32, n int, labels []string) uint32 {
	switch {
	case n <= 1:
		return lids[0]
	case n > maxChain:
		return flow.LabelID(strings.Join(labels, ","))
	}
	m.chainMu.RLock()
	id, ok := m.chains[lids]
	m.chainMu.RUnlock()
	if ok {
		return id
	}
	texts := make([]string, n)
	for i := range n {
		texts[i] = flow.LabelText(lids[i])
	}
	id = flow.LabelID(strings.Join(texts, ","))
	m.chainMu.Lock()
	if m.chains == nil {
		m.chains = map[[maxChain]uint32]uint32{}
	}
	m.chains[lids] = id
	m.chainMu.Unlock()
	return id
}

func stack(op byte, old, v uint64) uint64 {
	switch op {
	case '+':
		return old + v
	case '|':
		return old | v
	}
	return v
}

func (r *rule) matches(rec *flow.Record) bool {
	if r.ip.IsValid() && !r.ip.Contains(rec.PeerSrcIP.Unmap()) {
		return false
	}
	for i := range r.conds {
		if !r.conds[i].holds(rec) {
			return false
		}
	}
	return true
}

func (c *cond) holds(r *flow.Record) bool {
	var ok bool
	switch c.what {
	case condIn:
		ok = uint64(r.InIface) == c.num
	case condOut:
		ok = uint64(r.OutIface) == c.num
	case condEngineID, condAgentID:
		ok = uint64(r.ExportProtoSysID) == c.num
	case condVLAN:
		ok = uint64(r.VLAN) == c.num
	case condSrcMAC:
		ok = r.SrcMAC == c.mac
	case condDstMAC:
		ok = r.DstMAC == c.mac
	case condSrcNet:
		ok = r.SrcIP.IsValid() && c.prefix.Contains(r.SrcIP.Unmap())
	case condDstNet:
		ok = r.DstIP.IsValid() && c.prefix.Contains(r.DstIP.Unmap())
	case condFilter:
		ok = c.filter.Match(r)
	case condSrcAS:
		ok = uint64(r.SrcAS) == c.num
	case condDstAS:
		ok = uint64(r.DstAS) == c.num
	case condNATEvent:
		ok = uint64(r.NATEvent) == c.num
	case condMPLSPWID:
		ok = uint64(r.MPLSPWID) == c.num
	case condDirection:
		ok = (r.SamplingDirection == flow.DirectionEgress) == (c.num == 1)
	case condSampleType:
		ok = r.Event == (c.num == 1)
	case condNextHop:
		ok = r.NextHop.IsValid() && r.NextHop.Unmap() == c.prefix.Addr()
	case condEngineType:
		if r.ExportProtoVersion != 5 {
			return false // as pmacct: no engine type, no match, negated or not
		}
		ok = uint64(r.EngineType) == c.num
	case condCVLAN:
		ok = uint64(r.CVLAN) == c.num
	case condMulticast:
		ok = r.DstMAC[0]&1 == uint8(c.num)
	case condBiFlow:
		ok = (r.MapFlags&flow.MapBiFlow != 0) == (c.num == 1)
	case condFwdStatus:
		if r.MapFlags&flow.MapFwdStatus == 0 {
			return false // as pmacct: no status, no match, negated or not
		}
		if c.num&0x3f == 0 {
			ok = uint64(r.FwdStatus&0xc0) == c.num
		} else {
			ok = uint64(r.FwdStatus) == c.num
		}
	case condFlowsetID:
		if r.FlowsetID == 0 {
			return false // NetFlow v5: as pmacct, no match, negated or not
		}
		ok = uint64(r.FlowsetID) == c.num
	}
	return ok != c.neg
}

// pending are keys of pmacct's map that flowdex does not match on yet.
var pending = map[string]bool{
	"bgp_nexthop": true,
	"peer_src_as": true, "peer_dst_as": true, "src_local_pref": true, "local_pref": true, "src_roa": true,
	"dst_roa": true, "src_comms": true, "comms": true, "mpls_vpn_rd": true, "set_tos": true,
}

// aliases are pmacct's other names of keys.
var aliases = map[string]string{"id": "set_tag", "id2": "set_tag2", "source_id": "engine_id"}

const keys = "set_tag (id), set_tag2 (id2), set_label, label, jeq, stack, ip, in, out, engine_id (source_id), agent_id, vlan, src_mac, dst_mac, src_net, dst_net, src_as, dst_as, nat_event, mpls_pw_id, direction, sample_type, nexthop, engine_type, flowset_id, cvlan, fwdstatus, is_bi_flow, is_multicast, filter"

// parseRule parses the pairs of line n.
func parseRule(n int, pairs []mapfile.Pair, o Options) (*rule, error) {
	r := &rule{line: n}
	seen := map[string]bool{}
	for _, t := range pairs {
		fail := func(format string, args ...any) error {
			return mapfile.Errorf(n, t.Col, format, args...)
		}
		key, value := t.Key, t.Value
		canon := aliases[key]
		if canon == "" {
			canon = key
		}
		if seen[canon] {
			return nil, fail("%s: twice in one rule", key)
		}
		seen[canon] = true
		bad := func(expected string) error {
			return mapfile.Errorf(n, t.ValueCol(), "%s=%q: expected %s", key, value, expected)
		}
		neg := strings.HasPrefix(value, "-")
		plain := strings.TrimPrefix(value, "-")
		switch canon {
		case "set_tag", "set_tag2":
			num, inc := strings.CutSuffix(value, "++")
			v, err := strconv.ParseUint(num, 10, 64)
			if err != nil {
				return nil, bad("a number from 0 to 18446744073709551615, or N++ for N, N+1... a record at a time")
			}
			bit := uint8(setTag)
			if canon == "set_tag" {
				r.tag = v
			} else {
				r.tag2, bit = v, setTag2
			}
			r.sets |= bit
			if inc {
				r.incs |= bit
			}
		case "set_label":
			if value == "" {
				return nil, bad("a label")
			}
			r.label, r.lid, r.sets = value, flow.LabelID(value), r.sets|setLabel
		case "label":
			if value == "" || value == "next" {
				return nil, bad(`a rule name other than "next"`)
			}
			r.name = value
		case "jeq":
			if value == "" {
				return nil, bad(`the label of a later rule, or "next"`)
			}
			r.jeq, r.jeqCol = value, t.Col
		case "stack":
			switch {
			case value == "sum" || strings.HasPrefix(value, "+"):
				r.stack = '+'
			case value == "or":
				r.stack = '|'
			default:
				return nil, bad(`"sum" or "or"`)
			}
		case "return":
			return nil, fail("return: not supported (deprecated in pmacct, whose 1.7.7 crashes on return=true with jeq): chain rules with jeq")
		case "ip":
			if o.Capture {
				return nil, fail("ip: a capture has no exporter (pmacctd refuses the key too)")
			}
			p, err := mapfile.ParsePrefix(value)
			if err != nil {
				return nil, bad("an address or a prefix, e.g. 192.0.2.1 or 2001:db8::/32 (no negation)")
			}
			r.ip = p
		case "in", "out", "engine_id", "agent_id", "vlan":
			switch {
			case o.Capture && (canon == "engine_id" || canon == "agent_id"):
				return nil, fail("%s: a capture has no exporter", key)
			case canon == "engine_id" && o.SFlow:
				return nil, fail("%s: NetFlow's source id or IPFIX's domain, which sfacctd ignores (expected agent_id for sFlow's sub-agent)", key)
			case canon == "agent_id" && !o.SFlow && !o.Capture:
				return nil, fail("agent_id: sFlow's sub-agent id, for sflow inputs (expected engine_id for NetFlow's source id)")
			}
			v, err := strconv.ParseUint(plain, 10, 32)
			if err != nil || canon == "vlan" && v > 4096 {
				return nil, bad("a number, or -number for \"not\"")
			}
			what := map[string]condKind{"in": condIn, "out": condOut, "engine_id": condEngineID, "agent_id": condAgentID, "vlan": condVLAN}[canon]
			r.conds = append(r.conds, cond{what: what, neg: neg, num: v})
		case "src_as", "dst_as", "nat_event", "mpls_pw_id":
			switch {
			case o.Capture && (canon == "src_as" || canon == "dst_as"):
				return nil, fail("%s: a capture's AS numbers come from a pipeline's networks_file, after the map (expected filter or in/out)", key)
			case (o.Capture || o.SFlow) && (canon == "nat_event" || canon == "mpls_pw_id"):
				return nil, fail("%s: NetFlow/IPFIX's, which this input does not carry", key)
			}
			v, err := strconv.ParseUint(plain, 10, 32)
			if err != nil || canon == "nat_event" && v > 255 {
				return nil, bad("a number, or -number for \"not\"")
			}
			what := map[string]condKind{"src_as": condSrcAS, "dst_as": condDstAS, "nat_event": condNATEvent, "mpls_pw_id": condMPLSPWID}[canon]
			r.conds = append(r.conds, cond{what: what, neg: neg, num: v})
		case "direction":
			if o.Capture || o.SFlow {
				return nil, fail("direction: NetFlow's flowDirection (IE 61), which this input does not carry")
			}
			if plain != "0" && plain != "1" {
				return nil, bad("0 (ingress) or 1 (egress), or -0, -1 for \"not\"")
			}
			r.conds = append(r.conds, cond{what: condDirection, neg: neg, num: uint64(plain[0] - '0')})
		case "sample_type":
			if o.Capture || o.SFlow {
				return nil, fail("sample_type: NetFlow's flow and event records (sfacctd's ent:fmt sample types are not supported yet)")
			}
			var v uint64
			switch plain {
			case "flow":
			case "event":
				v = 1
			default:
				return nil, bad(`"flow" or "event", or -flow, -event for "not" (pmacct's flow-ipv4, flow-ipv6 and option are not supported yet)`)
			}
			r.conds = append(r.conds, cond{what: condSampleType, neg: neg, num: v})
		case "nexthop":
			if o.Capture {
				return nil, fail("nexthop: an exporter's, which a capture has not")
			}
			a, err := netip.ParseAddr(plain)
			if err != nil {
				return nil, bad("an address such as 192.0.2.1, or -address for \"not\"")
			}
			r.conds = append(r.conds, cond{what: condNextHop, neg: neg, prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())})
		case "engine_type":
			if o.Capture || o.SFlow {
				return nil, fail("engine_type: NetFlow v5's, which this input does not carry")
			}
			v, err := strconv.ParseUint(plain, 10, 8)
			if err != nil {
				return nil, bad("a number from 0 to 255, or -number for \"not\"")
			}
			r.conds = append(r.conds, cond{what: condEngineType, neg: neg, num: v})
		case "cvlan", "fwdstatus", "flowset_id", "is_bi_flow":
			if o.Capture || o.SFlow {
				return nil, fail("%s: NetFlow/IPFIX's, which this input does not carry", key)
			}
			c := cond{neg: neg}
			var err error
			switch canon {
			case "cvlan":
				c.what = condCVLAN
				if c.num, err = strconv.ParseUint(plain, 10, 16); err != nil || c.num > 4096 {
					return nil, bad("a VLAN id from 0 to 4096, or -id for \"not\"")
				}
			case "fwdstatus":
				c.what = condFwdStatus
				if c.num, err = strconv.ParseUint(plain, 10, 8); err != nil {
					return nil, bad("a forwarding status from 0 to 255 (0, 64, 128, 192: its class), or -status for \"not\"")
				}
			case "flowset_id":
				c.what = condFlowsetID
				if c.num, err = strconv.ParseUint(plain, 10, 16); err != nil || c.num < 256 {
					return nil, bad("a template id from 256 to 65535, or -id for \"not\"")
				}
			case "is_bi_flow":
				c.what = condBiFlow
				if c.num, err = parseBool(plain); err != nil {
					return nil, bad("true or false, or -true, -false for \"not\"")
				}
			}
			r.conds = append(r.conds, c)
		case "is_multicast":
			v, err := parseBool(plain)
			if err != nil {
				return nil, bad("true or false, or -true, -false for \"not\"")
			}
			r.conds = append(r.conds, cond{what: condMulticast, neg: neg, num: v})
		case "src_mac", "dst_mac":
			hw, err := net.ParseMAC(plain)
			if err != nil || len(hw) != 6 {
				return nil, bad("a MAC address such as 02:00:00:00:00:01, or -MAC for \"not\"")
			}
			c := cond{what: condSrcMAC, neg: neg}
			if canon == "dst_mac" {
				c.what = condDstMAC
			}
			copy(c.mac[:], hw)
			r.conds = append(r.conds, c)
		case "src_net", "dst_net":
			p, err := mapfile.ParsePrefix(plain)
			if err != nil {
				return nil, bad("a prefix such as 10.0.0.0/8, or -prefix for \"not\"")
			}
			c := cond{what: condSrcNet, neg: neg, prefix: p}
			if canon == "dst_net" {
				c.what = condDstNet
			}
			r.conds = append(r.conds, c)
		case "filter":
			f, err := filter.Compile(value)
			if err != nil {
				return nil, mapfile.Errorf(n, t.ValueCol(), "filter=%q: %v (expected a libpcap expression, in single quotes when it has blanks)", value, err)
			}
			r.conds = append(r.conds, cond{what: condFilter, filter: f})
		default:
			if pending[key] {
				return nil, fail("%s: pmacct's key, which flowdex does not match on yet", key)
			}
			return nil, fail("unknown key %q (expected one of %s)", key, keys)
		}
	}
	return r, nil
}

// parseBool reads true or false, in any case, as pmacct: 1 or 0.
func parseBool(s string) (uint64, error) {
	switch strings.ToLower(s) {
	case "true":
		return 1, nil
	case "false":
		return 0, nil
	}
	return 0, strconv.ErrSyntax
}
