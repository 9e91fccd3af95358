package flow

import (
	"fmt"
	"strings"

	"github.com/flowdex/flowdex/aggregate/spelling"
)

// Primitive is one of pmacct's aggregation primitives. The constants are in the
// order pmacct writes their JSON keys, so walking a Set from its lowest bit
// gives pmacct's key order.
type Primitive uint8

const (
	SrcMAC Primitive = iota
	DstMAC
	VLAN
	CoS
	EType
	SrcAS
	DstAS
	PeerSrcAS
	PeerDstAS
	PeerSrcIP
	PeerDstIP
	InIface
	OutIface
	SrcHost
	SrcNet
	DstHost
	DstNet
	SrcMask
	DstMask
	SrcPort
	DstPort
	TCPFlags
	Proto
	TOS
	SamplingRate
	MPLSLabelTop
	MPLSLabelBottom
	MPLSStackDepth
	TunnelSrcMAC
	TunnelDstMAC
	TunnelSrcHost
	TunnelDstHost
	TunnelProto
	TunnelTOS
	TunnelSrcPort
	TunnelDstPort
	VXLAN
	TimestampStart
	TimestampEnd
	TimestampArrival
	ExportProtoSeqno
	ExportProtoVersion
	ExportProtoSysID
	TimestampExport
	Flows
	numPrimitives
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

// info describes a primitive: its aggregate name (pmacct's config) and JSON key.
type info struct{ name, json string }

var infos = [numPrimitives]info{
	SrcMAC:             {"src_mac", "mac_src"},
	DstMAC:             {"dst_mac", "mac_dst"},
	VLAN:               {"vlan", "vlan"},
	CoS:                {"cos", "cos"},
	EType:              {"etype", "etype"},
	SrcAS:              {"src_as", "as_src"},
	DstAS:              {"dst_as", "as_dst"},
	PeerSrcAS:          {"peer_src_as", "peer_as_src"},
	PeerDstAS:          {"peer_dst_as", "peer_as_dst"},
	PeerSrcIP:          {"peer_src_ip", "peer_ip_src"},
	PeerDstIP:          {"peer_dst_ip", "peer_ip_dst"},
	InIface:            {"in_iface", "iface_in"},
	OutIface:           {"out_iface", "iface_out"},
	SrcHost:            {"src_host", "ip_src"},
	SrcNet:             {"src_net", "net_src"},
	DstHost:            {"dst_host", "ip_dst"},
	DstNet:             {"dst_net", "net_dst"},
	SrcMask:            {"src_mask", "mask_src"},
	DstMask:            {"dst_mask", "mask_dst"},
	SrcPort:            {"src_port", "port_src"},
	DstPort:            {"dst_port", "port_dst"},
	TCPFlags:           {"tcpflags", "tcp_flags"},
	Proto:              {"proto", "ip_proto"},
	TOS:                {"tos", "tos"},
	SamplingRate:       {"sampling_rate", "sampling_rate"},
	MPLSLabelTop:       {"mpls_label_top", "mpls_label_top"},
	MPLSLabelBottom:    {"mpls_label_bottom", "mpls_label_bottom"},
	MPLSStackDepth:     {"mpls_stack_depth", "mpls_stack_depth"},
	TunnelSrcMAC:       {"tunnel_src_mac", "tunnel_mac_src"},
	TunnelDstMAC:       {"tunnel_dst_mac", "tunnel_mac_dst"},
	TunnelSrcHost:      {"tunnel_src_host", "tunnel_ip_src"},
	TunnelDstHost:      {"tunnel_dst_host", "tunnel_ip_dst"},
	TunnelProto:        {"tunnel_proto", "tunnel_ip_proto"},
	TunnelTOS:          {"tunnel_tos", "tunnel_tos"},
	TunnelSrcPort:      {"tunnel_src_port", "tunnel_port_src"},
	TunnelDstPort:      {"tunnel_dst_port", "tunnel_port_dst"},
	VXLAN:              {"vxlan", "vxlan"},
	TimestampStart:     {"timestamp_start", "timestamp_start"},
	TimestampEnd:       {"timestamp_end", "timestamp_end"},
	TimestampArrival:   {"timestamp_arrival", "timestamp_arrival"},
	ExportProtoSeqno:   {"export_proto_seqno", "export_proto_seqno"},
	ExportProtoVersion: {"export_proto_version", "export_proto_version"},
	ExportProtoSysID:   {"export_proto_sysid", "export_proto_sysid"},
	TimestampExport:    {"timestamp_export", "timestamp_export"},
	Flows:              {"flows", "flows"},
}

// Name returns the primitive's name in pmacct's aggregate list.
func (p Primitive) Name() string { return infos[p].name }

// JSONKey returns the key pmacct writes the primitive under.
func (p Primitive) JSONKey() string { return infos[p].json }

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

var byName = func() map[string]Primitive {
	m := make(map[string]Primitive, numPrimitives)
	for p := range numPrimitives {
		m[infos[p].name] = p
	}
	m["tcp_flags"] = TCPFlags // the JSON name, which people write too
	return m
}()

// KnownNames lists every aggregate name flowdex accepts, for messages.
func KnownNames() []string {
	names := []string{"none"}
	for p := range numPrimitives {
		names = append(names, infos[p].name)
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
