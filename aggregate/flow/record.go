// Package flow holds the one record type that goes from the collectors to the
// aggregation pipelines: a flow (or a sampled packet) in pmacct's schema, with
// typed primitives and counters; and the table of pmacct's primitives
// (primitives.go), from which their JSON form, the cache's keys, the
// Elasticsearch template, pmacct's CSV names and the NetFlow/IPFIX plans
// derive.
//
// A pipeline (aggregate/cache) keys its aggregates on a packed form of only the
// primitives it aggregates on, not on a Key; Key stays comparable, so that two
// records' primitives compare with ==.
package flow

import "net/netip"

// Key holds the primitives of a record, named after pmacct's aggregate keys:
// pmacct's own (Fixed) and the custom ones. A zero field means unknown or
// absent, as in pmacct's output.
type Key struct {
	Fixed

	// Custom holds the values of the custom primitives (custom.go), each at
	// the offset DefineCustom gave it: integers in the host's byte order,
	// addresses and strings as their bytes, a string's unused bytes zero.
	// Apart from Fixed, so that decoders that set none copy and clear
	// Fixed only.
	Custom [CustomBytes]byte
}

// Fixed holds pmacct's own primitives.
type Fixed struct {
	Tag, Tag2 uint64 // tag, tag2: set by an input's pre_tag_map (0: none)
	Label     uint32 // label: the pre_tag_map's, as LabelID numbers it (0: none)
	Class     uint32 // class: the application's name, as LabelID numbers it (0: "unknown")

	SrcMAC, DstMAC [6]byte // src_mac, dst_mac
	VLAN           uint16  // vlan: ingress VLAN, else egress
	CoS            uint8   // cos: 802.1p priority
	EType          uint16  // etype

	SrcAS, DstAS         uint32     // src_as, dst_as
	PeerSrcAS, PeerDstAS uint32     // peer_src_as, peer_dst_as
	PeerSrcIP, PeerDstIP netip.Addr // peer_src_ip: exporter (sFlow: agent); peer_dst_ip: BGP/IP next hop

	InIface, OutIface uint32 // in_iface, out_iface (ifIndex)

	// BGP: the route to the destination, and from the source (src_*), in the
	// exporter's BGP peer's table; texts as LabelID numbers them (0: none)
	ASPath, StdComm, ExtComm, LrgComm             uint32 // as_path, std_comm, ext_comm, lrg_comm
	LocalPref, MED                                uint32 // local_pref, med
	SrcASPath, SrcStdComm, SrcExtComm, SrcLrgComm uint32 // src_as_path, src_std_comm, src_ext_comm, src_lrg_comm
	SrcLocalPref, SrcMED                          uint32 // src_local_pref, src_med

	// MPLS VPNs: the route distinguisher's 8 bytes (NetFlow IE 90), or a VRF
	// id as pmacct keeps it (type 0x1000, compile.go); a pseudowire's id
	MPLSVPNRD uint64 // mpls_vpn_rd
	MPLSPWID  uint32 // mpls_pw_id

	SrcIP, DstIP     netip.Addr // src_host, dst_host
	SrcNet, DstNet   netip.Addr // src_net, dst_net: network address only, set by a pipeline (networks_file or masks)
	SrcMask, DstMask uint8      // src_mask, dst_mask
	SrcPort, DstPort uint16     // src_port, dst_port

	// GeoIP of the addresses (a pipeline's geoip_database, as pmacct's
	// geoipv2_file): ISO country code, postal code, as pmacct cuts them.
	SrcCountry, DstCountry [3]byte  // src_host_country, dst_host_country
	SrcPocode, DstPocode   [11]byte // src_host_pocode, dst_host_pocode
	SrcCoords, DstCoords   Coords   // src_host_coords, dst_host_coords
	Proto                  uint8    // proto
	TOS                    uint8    // tos

	SamplingRate      uint32 // sampling_rate: 0 unknown, 1 after renormalisation or for unsampled captures
	SamplingDirection uint8  // sampling_direction: DirectionUnknown, DirectionIngress or DirectionEgress

	// NAT and firewall events (NetFlow v9/IPFIX: NEL, Cisco ASA's NSEL).
	PostNATSrcIP, PostNATDstIP     netip.Addr // post_nat_src_host, post_nat_dst_host: the translated addresses
	PostNATSrcPort, PostNATDstPort uint16     // post_nat_src_port, post_nat_dst_port
	NATEvent, FWEvent              uint8      // nat_event, fw_event

	// MPLS label stack of a captured or sFlow-sampled packet: top and bottom
	// label, depth.
	MPLSLabelTop, MPLSLabelBottom uint32 // mpls_label_top, mpls_label_bottom
	MPLSStackDepth                uint8  // mpls_stack_depth

	// The inner packet of a VXLAN tunnel (pmacct's tunnel_* primitives).
	TunnelSrcMAC, TunnelDstMAC   [6]byte    // tunnel_src_mac, tunnel_dst_mac
	TunnelSrcIP, TunnelDstIP     netip.Addr // tunnel_src_host, tunnel_dst_host
	TunnelProto, TunnelTOS       uint8      // tunnel_proto, tunnel_tos
	TunnelSrcPort, TunnelDstPort uint16     // tunnel_src_port, tunnel_dst_port
	VXLAN                        uint32     // vxlan: the VNI

	// Unix microseconds, 0 unknown.
	TimestampStart, TimestampEnd      int64  // timestamp_start, timestamp_end (flow)
	TimestampArrival, TimestampExport int64  // timestamp_arrival (datagram or captured packet), timestamp_export (header)
	ExportProtoSeqno                  uint32 // export_proto_seqno
	ExportProtoSysID                  uint32 // export_proto_sysid: v5 engine id, v9 source id, IPFIX domain, sFlow sub-agent
	ExportProtoVersion                uint16 // export_proto_version: 5, 9, 10; sFlow 5
}

// Coords are a location's latitude and longitude (0, 0 when unknown, as in
// pmacct).
type Coords struct{ Lat, Lon float64 }

// Location is what GeoIP says of an address: the GeoIP primitives of one
// side of a record.
type Location struct {
	Country [3]byte
	Pocode  [11]byte
	Coords  Coords
}

// Record is one flow record, or one sampled packet, with its counters.
type Record struct {
	Key
	TCPFlags uint8 // OR-ed over the aggregate, not part of the key
	// Event: an event, not traffic (NetFlow: a template with natEvent, or
	// without any counter; nfacctd writes no counters for aggregates of
	// them)
	Event bool
	MapFields
	// BGPAS are what the routes to the source and destination give the
	// pipelines whose AS numbers or nets come from BGP (as_source,
	// net_source = "bgp")
	BGPAS
	// Renorm, when not 0, is what renormalization multiplies the counters
	// by instead of the sampling rate (sFlow: the sample pool's growth over
	// the samples', as sfacctd's)
	Renorm  uint32
	Packets uint64 // as the exporter counted them (not renormalised)
	Bytes   uint64 // NetFlow/IPFIX: the exporter's octets; sFlow: sampled frame length; pcap: IP length
	Flows   uint64 // NetFlow/IPFIX: IE 3 when present, else 1; sFlow and pcap: 0
}

// MapFields are what only pre_tag_map's keys read, no primitive.
type MapFields struct {
	NextHop    netip.Addr // the IP next hop: NetFlow IE 15 or 62, v5's, sFlow's router next hop
	CVLAN      uint16     // IE 245, the customer VLAN
	FlowsetID  uint16     // the template of a NetFlow v9/IPFIX record
	EngineType uint8      // NetFlow v5's
	FwdStatus  uint8      // IE 89 of one octet, with MapFwdStatus
	MapFlags   uint8      // MapFwdStatus, MapBiFlow
}

// MapFlags' bits.
const (
	MapFwdStatus = 1 << iota // FwdStatus is the record's
	MapBiFlow                // the record's template has IE 231 and 232 (initiator and responder octets)
	// The exporter, one of pmacct's probes, sent the tag, tag2 or label
	// the record holds (nfprobe's IPFIX elements of pmacct's enterprise,
	// sfprobe's sFlow record); they win over the map's, unless
	// MapProbeYields (sFlow: the map's win where it sets them)
	MapProbeTag
	MapProbeTag2
	MapProbeLabel
	MapProbeYields
)

// BGPAS are a record's AS numbers, masks and next hop by its BGP routes
// (0, or no address: no route).
type BGPAS struct {
	BGPSrcAS, BGPDstAS         uint32     // the paths' last ASes
	BGPPeerSrcAS, BGPPeerDstAS uint32     // their first
	BGPSrcMask, BGPDstMask     uint8      // the routes' prefix lengths
	BGPNextHop                 netip.Addr // the destination route's next hop
}
