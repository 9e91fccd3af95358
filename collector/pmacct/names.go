package pmacct

import "strings"

// valueType is how a CSV column's values become JSON values.
type valueType uint8

const (
	text    valueType = iota // a string, as p2es keeps every CSV value
	integer                  // a JSON integer when the value is one (pmacct's JSON has an integer here)
	real                     // a JSON number when the value is one (coordinates)
)

// csvName pairs a pmacct CSV header name with the JSON key pmacct writes for the
// same primitive, and the JSON type pmacct gives it.
type csvName struct {
	csv, json string
	typ       valueType
	// freeText marks strings that may hold the separator: a label chained in a
	// pre_tag_map is joined with ',' and an AS path can hold an AS_SET "{1,2}"
	freeText bool
}

// csvNames is pmacct's CSV header (print plugin and memory client write the same
// names) against its JSON keys. The entries marked "run" were checked by running
// Debian's pmacct 1.7.7 with the primitive alone in both formats (testdata/out/
// csvnames.txt, made by testdata/generate.sh); the others come from pmacct's
// source: 1.7.7 for primitives its daemons crash on or were built without, master
// (1.8) for primitives added after 1.7.7.
var csvNames = []csvName{
	{"TAG", "tag", integer, false},   // run
	{"TAG2", "tag2", integer, false}, // run
	{"LABEL", "label", text, true},   // run
	{"CLASS", "class", text, false},  // 1.7.7 source (Debian builds without nDPI)
	{"SRC_MAC", "mac_src", text, false},
	{"DST_MAC", "mac_dst", text, false},
	{"VLAN", "vlan", integer, false},
	{"IN_VLAN", "vlan_in", integer, false},     // master
	{"OUT_VLAN", "vlan_out", integer, false},   // master
	{"IN_CVLAN", "cvlan_in", integer, false},   // master
	{"OUT_CVLAN", "cvlan_out", integer, false}, // master
	{"COS", "cos", integer, false},
	{"ETYPE", "etype", text, false}, // hex text: "800"
	{"SRC_AS", "as_src", integer, false},
	{"DST_AS", "as_dst", integer, false},
	{"COMMS", "comms", text, false},
	{"ECOMMS", "ecomms", text, false},
	{"LCOMMS", "lcomms", text, false},
	{"SRC_COMMS", "comms_src", text, false},
	{"SRC_ECOMMS", "ecomms_src", text, false},
	{"SRC_LCOMMS", "lcomms_src", text, false},
	{"AS_PATH", "as_path", text, true},
	{"SRC_AS_PATH", "as_path_src", text, true},
	{"PREF", "local_pref", integer, false},
	{"SRC_PREF", "local_pref_src", integer, false},
	{"MED", "med", integer, false},
	{"SRC_MED", "med_src", integer, false},
	{"SRC_ROA", "roa_src", text, false}, // 1.7.7 source: its JSON writer crashes on it
	{"DST_ROA", "roa_dst", text, false}, // 1.7.7 source, idem
	{"PEER_SRC_AS", "peer_as_src", integer, false},
	{"PEER_DST_AS", "peer_as_dst", integer, false},
	{"PEER_SRC_IP", "peer_ip_src", text, false},
	{"PEER_DST_IP", "peer_ip_dst", text, false},
	{"IN_IFACE", "iface_in", integer, false},
	{"OUT_IFACE", "iface_out", integer, false},
	{"MPLS_VPN_RD", "mpls_vpn_rd", text, false},
	{"MPLS_PW_ID", "mpls_pw_id", integer, false},          // 1.7.7 source: its JSON writer crashes on it
	{"VRF_NAME", "vrf_name", text, false},                 // master
	{"INGRESS_VRF_NAME", "ingress_vrf_name", text, false}, // master
	{"EGRESS_VRF_NAME", "egress_vrf_name", text, false},   // master
	{"IN_IFACE_NAME", "iface_name_in", text, false},       // master
	{"OUT_IFACE_NAME", "iface_name_out", text, false},     // master
	{"SRC_IP", "ip_src", text, false},
	{"SRC_NET", "net_src", text, false},
	{"DST_IP", "ip_dst", text, false},
	{"DST_NET", "net_dst", text, false},
	{"SRC_MASK", "mask_src", integer, false},
	{"DST_MASK", "mask_dst", integer, false},
	{"SRC_PORT", "port_src", integer, false},
	{"DST_PORT", "port_dst", integer, false},
	{"TCP_FLAGS", "tcp_flags", text, false}, // a decimal string in 1.7.x JSON and in the memory client
	{"PROTOCOL", "ip_proto", text, false},   // a name or a decimal string
	{"TOS", "tos", integer, false},
	{"FLOW_LABEL", "flow_label", integer, false}, // master
	{"SH_COUNTRY", "country_ip_src", text, false},
	{"DH_COUNTRY", "country_ip_dst", text, false},
	{"SH_POCODE", "pocode_ip_src", text, false},
	{"DH_POCODE", "pocode_ip_dst", text, false},
	{"SH_LAT", "lat_ip_src", real, false},
	{"SH_LON", "lon_ip_src", real, false},
	{"DH_LAT", "lat_ip_dst", real, false},
	{"DH_LON", "lon_ip_dst", real, false},
	{"SAMPLING_RATE", "sampling_rate", integer, false},
	{"SAMPLING_DIRECTION", "sampling_direction", text, false},
	{"POST_NAT_SRC_IP", "post_nat_ip_src", text, false},
	{"POST_NAT_DST_IP", "post_nat_ip_dst", text, false},
	{"POST_NAT_SRC_PORT", "post_nat_port_src", integer, false},
	{"POST_NAT_DST_PORT", "post_nat_port_dst", integer, false},
	{"NAT_EVENT", "nat_event", integer, false},
	{"FW_EVENT", "fw_event", integer, false},  // master (1.7.7 prints fw_event as NAT_EVENT/nat_event)
	{"FWD_STATUS", "fwd_status", text, false}, // master
	{"MPLS_LABEL_TOP", "mpls_label_top", integer, false},
	{"MPLS_LABEL_BOTTOM", "mpls_label_bottom", integer, false},
	{"MPLS_STACK_DEPTH", "mpls_stack_depth", integer, false}, // 1.7.7 only
	{"MPLS_LABEL_STACK", "mpls_label_stack", text, false},    // master
	{"TUNNEL_SRC_MAC", "tunnel_mac_src", text, false},        // tunnel_* and vxlan: 1.7.7 source, its pmacctd crashes on them
	{"TUNNEL_DST_MAC", "tunnel_mac_dst", text, false},
	{"TUNNEL_SRC_IP", "tunnel_ip_src", text, false},
	{"TUNNEL_DST_IP", "tunnel_ip_dst", text, false},
	{"TUNNEL_PROTOCOL", "tunnel_ip_proto", text, false},
	{"TUNNEL_TOS", "tunnel_tos", integer, false},
	{"TUNNEL_FLOW_LABEL", "tunnel_flow_label", integer, false}, // master
	{"TUNNEL_SRC_PORT", "tunnel_port_src", integer, false},
	{"TUNNEL_DST_PORT", "tunnel_port_dst", integer, false},
	{"TUNNEL_TCP_FLAGS", "tunnel_tcp_flags", text, false}, // master
	{"VXLAN", "vxlan", integer, false},
	{"NVGRE", "nvgre", integer, false}, // master
	{"TIMESTAMP_START", "timestamp_start", text, false},
	{"TIMESTAMP_END", "timestamp_end", text, false},
	{"TIMESTAMP_ARRIVAL", "timestamp_arrival", text, false},
	{"TIMESTAMP_EXPORT", "timestamp_export", text, false},
	{"TIMESTAMP_MIN", "timestamp_min", text, false}, // 1.7.7 source (nfacctd_stitching)
	{"TIMESTAMP_MAX", "timestamp_max", text, false},
	{"EXPORT_PROTO_SEQNO", "export_proto_seqno", integer, false},
	{"EXPORT_PROTO_VERSION", "export_proto_version", integer, false},
	{"EXPORT_PROTO_SYSID", "export_proto_sysid", integer, false},
	{"PATH_DELAY_AVG_USEC", "path_delay_avg_usec", integer, false}, // master
	{"PATH_DELAY_MIN_USEC", "path_delay_min_usec", integer, false}, // master
	{"PATH_DELAY_MAX_USEC", "path_delay_max_usec", integer, false}, // master
	{"PACKETS", "packets", integer, false},
	{"FLOWS", "flows", integer, false},
	{"BYTES", "bytes", integer, false},
}

var csvByName = func() map[string]*csvName {
	m := make(map[string]*csvName, len(csvNames))
	for i := range csvNames {
		m[csvNames[i].csv] = &csvNames[i]
	}
	return m
}()

// lookupCSV returns pmacct's entry for a CSV header name, in any letter case.
func lookupCSV(name string) *csvName {
	if n, ok := csvByName[name]; ok {
		return n
	}
	return csvByName[strings.ToUpper(name)]
}

// lookupCSVBytes is lookupCSV without allocating, for names up to 64 bytes.
func lookupCSVBytes(name []byte) *csvName {
	if n, ok := csvByName[string(name)]; ok {
		return n
	}
	var buf [64]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, c := range name {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return csvByName[string(buf[:len(name)])]
}

// CSVToJSONKey returns the JSON key pmacct writes for the primitive it names name
// in a CSV header (SRC_IP -> ip_src, PROTOCOL -> ip_proto), in any letter case;
// false for names pmacct does not define (custom primitives, which keep their
// name in both formats).
func CSVToJSONKey(name string) (string, bool) {
	if n := lookupCSV(name); n != nil {
		return n.json, true
	}
	return "", false
}
