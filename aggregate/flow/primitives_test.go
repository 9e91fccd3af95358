package flow

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// pmacct's JSON keys in the order its print plugin writes them: compose_json
// in src/plugin_cmn_json.c, handler after handler, for 1.7.7 and for master
// (commit 743f0c06, 2026), which adds keys and drops mpls_stack_depth.
var (
	pmacct177Order = strings.Fields(`event_type tag tag2 label class mac_src mac_dst vlan cos etype as_src
		as_dst comms ecomms lcomms as_path local_pref med roa_dst peer_as_src peer_as_dst peer_ip_src
		peer_ip_dst comms_src ecomms_src lcomms_src as_path_src local_pref_src med_src roa_src iface_in
		iface_out mpls_vpn_rd mpls_pw_id ip_src net_src ip_dst net_dst mask_src mask_dst port_src port_dst
		country_ip_src country_ip_dst pocode_ip_src pocode_ip_dst lat_ip_src lon_ip_src lat_ip_dst lon_ip_dst
		tcp_flags ip_proto tos sampling_rate sampling_direction post_nat_ip_src post_nat_ip_dst
		post_nat_port_src post_nat_port_dst nat_event mpls_label_top mpls_label_bottom mpls_stack_depth
		tunnel_mac_src tunnel_mac_dst tunnel_ip_src tunnel_ip_dst tunnel_ip_proto tunnel_tos tunnel_port_src
		tunnel_port_dst vxlan timestamp_start timestamp_end timestamp_arrival timestamp_min timestamp_max
		export_proto_seqno export_proto_version export_proto_sysid timestamp_export stamp_inserted
		stamp_updated flows packets bytes`)
	pmacctMasterOrder = strings.Fields(`event_type tag tag2 label class mac_src mac_dst vlan vlan_in vlan_out
		cvlan_in cvlan_out cos etype as_src as_dst comms ecomms lcomms as_path local_pref med roa_dst
		peer_as_src peer_as_dst peer_ip_src peer_ip_dst comms_src ecomms_src lcomms_src as_path_src
		local_pref_src med_src roa_src iface_in iface_out mpls_vpn_rd mpls_vpn_rd_origin mpls_pw_id ip_src
		net_src ip_dst net_dst mask_src mask_dst port_src port_dst country_ip_src country_ip_dst
		pocode_ip_src pocode_ip_dst lat_ip_src lon_ip_src lat_ip_dst lon_ip_dst tcp_flags fwd_status
		mpls_label_stack srv6_seg_ipv6_list path_delay_avg_usec path_delay_min_usec path_delay_max_usec
		ip_proto tos flow_label sampling_rate sampling_direction post_nat_ip_src post_nat_ip_dst
		post_nat_port_src post_nat_port_dst nat_event fw_event mpls_label_top mpls_label_bottom
		tunnel_mac_src tunnel_mac_dst tunnel_ip_src tunnel_ip_dst tunnel_ip_proto tunnel_tos
		tunnel_flow_label tunnel_port_src tunnel_port_dst tunnel_tcp_flags vxlan nvgre timestamp_start
		timestamp_end timestamp_arrival timestamp_min timestamp_max export_proto_seqno
		export_proto_version export_proto_sysid timestamp_export stamp_inserted stamp_updated flows
		vrf_name ingress_vrf_name egress_vrf_name iface_name_in iface_name_out packets bytes`)
)

// The table's order is pmacct's JSON key order, of 1.7.7 and of master, and
// every row is a key one of them writes.
func TestTableOrderIsPmacct(t *testing.T) {
	pos := map[string]int{}
	for p := range Primitives() {
		if !p.isCustom() {
			pos[p.JSONKey()] = int(p)
		}
	}
	written := map[string]bool{}
	for name, order := range map[string][]string{"1.7.7": pmacct177Order, "master": pmacctMasterOrder} {
		last, lastKey := -1, ""
		for _, k := range order {
			written[k] = true
			i, ok := pos[k]
			switch {
			case !ok:
				t.Errorf("pmacct %s writes %s: no row", name, k)
			case i < last:
				t.Errorf("pmacct %s writes %s after %s, the table has it before", name, k, lastKey)
			default:
				last, lastKey = i, k
			}
		}
	}
	for k := range pos {
		if !written[k] {
			t.Errorf("row %s: pmacct writes no such key", k)
		}
	}
}

// What pmacct 1.7.7 wrote (collector/pmacct/testdata/out) has its keys in the
// table's order.
func TestTableOrderInPmacctOutput(t *testing.T) {
	pos := map[string]int{}
	for p := range Primitives() {
		pos[p.JSONKey()] = int(p)
	}
	files, err := filepath.Glob("../../collector/pmacct/testdata/out/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no pmacct output: %v", err)
	}
	lines := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			keys := topKeys(sc.Bytes())
			if keys == nil || keys[0] != "event_type" && !strings.Contains(f, "memory-client") {
				continue // markers, arrays, the memory client's own names
			}
			lines++
			last, lastKey := -1, ""
			for _, k := range keys {
				i, ok := pos[k]
				if !ok {
					continue // a custom primitive
				}
				if i < last {
					t.Errorf("%s:%d: %s after %s", filepath.Base(f), n, k, lastKey)
				}
				last, lastKey = i, k
			}
		}
	}
	if lines < 10 {
		t.Fatalf("only %d documents read", lines)
	}
}

// topKeys returns the keys of a JSON object in their order, nil for anything else.
func topKeys(line []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return nil
		}
	}
	return keys
}

func TestTableConsistent(t *testing.T) {
	jsonKey := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	csvHeader := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	names, keys, headers, fields := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	fields["Custom"] = true // the custom primitives' rows, empty until DefineCustom (custom_test.go)
	fields["Event"] = true  // no primitive: whether nfacctd writes the counters
	fields["Renorm"] = true // no primitive: renormalization's multiplier
	for _, f := range reflect.VisibleFields(reflect.TypeFor[MapFields]()) {
		fields[f.Name] = true // pre_tag_map's keys
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[BGPAS]()) {
		fields[f.Name] = true // as_source = "bgp"'s
	}
	for p := range Primitives() {
		in := p.Info()
		if p.isCustom() {
			if in.JSON != "" || in.Aggregated() {
				t.Errorf("%d: a custom primitive's row before DefineCustom", p)
			}
			continue
		}
		if !jsonKey.MatchString(in.JSON) || keys[in.JSON] {
			t.Errorf("%d: JSON key %q: not pmacct's form, or twice", p, in.JSON)
		}
		keys[in.JSON] = true
		if in.Name != "" {
			if !jsonKey.MatchString(in.Name) || names[in.Name] {
				t.Errorf("%s: aggregate name %q: not pmacct's form, or twice", in.JSON, in.Name)
			}
			names[in.Name] = true
		}
		if in.CSV != "" {
			if !csvHeader.MatchString(in.CSV) || headers[in.CSV] {
				t.Errorf("%s: CSV header %q: not pmacct's form, or twice", in.JSON, in.CSV)
			}
			headers[in.CSV] = true
		}
		if in.Field != "" {
			if fields[in.Field] {
				t.Errorf("%s: field %s twice", in.JSON, in.Field)
			}
			fields[in.Field] = true
		}
		if in.FreeText && in.Kind != KindText && in.Kind != KindLabel && in.Kind != KindInterned {
			t.Errorf("%s: free text of kind %d", in.JSON, in.Kind)
		}
		if k := in.Kind; k.ESType() == "" && k.JSONType() != JSONString {
			t.Errorf("%s: a number without an Elasticsearch type", in.JSON)
		}
		if !in.Aggregated() {
			if p.Name() != "" && p.Slot() != (Slot{}) {
				t.Errorf("%s: a primitive with a field, not aggregated", in.JSON)
			}
			continue
		}
		// what every primitive flowdex aggregates on needs
		counter := in.Kind == KindCounter || in.Kind == KindTCPFlags
		if w := in.KeyWidth(); (w == 0) != counter || w > 17 {
			t.Errorf("%s: key width %d", in.JSON, w)
		}
		if (writers[p].op == writeNone) != (p == Flows) { // Format.Document writes flows after the stamps
			t.Errorf("%s: written by %d", in.JSON, writers[p].op)
		}
		if in.Kind == KindNet && writers[p].host == (Slot{}) {
			t.Errorf("%s: a net without its host", in.JSON)
		}
		if in.CSV == "" {
			t.Errorf("%s: no CSV header", in.JSON)
		}
	}
	// every field of a Record is a row's: a new field cannot miss the table
	rt := reflect.TypeFor[Record]()
	for _, f := range reflect.VisibleFields(rt) {
		if !f.Anonymous && !fields[f.Name] {
			t.Errorf("Record field %s is no row's", f.Name)
		}
	}
	// flowdex accepts exactly the aggregated primitives (and the sum_* modes)
	for _, n := range KnownNames() {
		if p, ok := byName[n]; ok && !table[p].Aggregated() {
			t.Errorf("%s: known but not aggregated", n)
		}
	}
	if _, err := ParseAggregate([]string{"dst_roa"}); err == nil || err.Error() != `primitive "dst_roa" is pmacct's, but flowdex does not aggregate on it yet` {
		t.Errorf("dst_roa: %v", err)
	}
}

// Every key primitive packs and unpacks alone, and all of them together.
func TestKeyCodec(t *testing.T) {
	for p := range Primitives() {
		if p.Info().KeyWidth() == 0 {
			continue
		}
		for _, v := range []any{uint64(0x0102030405060708), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), [6]byte{2, 0, 0, 0, 0, 1}} {
			var r Record
			s := p.Slot()
			switch v := v.(type) {
			case uint64:
				s.SetUint(&r, v)
			case netip.Addr:
				s.SetAddr(&r, v)
			case [6]byte:
				s.SetMAC(&r, v)
			}
			if r == (Record{}) {
				continue // not of this slot's type
			}
			c := NewKeyCodec(Set{}.With(p))
			b := c.Append(nil, &r.Key)
			if len(b) > c.MaxLen() {
				t.Errorf("%s: %d bytes, at most %d", p.JSONKey(), len(b), c.MaxLen())
			}
			var k Key
			if rest := c.Decode(append(b, 0xff), &k); k != r.Key || !bytes.Equal(rest, []byte{0xff}) {
				t.Errorf("%s: %+v back as %+v, %x left", p.JSONKey(), r.Key, k, rest)
			}
		}
	}
	var all Set
	for p := range Primitives() {
		if p.Info().KeyWidth() > 0 {
			all = all.With(p)
		}
	}
	k := everyKey()
	c := NewKeyCodec(all)
	var back Key
	if c.Decode(c.Append(nil, &k), &back); back != k {
		t.Errorf("every primitive: %+v back as %+v", k, back)
	}
	// a key without dst_net, whose neighbours are packed
	k.DstNet = netip.Addr{}
	back = Key{}
	if c.Decode(c.Append(nil, &k), &back); back != k {
		t.Errorf("unknown dst_net: %+v back as %+v", k, back)
	}
}
