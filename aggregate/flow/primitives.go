package flow

// Primitive is one of pmacct's aggregation primitives, or one of the other
// fields of pmacct's documents (event_type, the time bins, the counters). The
// constants are in the order pmacct writes their JSON keys (1.7.7's
// compose_json, with the keys of later versions where those put them), so
// walking a Set from its lowest bit gives pmacct's key order. The rows of the
// custom primitives (Custom0...) are filled by DefineCustom (custom.go).
//
// The table below is all flowdex knows about each: adding a primitive is its
// constant here, its row, and, for one flowdex aggregates on, a field in Key
// (record.go) and the decoder code that fills it. A NetFlow/IPFIX element
// read as a number, address or MAC needs no decoder code: its row names the
// element. The document writer, the cache's key packing, the Elasticsearch
// template, pmacct's CSV names and the NetFlow/IPFIX plans all come from the
// row. A value pmacct writes in a form no Kind has yet (a route
// distinguisher, "0:65000:1") needs that kind too: its line in kinds and its
// write operation (info.go), its writer in Format.Document (format.go).
type Primitive uint8

const (
	EventType Primitive = iota
	Tag
	Tag2
	Label
	Class
	SrcMAC
	DstMAC
	VLAN
	InVLAN
	OutVLAN
	InCVLAN
	OutCVLAN
	CoS
	EType
	SrcAS
	DstAS
	StdComm
	ExtComm
	LrgComm
	ASPath
	LocalPref
	MED
	DstROA
	PeerSrcAS
	PeerDstAS
	PeerSrcIP
	PeerDstIP
	SrcStdComm
	SrcExtComm
	SrcLrgComm
	SrcASPath
	SrcLocalPref
	SrcMED
	SrcROA
	InIface
	OutIface
	MPLSVPNRD
	MPLSVPNRDOrigin
	MPLSPWID
	SrcHost
	SrcNet
	DstHost
	DstNet
	SrcMask
	DstMask
	SrcPort
	DstPort
	SrcHostCountry
	DstHostCountry
	SrcHostPocode
	DstHostPocode
	SrcHostCoords
	SrcHostLon
	DstHostCoords
	DstHostLon
	TCPFlags
	FwdStatus
	MPLSLabelStack
	SRv6SegIPv6List
	PathDelayAvgUsec
	PathDelayMinUsec
	PathDelayMaxUsec
	Proto
	TOS
	FlowLabel
	SamplingRate
	SamplingDirection
	PostNATSrcHost
	PostNATDstHost
	PostNATSrcPort
	PostNATDstPort
	NATEvent
	FWEvent
	MPLSLabelTop
	MPLSLabelBottom
	MPLSStackDepth
	TunnelSrcMAC
	TunnelDstMAC
	TunnelSrcHost
	TunnelDstHost
	TunnelProto
	TunnelTOS
	TunnelFlowLabel
	TunnelSrcPort
	TunnelDstPort
	TunnelTCPFlags
	VXLAN
	NVGRE
	TimestampStart
	TimestampEnd
	TimestampArrival
	TimestampMin
	TimestampMax
	ExportProtoSeqno
	ExportProtoVersion
	ExportProtoSysID
	TimestampExport
	Custom0 // the custom primitives (custom.go), where pmacct writes them
	Custom1
	Custom2
	Custom3
	Custom4
	Custom5
	Custom6
	Custom7
	Custom8
	Custom9
	Custom10
	Custom11
	Custom12
	Custom13
	Custom14
	Custom15
	StampInserted
	StampUpdated
	Flows
	VRFName
	IngressVRFName
	EgressVRFName
	InIfaceName
	OutIfaceName
	Packets
	Bytes
	numPrimitives
)

// table holds a row per primitive: row(aggregate name, JSON key, CSV header,
// kind, Record field), then where NetFlow/IPFIX carries it (nf: the first of
// these elements a template has; nf4/nf6: the same for records of one address
// family). A row without a Record field is a primitive flowdex reads in
// pmacct's output but does not aggregate on yet; one without an aggregate
// name is a field of pmacct's documents that is no primitive.
//
// Where a comment says "master", the primitive is one of pmacct 1.8's, after
// 1.7.7; "1.7.7 source", 1.7.7 has it but its Debian build does not print it
// (collector/pmacct/testdata/generate.sh checked the others, csvnames.txt).
// Decoders that set a field by hand say so: sFlow (collector/sflow), the
// packet parser (collector/packet: pcap and sFlow's sampled headers), the
// NetFlow/IPFIX header or special rules (collector/netflow), the pipeline
// (aggregate/cache: networks_file, masks, sampling).
var table = [numPrimitives]Info{
	EventType: row("", "event_type", "", KindText, ""),                                 // "purge"; pmacct's CSV has no such column
	Tag:       row("tag", "tag", "TAG", KindUint, "Tag"),                               // pre_tag_map (aggregate/pretag)
	Tag2:      row("tag2", "tag2", "TAG2", KindUint, "Tag2"),                           // idem
	Label:     row("label", "label", "LABEL", KindLabel, "Label").freeText(),           // idem; labels chained in a map are joined with ','
	Class:     row("class", "class", "CLASS", KindClass, "Class"),                      // NetFlow: IE 95, named by option data (decode_v9.go); not nDPI's
	SrcMAC:    row("src_mac", "mac_src", "SRC_MAC", KindMAC, "SrcMAC").nf(56, 81, 365), // sFlow, packet
	DstMAC:    row("dst_mac", "mac_dst", "DST_MAC", KindMAC, "DstMAC").nf(80, 57),      // sFlow, packet
	VLAN:      row("vlan", "vlan", "VLAN", KindUint, "VLAN"),                           // NetFlow: 58/243 or 59/254 by direction (IE 61); sFlow; pcap
	InVLAN:    row("in_vlan", "vlan_in", "IN_VLAN", KindUint, ""),                      // master
	OutVLAN:   row("out_vlan", "vlan_out", "OUT_VLAN", KindUint, ""),                   // master
	InCVLAN:   row("in_cvlan", "cvlan_in", "IN_CVLAN", KindUint, ""),                   // master
	OutCVLAN:  row("out_cvlan", "cvlan_out", "OUT_CVLAN", KindUint, ""),                // master
	CoS:       row("cos", "cos", "COS", KindUint, "CoS").nf(244),                       // sFlow; pcap
	EType:     row("etype", "etype", "ETYPE", KindHex, "EType").nf(256),                // NetFlow: else from the address family; sFlow, packet
	SrcAS:     row("src_as", "as_src", "SRC_AS", KindUint, "SrcAS").nf(16),             // sFlow; networks_file
	DstAS:     row("dst_as", "as_dst", "DST_AS", KindUint, "DstAS").nf(17),             // sFlow; networks_file

	StdComm:         row("std_comm", "comms", "COMMS", KindInterned, "StdComm"),
	ExtComm:         row("ext_comm", "ecomms", "ECOMMS", KindInterned, "ExtComm"),
	LrgComm:         row("lrg_comm", "lcomms", "LCOMMS", KindInterned, "LrgComm"),
	ASPath:          row("as_path", "as_path", "AS_PATH", KindInterned, "ASPath").freeText(), // an AS_SET is "{1,2}"
	LocalPref:       row("local_pref", "local_pref", "PREF", KindUint, "LocalPref"),
	MED:             row("med", "med", "MED", KindUint, "MED"),
	DstROA:          row("dst_roa", "roa_dst", "DST_ROA", KindText, ""),                                   // 1.7.7 source: its JSON writer crashes on it
	PeerSrcAS:       row("peer_src_as", "peer_as_src", "PEER_SRC_AS", KindUint, "PeerSrcAS").nf(129),      // sFlow; networks_file
	PeerDstAS:       row("peer_dst_as", "peer_as_dst", "PEER_DST_AS", KindUint, "PeerDstAS").nf(128),      // sFlow; networks_file
	PeerSrcIP:       row("peer_src_ip", "peer_ip_src", "PEER_SRC_IP", KindIP, "PeerSrcIP"),                // the exporter; sFlow: the agent
	PeerDstIP:       row("peer_dst_ip", "peer_ip_dst", "PEER_DST_IP", KindIP, "PeerDstIP").emptyUnknown(), // NetFlow: BGP, MPLS or IP next hop (compile.go); sFlow; networks_file; "" when none, as pmacct
	SrcStdComm:      row("src_std_comm", "comms_src", "SRC_COMMS", KindInterned, "SrcStdComm"),
	SrcExtComm:      row("src_ext_comm", "ecomms_src", "SRC_ECOMMS", KindInterned, "SrcExtComm"),
	SrcLrgComm:      row("src_lrg_comm", "lcomms_src", "SRC_LCOMMS", KindInterned, "SrcLrgComm"),
	SrcASPath:       row("src_as_path", "as_path_src", "SRC_AS_PATH", KindInterned, "SrcASPath").freeText(),
	SrcLocalPref:    row("src_local_pref", "local_pref_src", "SRC_PREF", KindUint, "SrcLocalPref"),
	SrcMED:          row("src_med", "med_src", "SRC_MED", KindUint, "SrcMED"),
	SrcROA:          row("src_roa", "roa_src", "SRC_ROA", KindText, ""),                           // 1.7.7 source: its JSON writer crashes on it
	InIface:         row("in_iface", "iface_in", "IN_IFACE", KindUint, "InIface").nf(10, 252),     // sFlow
	OutIface:        row("out_iface", "iface_out", "OUT_IFACE", KindUint, "OutIface").nf(14, 253), // sFlow
	MPLSVPNRD:       row("mpls_vpn_rd", "mpls_vpn_rd", "MPLS_VPN_RD", KindRD, "MPLSVPNRD"),        // NetFlow: a VRF id, else IE 90 (compile.go)
	MPLSVPNRDOrigin: row("", "mpls_vpn_rd_origin", "", KindText, ""),                              // master: written with mpls_vpn_rd; no CSV column
	MPLSPWID:        row("mpls_pw_id", "mpls_pw_id", "MPLS_PW_ID", KindUint, "MPLSPWID").nf(249),  // 1.7.7 crashes writing it without a BGP primitive

	SrcHost: row("src_host", "ip_src", "SRC_IP", KindIP, "SrcIP").nf4(8, 44, 366).nf6(27, 170), // sFlow, packet
	SrcNet:  row("src_net", "net_src", "SRC_NET", KindNet, "SrcNet").hostIs(SrcHost),           // networks_file or masks
	DstHost: row("dst_host", "ip_dst", "DST_IP", KindIP, "DstIP").nf4(12, 45).nf6(28, 169),     // sFlow, packet
	DstNet:  row("dst_net", "net_dst", "DST_NET", KindNet, "DstNet").hostIs(DstHost),           // networks_file or masks
	SrcMask: row("src_mask", "mask_src", "SRC_MASK", KindUint, "SrcMask").nf4(9).nf6(29),       // sFlow; networks_file
	DstMask: row("dst_mask", "mask_dst", "DST_MASK", KindUint, "DstMask").nf4(13).nf6(30),      // sFlow; networks_file
	SrcPort: row("src_port", "port_src", "SRC_PORT", KindUint, "SrcPort").nf(7, 180, 182),      // sFlow, packet
	DstPort: row("dst_port", "port_dst", "DST_PORT", KindUint, "DstPort").nf(11, 181, 183),     // sFlow, packet
	// GeoIP: the pipeline, from its geoip_database (aggregate/cache)
	SrcHostCountry: row("src_host_country", "country_ip_src", "SH_COUNTRY", KindString, "SrcCountry"),
	DstHostCountry: row("dst_host_country", "country_ip_dst", "DH_COUNTRY", KindString, "DstCountry"),
	SrcHostPocode:  row("src_host_pocode", "pocode_ip_src", "SH_POCODE", KindString, "SrcPocode"),
	DstHostPocode:  row("dst_host_pocode", "pocode_ip_dst", "DH_POCODE", KindString, "DstPocode"),
	SrcHostCoords:  row("src_host_coords", "lat_ip_src", "SH_LAT", KindCoords, "SrcCoords"),
	SrcHostLon:     row("", "lon_ip_src", "SH_LON", KindReal, ""), // src_host_coords' second key
	DstHostCoords:  row("dst_host_coords", "lat_ip_dst", "DH_LAT", KindCoords, "DstCoords"),
	DstHostLon:     row("", "lon_ip_dst", "DH_LON", KindReal, ""), // dst_host_coords' second key

	TCPFlags:          row("tcpflags", "tcp_flags", "TCP_FLAGS", KindTCPFlags, "TCPFlags").nf(6),                                 // sFlow, packet
	FwdStatus:         row("fwd_status", "fwd_status", "FWD_STATUS", KindText, ""),                                               // master
	MPLSLabelStack:    row("mpls_label_stack", "mpls_label_stack", "MPLS_LABEL_STACK", KindText, ""),                             // master
	SRv6SegIPv6List:   row("srv6_seg_ipv6_list", "srv6_seg_ipv6_list", "", KindText, ""),                                         // master: an array of addresses; no CSV column
	PathDelayAvgUsec:  row("path_delay_avg_usec", "path_delay_avg_usec", "PATH_DELAY_AVG_USEC", KindUint, ""),                    // master
	PathDelayMinUsec:  row("path_delay_min_usec", "path_delay_min_usec", "PATH_DELAY_MIN_USEC", KindUint, ""),                    // master
	PathDelayMaxUsec:  row("path_delay_max_usec", "path_delay_max_usec", "PATH_DELAY_MAX_USEC", KindUint, ""),                    // master
	Proto:             row("proto", "ip_proto", "PROTOCOL", KindProto, "Proto").nf(4),                                            // sFlow, packet
	TOS:               row("tos", "tos", "TOS", KindUint, "TOS").nf(5),                                                           // sFlow, packet
	FlowLabel:         row("flow_label", "flow_label", "FLOW_LABEL", KindUint, ""),                                               // master
	SamplingRate:      row("sampling_rate", "sampling_rate", "SAMPLING_RATE", KindUint, "SamplingRate"),                          // NetFlow: header or options (decode_v9.go); sFlow; pcap; pipeline
	SamplingDirection: row("sampling_direction", "sampling_direction", "SAMPLING_DIRECTION", KindDirection, "SamplingDirection"), // NetFlow: IE 61 (compile.go)
	// NEL and NSEL: the IANA element, else (NetFlow v9 only: in IPFIX these
	// numbers have the enterprise bit) Cisco ASA's; post-NAT addresses of
	// IPv4 records and events only (compile.go), "" when unknown, as nfacctd
	PostNATSrcHost: row("post_nat_src_host", "post_nat_ip_src", "POST_NAT_SRC_IP", KindIP, "PostNATSrcIP").nf4(225, 40001).emptyUnknown(),
	PostNATDstHost: row("post_nat_dst_host", "post_nat_ip_dst", "POST_NAT_DST_IP", KindIP, "PostNATDstIP").nf4(226, 40002).emptyUnknown(),
	PostNATSrcPort: row("post_nat_src_port", "post_nat_port_src", "POST_NAT_SRC_PORT", KindUint, "PostNATSrcPort").nf(227, 40003),
	PostNATDstPort: row("post_nat_dst_port", "post_nat_port_dst", "POST_NAT_DST_PORT", KindUint, "PostNATDstPort").nf(228, 40004),
	NATEvent:       row("nat_event", "nat_event", "NAT_EVENT", KindUint, "NATEvent").nf(230, 40005),
	FWEvent:        row("fw_event", "fw_event", "FW_EVENT", KindUint, "FWEvent").nf(233), // 1.7.8's; 1.7.7's fw_event is nat_event

	MPLSLabelTop:    row("mpls_label_top", "mpls_label_top", "MPLS_LABEL_TOP", KindUint, "MPLSLabelTop"),             // packet
	MPLSLabelBottom: row("mpls_label_bottom", "mpls_label_bottom", "MPLS_LABEL_BOTTOM", KindUint, "MPLSLabelBottom"), // packet
	MPLSStackDepth:  row("mpls_stack_depth", "mpls_stack_depth", "MPLS_STACK_DEPTH", KindUint, "MPLSStackDepth"),     // packet; 1.7.7 only
	// tunnel_* and vxlan: the packet parser, from a VXLAN frame's inner one;
	// 1.7.7 source, its pmacctd crashes on them
	TunnelSrcMAC:    row("tunnel_src_mac", "tunnel_mac_src", "TUNNEL_SRC_MAC", KindMAC, "TunnelSrcMAC"),
	TunnelDstMAC:    row("tunnel_dst_mac", "tunnel_mac_dst", "TUNNEL_DST_MAC", KindMAC, "TunnelDstMAC"),
	TunnelSrcHost:   row("tunnel_src_host", "tunnel_ip_src", "TUNNEL_SRC_IP", KindIP, "TunnelSrcIP"),
	TunnelDstHost:   row("tunnel_dst_host", "tunnel_ip_dst", "TUNNEL_DST_IP", KindIP, "TunnelDstIP"),
	TunnelProto:     row("tunnel_proto", "tunnel_ip_proto", "TUNNEL_PROTOCOL", KindProto, "TunnelProto"),
	TunnelTOS:       row("tunnel_tos", "tunnel_tos", "TUNNEL_TOS", KindUint, "TunnelTOS"),
	TunnelFlowLabel: row("tunnel_flow_label", "tunnel_flow_label", "TUNNEL_FLOW_LABEL", KindUint, ""), // master
	TunnelSrcPort:   row("tunnel_src_port", "tunnel_port_src", "TUNNEL_SRC_PORT", KindUint, "TunnelSrcPort"),
	TunnelDstPort:   row("tunnel_dst_port", "tunnel_port_dst", "TUNNEL_DST_PORT", KindUint, "TunnelDstPort"),
	TunnelTCPFlags:  row("tunnel_tcpflags", "tunnel_tcp_flags", "TUNNEL_TCP_FLAGS", KindTCPFlags, ""), // master
	VXLAN:           row("vxlan", "vxlan", "VXLAN", KindUint, "VXLAN"),
	NVGRE:           row("nvgre", "nvgre", "NVGRE", KindUint, ""), // master

	// NetFlow: the flow times by nfacctd's rules (compile.go), the others from
	// the header; sFlow and pcap: the arrival time
	TimestampStart:     row("timestamp_start", "timestamp_start", "TIMESTAMP_START", KindTime, "TimestampStart"),
	TimestampEnd:       row("timestamp_end", "timestamp_end", "TIMESTAMP_END", KindTime, "TimestampEnd"),
	TimestampArrival:   row("timestamp_arrival", "timestamp_arrival", "TIMESTAMP_ARRIVAL", KindTime, "TimestampArrival"),
	TimestampMin:       row("", "timestamp_min", "TIMESTAMP_MIN", KindTime, ""), // 1.7.7 source: written with nfacctd_stitching
	TimestampMax:       row("", "timestamp_max", "TIMESTAMP_MAX", KindTime, ""), // idem
	ExportProtoSeqno:   row("export_proto_seqno", "export_proto_seqno", "EXPORT_PROTO_SEQNO", KindUint, "ExportProtoSeqno"),
	ExportProtoVersion: row("export_proto_version", "export_proto_version", "EXPORT_PROTO_VERSION", KindUint, "ExportProtoVersion"),
	ExportProtoSysID:   row("export_proto_sysid", "export_proto_sysid", "EXPORT_PROTO_SYSID", KindUint, "ExportProtoSysID"),
	TimestampExport:    row("timestamp_export", "timestamp_export", "TIMESTAMP_EXPORT", KindTime, "TimestampExport"),

	StampInserted:  row("", "stamp_inserted", "", KindStamp, ""), // the time bin; pmacct's CSV has none
	StampUpdated:   row("", "stamp_updated", "", KindStamp, ""),
	Flows:          row("flows", "flows", "FLOWS", KindCounter, "Flows").nf(3),                    // NetFlow: 1 without IE 3
	VRFName:        row("vrf_name", "vrf_name", "VRF_NAME", KindText, ""),                         // master
	IngressVRFName: row("ingress_vrf_name", "ingress_vrf_name", "INGRESS_VRF_NAME", KindText, ""), // master
	EgressVRFName:  row("egress_vrf_name", "egress_vrf_name", "EGRESS_VRF_NAME", KindText, ""),    // master
	InIfaceName:    row("in_iface_name", "iface_name_in", "IN_IFACE_NAME", KindText, ""),          // master
	OutIfaceName:   row("out_iface_name", "iface_name_out", "OUT_IFACE_NAME", KindText, ""),       // master
	Packets:        row("", "packets", "PACKETS", KindCounter, "Packets").nf(2, 86, 24),
	Bytes:          row("", "bytes", "BYTES", KindCounter, "Bytes").nf(1, 85, 23, 352), // sFlow: the frame length; pcap: the IP length
}
