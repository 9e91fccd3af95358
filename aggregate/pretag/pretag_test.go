package pretag

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/flowdex/flowdex/aggregate/flow"
)

func rec(exporter string, in uint32, src string) *flow.Record {
	r := &flow.Record{}
	if exporter != "" {
		r.PeerSrcIP = netip.MustParseAddr(exporter)
	}
	r.InIface = in
	r.SrcIP = netip.MustParseAddr(src)
	r.DstIP = netip.MustParseAddr("198.51.100.1")
	r.Proto = 17
	return r
}

type result struct {
	tag, tag2 uint64
	label     string
}

func apply(m *Map, r *flow.Record) result {
	m.Apply(r)
	return result{r.Tag, r.Tag2, flow.LabelText(r.Label)}
}

// The evaluation of pmacct's NF_find_id, checked against nfacctd 1.7.7
// where 1.7.7 has no bug (the spec's experiments E1, E5, E9).
func TestApply(t *testing.T) {
	const m = `! a comment
# another
set_tag=1 ip=192.0.2.1
set_tag=2 ip=192.0.2.0/24 in=-995
  set_tag=3 ip=192.0.2.0/24
set_tag=100 ip=198.51.100.1 jeq=second
set_tag=9 ip=198.51.100.1
set_tag2=7 ip=198.51.100.1 label=second
set_tag=200 ip=203.0.113.1 jeq=sum
set_tag=5 ip=203.0.113.1 label=sum stack=sum
set_label=A ip=10.0.0.1 jeq=lab
set_label=B ip=10.0.0.1 label=lab jeq=next
set_label=C ip=10.0.0.1
set_label=X ip=10.0.0.1
set_tag=4 ip=2001:db8::/32 src_net=10.1.0.0/16
set_tag=6 ip=2001:db8::/32 jeq=next
set_tag=12 ip=2001:db8::/32 stack=or
set_tag=8 ip=172.16.0.1 filter='udp and src net 10.2.0.0/16'
set_tag=11 ip=172.16.0.1 src_net=-10.3.0.0/16
set_label=D
`
	mp, err := Parse("pretag.map", []byte(m), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		r    *flow.Record
		want result
	}{
		{"first rule", rec("192.0.2.1", 1, "10.0.0.9"), result{1, 0, ""}},
		{"negated in", rec("192.0.2.7", 810, "10.0.0.9"), result{2, 0, ""}},
		{"negated in, equal", rec("192.0.2.7", 995, "10.0.0.9"), result{3, 0, ""}},
		{"jeq: a later match overwrites, tag2 kept", rec("198.51.100.1", 1, "10.0.0.9"), result{100, 7, ""}},
		{"stack=sum", rec("203.0.113.1", 1, "10.0.0.9"), result{205, 0, ""}},
		{"labels joined; jeq=next", rec("10.0.0.1", 1, "10.0.0.9"), result{0, 0, "A,B,C"}},
		{"IPv6 exporter, src_net", rec("2001:db8::1", 1, "10.1.2.3"), result{4, 0, ""}},
		{"IPv6 jeq=next (1.7.7 leaves it unresolved), stack=or", rec("2001:db8::1", 1, "10.9.9.9"), result{14, 0, ""}},
		{"IPv4-mapped exporter", rec("::ffff:192.0.2.1", 1, "10.0.0.9"), result{1, 0, ""}},
		{"filter", rec("172.16.0.1", 1, "10.2.0.1"), result{8, 0, ""}},
		{"negated src_net", rec("172.16.0.1", 1, "10.4.0.1"), result{11, 0, ""}},
		{"negated src_net, inside", rec("172.16.0.1", 1, "10.3.0.1"), result{0, 0, "D"}},
		{"a rule without ip: any exporter", rec("10.9.9.9", 1, "10.0.0.9"), result{0, 0, "D"}},
		{"a rule without ip: IPv6 exporters too", rec("2001:db9::1", 1, "10.0.0.9"), result{0, 0, "D"}},
	} {
		if got := apply(mp, c.r); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	// a record's old tags do not survive: no match clears them
	empty, err := Parse("empty.map", []byte("set_tag=1 ip=192.0.2.99\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rec("192.0.2.1", 1, "10.0.0.9")
	r.Tag, r.Tag2, r.Label = 5, 6, flow.LabelID("old")
	if got := apply(empty, r); got != (result{}) {
		t.Errorf("no match: %+v", got)
	}
}

// A jeq whose rule serves the other address family only ends the search
// for that family, as in pmacct.
func TestJeqOtherFamily(t *testing.T) {
	mp, err := Parse("m", []byte("set_tag=1 jeq=v4\nset_tag2=2 ip=192.0.2.0/24 label=v4\nset_tag2=3\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := apply(mp, rec("192.0.2.1", 0, "10.0.0.1")); got != (result{1, 2, ""}) {
		t.Errorf("IPv4: %+v", got)
	}
	if got := apply(mp, rec("2001:db8::1", 0, "10.0.0.1")); got != (result{1, 0, ""}) {
		t.Errorf("IPv6: %+v", got)
	}
}

// sFlow's agent_id is the sub-agent id, kept where NetFlow's source id is.
func TestAgentID(t *testing.T) {
	mp, err := Parse("m", []byte("set_tag=1 agent_id=-2\nset_tag=2\n"), Options{SFlow: true})
	if err != nil {
		t.Fatal(err)
	}
	r := rec("192.0.2.1", 0, "10.0.0.1")
	for sub, want := range map[uint32]uint64{1: 1, 2: 2, 3: 1} {
		r.ExportProtoSysID = sub
		if got := apply(mp, r); got.tag != want {
			t.Errorf("sub-agent %d: tag %d, want %d", sub, got.tag, want)
		}
	}
}

// A rule sets each set_* key it has (pmacct 1.7.7 sets only one, see the
// package comment).
func TestSetsEveryKey(t *testing.T) {
	mp, err := Parse("m", []byte("set_tag=1 set_tag2=2 set_label=core\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := apply(mp, rec("192.0.2.1", 0, "10.0.0.1")); got != (result{1, 2, "core"}) {
		t.Errorf("%+v", got)
	}
	if got := apply(mp, rec("", 0, "10.0.0.1")); got != (result{1, 2, "core"}) {
		t.Errorf("capture: %+v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		m, want string
		o       Options
	}{
		{"set_tag = 2\n", `m:1:1: "set_tag": expected key=value, without blanks around '='`, Options{}},
		{"\n\nset_tag=1 foo=bar\n", `m:3:11: unknown key "foo" (expected one of set_tag`, Options{}},
		{"set_tag=1 local_pref=100\n", "m:1:11: local_pref: pmacct's key, which flowdex does not match on yet", Options{}},
		{"set_tag=-5\n", `m:1:9: set_tag="-5": expected a number from 0 to 18446744073709551615`, Options{}},
		{"set_tag=x++\n", `m:1:9: set_tag="x++": expected a number from 0 to 18446744073709551615, or N++ for N, N+1... a record at a time`, Options{}},
		{"set_tag=1 in=1 in=2\n", "m:1:16: in: twice in one rule", Options{}},
		{"set_tag=1 id=2\n", "m:1:11: id: twice in one rule", Options{}},
		{"set_tag=1 ip=192.0.2.0/33\n", `m:1:14: ip="192.0.2.0/33": expected an address or a prefix`, Options{}},
		{"set_tag=1 ip=-192.0.2.1\n", `m:1:14: ip="-192.0.2.1": expected an address or a prefix`, Options{}},
		{"set_tag=1 ip=192.0.2.1\n", "m:1:11: ip: a capture has no exporter", Options{Capture: true}},
		{"set_tag=1 filter='udp and\n", "m:1:18: a quote that is not closed", Options{}},
		{"set_tag=1 filter='nonsense here'\n", `m:1:18: filter="nonsense here": `, Options{}},
		{"set_tag=1 jeq=x\nset_tag=2 label=y\n", "m:1:11: jeq=x: no later rule has label=x", Options{}},
		{"set_tag=2 label=x\nset_tag=1 jeq=x\n", "m:2:11: jeq=x: no later rule", Options{}},
		{"set_tag=1 jeq=next\n", "m:1:11: jeq=next: no later rule", Options{}},
		{"set_tag=1 return=false\n", "m:1:11: return: not supported", Options{}},
		{"set_tag=1 agent_id=3\n", "m:1:11: agent_id: sFlow's sub-agent id, for sflow inputs", Options{}},
		{"set_tag=1 engine_id=3\n", "m:1:11: engine_id: NetFlow's source id or IPFIX's domain, which sfacctd ignores", Options{SFlow: true}},
		{"set_tag=1 source_id=3\n", "m:1:11: source_id: a capture has no exporter", Options{Capture: true}},
		{"set_tag=1 stack=xor\n", `m:1:17: stack="xor": expected "sum" or "or"`, Options{}},
		{"set_tag=1 vlan=5000\n", `m:1:16: vlan="5000": expected a number`, Options{}},
		{"set_tag=1 src_mac=zz\n", `m:1:19: src_mac="zz": expected a MAC address`, Options{}},
		{"set_tag=1 ! trailing comment\n", `m:1:11: "!": expected key=value`, Options{}},
		{"set_tag=1 jeq=nope\nset_tag=2 label=v6\n", "m:1:11: jeq=nope: no later rule has label=nope", Options{}},
	} {
		_, err := Parse("m", []byte(c.m), c.o)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v\nwant %s...", c.m, err, c.want)
		}
	}
	// every bad line is reported, not the first only
	_, err := Parse("m", []byte("a=1\nset_tag=1\nb=2\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "m:1:1:") || !strings.Contains(err.Error(), "m:3:1:") {
		t.Errorf("two bad lines: %v", err)
	}
}

// The filters of the spec's experiment E14 on nfacctd 1.7.7: tags 1, 2, 3
// and 0 (untagged); labels blabla, blabla2 and none.
func TestFilters(t *testing.T) {
	tags := []uint64{0, 1, 2, 3}
	for _, c := range []struct {
		f    string
		want []uint64
	}{
		{"", []uint64{0, 1, 2, 3}},
		{"0", []uint64{0}},
		{"1", []uint64{1}},
		{"-1", []uint64{0, 2, 3}},
		{"1-2", []uint64{1, 2}},
		{"-1,-2", []uint64{0, 2, 3}}, // pmacct: only the first negation counts
		{"3,-1", []uint64{0, 2, 3}},
		{"-1,3", []uint64{0, 2, 3}},
		{"1, 3", []uint64{1, 3}},
		{"-2-3", []uint64{0, 1}},
	} {
		f, err := ParseTagFilter(c.f)
		if err != nil {
			t.Fatalf("%q: %v", c.f, err)
		}
		var got []uint64
		for _, tag := range tags {
			if f.Match(tag) {
				got = append(got, tag)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("pre_tag_filter %q: %v, want %v", c.f, got, c.want)
		}
	}
	for _, bad := range []string{"2-2", "3-1", "abc", "1,x", "-"} {
		if _, err := ParseTagFilter(bad); err == nil {
			t.Errorf("pre_tag_filter %q accepted", bad)
		}
	}
	labels := []string{"blabla", "blabla2", ""}
	for _, c := range []struct {
		f    string
		want string
	}{
		{"blabla", "blabla blabla2"},
		{"bla", "blabla blabla2"},
		{"null", ""},
		{"-null", "blabla blabla2"},
		{"blabla2, blabla", "blabla blabla2"}, // pmacct keeps the blank: blabla2 only
		{"-blabla", ""},
		{"-blabla2,-null", "blabla "},
	} {
		f, err := ParseLabelFilter(c.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range labels {
			if f.Match(l) {
				got = append(got, l)
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("pre_tag_label_filter %q: %q, want %q", c.f, strings.Join(got, " "), c.want)
		}
	}
}

// Chains of labels, short (their join kept by the map) and long.
func TestLabelChains(t *testing.T) {
	var m strings.Builder
	for i := range 6 {
		fmt.Fprintf(&m, "set_label=l%d ip=192.0.2.1 label=s%d jeq=s%d\n", i, i, i+1)
	}
	m.WriteString("set_label=x ip=192.0.2.2 jeq=y\nset_label=y ip=192.0.2.2 label=y\n")
	m.WriteString("set_label=end label=s6\n")
	mp, err := Parse("m", []byte(m.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time from the map's cache
		if got := apply(mp, rec("192.0.2.1", 0, "10.0.0.1")); got.label != "l0,l1,l2,l3,l4,l5,end" {
			t.Errorf("long chain: %q", got.label)
		}
		if got := apply(mp, rec("192.0.2.2", 0, "10.0.0.1")); got.label != "x,y" {
			t.Errorf("short chain: %q", got.label)
		}
		if got := apply(mp, rec("192.0.2.3", 0, "10.0.0.1")); got.label != "end" {
			t.Errorf("one label: %q", got.label)
		}
	}
}

// FuzzParse: any file is a map or an error naming a line; a map applies to
// records of both families and a capture's without failing.
func FuzzParse(f *testing.F) {
	f.Add([]byte("set_tag=1 ip=192.0.2.1 in=-3 jeq=x\nset_label=a label=x stack=sum\n! c\n"))
	f.Add([]byte("set_tag2=7 filter='udp and port 53' src_mac=02:00:00:00:00:01 dst_net=-10.0.0.0/8 jeq=next\nid=2\n"))
	f.Add([]byte("set_label='a b' ip=2001:db8::/32 vlan=4096 engine_id=3 out=4\n"))
	f.Add([]byte("set_tag=7++ src_as=-5 nat_event=2\nset_tag2=18446744073709551615++ mpls_pw_id=3\n"))
	f.Add([]byte("set_tag=1 nexthop=-2001:db8::1 engine_type=5 flowset_id=300 cvlan=7\nset_tag2=2 fwdstatus=64 is_bi_flow=TRUE is_multicast=-false\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []Options{{}, {Capture: true}} {
			m, err := Parse("m", data, o)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "m:") {
					t.Fatalf("error without its place: %v", err)
				}
				continue
			}
			for _, ex := range []string{"192.0.2.1", "2001:db8::1", ""} {
				m.Apply(rec(ex, 3, "10.0.0.1"))
			}
		}
	})
}

// The AS, NAT event and pseudowire keys, negated too; refused where the
// input has no such field.
func TestMatchRecordKeys(t *testing.T) {
	m, err := Parse("m", []byte("set_tag=1 src_as=64500 dst_as=-64501\nset_tag=2 nat_event=1\nset_tag=3 mpls_pw_id=7\nset_tag=4 direction=1 sample_type=-event\nset_tag=5 sample_type=event\nset_tag=6 nexthop=192.0.2.9\nset_tag=7 nexthop=2001:db8::9\nset_tag=8 engine_type=-3\nset_tag=9 cvlan=7\nset_tag=10 fwdstatus=128\nset_tag=11 fwdstatus=-66\nset_tag=12 flowset_id=-300\nset_tag=13 is_bi_flow=TRUE\nset_tag=14 is_multicast=true\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		set  func(r *flow.Record)
		want uint64
	}{
		{func(r *flow.Record) { r.SrcAS, r.DstAS = 64500, 64502 }, 1},
		{func(r *flow.Record) { r.SrcAS, r.DstAS = 64500, 64501 }, 0},
		{func(r *flow.Record) { r.NATEvent = 1 }, 2},
		{func(r *flow.Record) { r.NATEvent = 2 }, 0},
		{func(r *flow.Record) { r.MPLSPWID = 7 }, 3},
		{func(r *flow.Record) { r.SamplingDirection = flow.DirectionEgress }, 4},
		{func(r *flow.Record) { r.SamplingDirection = flow.DirectionEgress; r.Event = true }, 5},
		{func(r *flow.Record) { r.SamplingDirection = flow.DirectionIngress }, 0},
		// nexthop: the address of the record's family; none matches no rule
		{func(r *flow.Record) { r.NextHop = netip.MustParseAddr("192.0.2.9") }, 6},
		{func(r *flow.Record) { r.NextHop = netip.MustParseAddr("::ffff:192.0.2.9") }, 6},
		{func(r *flow.Record) { r.NextHop = netip.MustParseAddr("2001:db8::9") }, 7},
		{func(r *flow.Record) { r.NextHop = netip.MustParseAddr("192.0.2.10") }, 0},
		// engine_type: v5's only, never another version's even negated
		{func(r *flow.Record) { r.ExportProtoVersion, r.EngineType = 5, 1 }, 8},
		{func(r *flow.Record) { r.ExportProtoVersion, r.EngineType = 5, 3 }, 0},
		{func(r *flow.Record) { r.ExportProtoVersion, r.EngineType = 9, 1 }, 0},
		{func(r *flow.Record) { r.CVLAN = 7 }, 9},
		// fwdstatus: 128 is a class (128...191); 66 is one status; none: no match, negated or not
		{func(r *flow.Record) { r.FwdStatus, r.MapFlags = 130, flow.MapFwdStatus }, 10},
		{func(r *flow.Record) { r.FwdStatus, r.MapFlags = 66, flow.MapFwdStatus }, 0},
		{func(r *flow.Record) { r.FwdStatus, r.MapFlags = 65, flow.MapFwdStatus }, 11},
		// flowset_id: v5 (no template) matches neither plain nor negated
		{func(r *flow.Record) { r.FlowsetID = 300 }, 0},
		{func(r *flow.Record) { r.FlowsetID = 301 }, 12},
		{func(r *flow.Record) { r.MapFlags = flow.MapBiFlow }, 13},
		{func(r *flow.Record) { r.DstMAC = [6]byte{1, 0, 0x5e, 0, 0, 1} }, 14},
		{func(r *flow.Record) { r.DstMAC = [6]byte{2, 0, 0x5e, 0, 0, 1} }, 0},
	} {
		r := rec("192.0.2.1", 1, "10.0.0.1")
		tt.set(r)
		if got := apply(m, r); got.tag != tt.want {
			t.Errorf("%+v: tag %d, want %d", r.Fixed, got.tag, tt.want)
		}
	}
	for _, tt := range []struct {
		line string
		o    Options
		want string
	}{
		{"set_tag=1 src_as=1", Options{Capture: true}, "m:1:11: src_as: a capture's AS numbers come from a pipeline's networks_file, after the map (expected filter or in/out)"},
		{"set_tag=1 nat_event=1", Options{SFlow: true}, "m:1:11: nat_event: NetFlow/IPFIX's, which this input does not carry"},
		{"set_tag=1 nat_event=256", Options{}, `m:1:21: nat_event="256": expected a number, or -number for "not"`},
		{"set_tag=1 nexthop=1", Options{}, `m:1:19: nexthop="1": expected an address such as 192.0.2.1, or -address for "not"`},
		{"set_tag=1 nexthop=192.0.2.1", Options{Capture: true}, "m:1:11: nexthop: an exporter's, which a capture has not"},
		{"set_tag=1 engine_type=1", Options{SFlow: true}, "m:1:11: engine_type: NetFlow v5's, which this input does not carry"},
		{"set_tag=1 engine_type=256", Options{}, `m:1:23: engine_type="256": expected a number from 0 to 255, or -number for "not"`},
		{"set_tag=1 cvlan=4097", Options{}, `m:1:17: cvlan="4097": expected a VLAN id from 0 to 4096, or -id for "not"`},
		{"set_tag=1 flowset_id=255", Options{}, `m:1:22: flowset_id="255": expected a template id from 256 to 65535, or -id for "not"`},
		{"set_tag=1 is_bi_flow=yes", Options{}, `m:1:22: is_bi_flow="yes": expected true or false, or -true, -false for "not"`},
		{"set_tag=1 fwdstatus=1", Options{SFlow: true}, "m:1:11: fwdstatus: NetFlow/IPFIX's, which this input does not carry"},
	} {
		if _, err := Parse("m", []byte(tt.line), tt.o); err == nil || err.Error() != tt.want {
			t.Errorf("%s: %v, want %s", tt.line, err, tt.want)
		}
	}
}

// N++: a rule's tag is N for the first record it sets, N+1 for the next...;
// a rule without ip counts apart for IPv4 and IPv6 exporters (pmacct's E7).
func TestAutoIncrement(t *testing.T) {
	m, err := Parse("m", []byte("set_tag=10++ in=1\nset_tag2=5++ in=2\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, c := range []struct {
		ex string
		in uint32
	}{{"192.0.2.1", 1}, {"192.0.2.2", 1}, {"2001:db8::1", 1}, {"192.0.2.1", 1}, {"192.0.2.1", 2}, {"192.0.2.1", 2}} {
		r := apply(m, rec(c.ex, c.in, "10.0.0.1"))
		got = append(got, r.tag, r.tag2)
	}
	want := []uint64{10, 0, 11, 0, 10, 0, 12, 0, 0, 5, 0, 6}
	if !slices.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
	// a reload starts anew
	m, _ = Parse("m", []byte("set_tag=10++\n"), Options{})
	if r := apply(m, rec("192.0.2.1", 1, "10.0.0.1")); r.tag != 10 {
		t.Errorf("after a reload: %d", r.tag)
	}
}
