package cache

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// An entry's key is the bin (8 bytes, with history) followed by the
// aggregated primitives in Set order, each in a fixed width, addresses as a
// family byte (0, 4 or 6) and 0, 4 or 16 bytes. The encoding is unambiguous,
// so equal keys mean equal aggregates; zones of IPv6 addresses are dropped.

// keyBytes is the most a primitive takes in a key; 0 for counters.
var keyBytes = [...]uint8{
	flow.SrcMAC:             6,
	flow.DstMAC:             6,
	flow.VLAN:               2,
	flow.CoS:                1,
	flow.EType:              2,
	flow.SrcAS:              4,
	flow.DstAS:              4,
	flow.PeerSrcAS:          4,
	flow.PeerDstAS:          4,
	flow.PeerSrcIP:          17,
	flow.PeerDstIP:          17,
	flow.InIface:            4,
	flow.OutIface:           4,
	flow.SrcHost:            17,
	flow.SrcNet:             17,
	flow.DstHost:            17,
	flow.DstNet:             17,
	flow.SrcMask:            1,
	flow.DstMask:            1,
	flow.SrcPort:            2,
	flow.DstPort:            2,
	flow.TCPFlags:           0,
	flow.Proto:              1,
	flow.TOS:                1,
	flow.SamplingRate:       4,
	flow.MPLSLabelTop:       4,
	flow.MPLSLabelBottom:    4,
	flow.MPLSStackDepth:     1,
	flow.TunnelSrcMAC:       6,
	flow.TunnelDstMAC:       6,
	flow.TunnelSrcHost:      17,
	flow.TunnelDstHost:      17,
	flow.TunnelProto:        1,
	flow.TunnelTOS:          1,
	flow.TunnelSrcPort:      2,
	flow.TunnelDstPort:      2,
	flow.VXLAN:              4,
	flow.TimestampStart:     8,
	flow.TimestampEnd:       8,
	flow.TimestampArrival:   8,
	flow.ExportProtoSeqno:   4,
	flow.ExportProtoVersion: 2,
	flow.ExportProtoSysID:   4,
	flow.TimestampExport:    8,
	flow.Flows:              0,
}

// maxKey bounds an encoded key: the bin and every primitive take 270 bytes
// (a test keeps the two in step).
const maxKey = 320

func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		v := a.As4()
		return append(append(b, 4), v[:]...)
	case a.Is6():
		v := a.As16()
		return append(append(b, 6), v[:]...)
	default:
		return append(b, 0)
	}
}

// encode appends the key of k in bin to b.
func (c *Cache) encode(b []byte, k *flow.Key, bin int64) []byte {
	if c.slot > 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(bin))
	}
	for _, p := range c.prims {
		switch p {
		case flow.SrcMAC:
			b = append(b, k.SrcMAC[:]...)
		case flow.DstMAC:
			b = append(b, k.DstMAC[:]...)
		case flow.VLAN:
			b = binary.BigEndian.AppendUint16(b, k.VLAN)
		case flow.CoS:
			b = append(b, k.CoS)
		case flow.EType:
			b = binary.BigEndian.AppendUint16(b, k.EType)
		case flow.SrcAS:
			b = binary.BigEndian.AppendUint32(b, k.SrcAS)
		case flow.DstAS:
			b = binary.BigEndian.AppendUint32(b, k.DstAS)
		case flow.PeerSrcAS:
			b = binary.BigEndian.AppendUint32(b, k.PeerSrcAS)
		case flow.PeerDstAS:
			b = binary.BigEndian.AppendUint32(b, k.PeerDstAS)
		case flow.PeerSrcIP:
			b = appendAddr(b, k.PeerSrcIP)
		case flow.PeerDstIP:
			b = appendAddr(b, k.PeerDstIP)
		case flow.InIface:
			b = binary.BigEndian.AppendUint32(b, k.InIface)
		case flow.OutIface:
			b = binary.BigEndian.AppendUint32(b, k.OutIface)
		case flow.SrcHost:
			b = appendAddr(b, k.SrcIP)
		case flow.SrcNet:
			b = appendAddr(b, k.SrcNet)
		case flow.DstHost:
			b = appendAddr(b, k.DstIP)
		case flow.DstNet:
			b = appendAddr(b, k.DstNet)
		case flow.SrcMask:
			b = append(b, k.SrcMask)
		case flow.DstMask:
			b = append(b, k.DstMask)
		case flow.SrcPort:
			b = binary.BigEndian.AppendUint16(b, k.SrcPort)
		case flow.DstPort:
			b = binary.BigEndian.AppendUint16(b, k.DstPort)
		case flow.Proto:
			b = append(b, k.Proto)
		case flow.TOS:
			b = append(b, k.TOS)
		case flow.SamplingRate:
			b = binary.BigEndian.AppendUint32(b, k.SamplingRate)
		case flow.MPLSLabelTop:
			b = binary.BigEndian.AppendUint32(b, k.MPLSLabelTop)
		case flow.MPLSLabelBottom:
			b = binary.BigEndian.AppendUint32(b, k.MPLSLabelBottom)
		case flow.MPLSStackDepth:
			b = append(b, k.MPLSStackDepth)
		case flow.TunnelSrcMAC:
			b = append(b, k.TunnelSrcMAC[:]...)
		case flow.TunnelDstMAC:
			b = append(b, k.TunnelDstMAC[:]...)
		case flow.TunnelSrcHost:
			b = appendAddr(b, k.TunnelSrcIP)
		case flow.TunnelDstHost:
			b = appendAddr(b, k.TunnelDstIP)
		case flow.TunnelProto:
			b = append(b, k.TunnelProto)
		case flow.TunnelTOS:
			b = append(b, k.TunnelTOS)
		case flow.TunnelSrcPort:
			b = binary.BigEndian.AppendUint16(b, k.TunnelSrcPort)
		case flow.TunnelDstPort:
			b = binary.BigEndian.AppendUint16(b, k.TunnelDstPort)
		case flow.VXLAN:
			b = binary.BigEndian.AppendUint32(b, k.VXLAN)
		case flow.TimestampStart:
			b = binary.BigEndian.AppendUint64(b, uint64(k.TimestampStart))
		case flow.TimestampEnd:
			b = binary.BigEndian.AppendUint64(b, uint64(k.TimestampEnd))
		case flow.TimestampArrival:
			b = binary.BigEndian.AppendUint64(b, uint64(k.TimestampArrival))
		case flow.ExportProtoSeqno:
			b = binary.BigEndian.AppendUint32(b, k.ExportProtoSeqno)
		case flow.ExportProtoVersion:
			b = binary.BigEndian.AppendUint16(b, k.ExportProtoVersion)
		case flow.ExportProtoSysID:
			b = binary.BigEndian.AppendUint32(b, k.ExportProtoSysID)
		case flow.TimestampExport:
			b = binary.BigEndian.AppendUint64(b, uint64(k.TimestampExport))
		}
	}
	return b
}

// addr reads an address written by appendAddr.
func addr(b []byte) (netip.Addr, []byte) {
	switch b[0] {
	case 4:
		return netip.AddrFrom4([4]byte(b[1:5])), b[5:]
	case 6:
		return netip.AddrFrom16([16]byte(b[1:17])), b[17:]
	default:
		return netip.Addr{}, b[1:]
	}
}

// decode reads a key written by encode into k, which must be zero, and
// returns the bin.
func (c *Cache) decode(b []byte, k *flow.Key) (bin int64) {
	be := binary.BigEndian
	if c.slot > 0 {
		bin = int64(be.Uint64(b))
		b = b[8:]
	}
	for _, p := range c.prims {
		switch p {
		case flow.SrcMAC:
			k.SrcMAC, b = [6]byte(b), b[6:]
		case flow.DstMAC:
			k.DstMAC, b = [6]byte(b), b[6:]
		case flow.VLAN:
			k.VLAN, b = be.Uint16(b), b[2:]
		case flow.CoS:
			k.CoS, b = b[0], b[1:]
		case flow.EType:
			k.EType, b = be.Uint16(b), b[2:]
		case flow.SrcAS:
			k.SrcAS, b = be.Uint32(b), b[4:]
		case flow.DstAS:
			k.DstAS, b = be.Uint32(b), b[4:]
		case flow.PeerSrcAS:
			k.PeerSrcAS, b = be.Uint32(b), b[4:]
		case flow.PeerDstAS:
			k.PeerDstAS, b = be.Uint32(b), b[4:]
		case flow.PeerSrcIP:
			k.PeerSrcIP, b = addr(b)
		case flow.PeerDstIP:
			k.PeerDstIP, b = addr(b)
		case flow.InIface:
			k.InIface, b = be.Uint32(b), b[4:]
		case flow.OutIface:
			k.OutIface, b = be.Uint32(b), b[4:]
		case flow.SrcHost:
			k.SrcIP, b = addr(b)
		case flow.SrcNet:
			k.SrcNet, b = addr(b)
		case flow.DstHost:
			k.DstIP, b = addr(b)
		case flow.DstNet:
			k.DstNet, b = addr(b)
		case flow.SrcMask:
			k.SrcMask, b = b[0], b[1:]
		case flow.DstMask:
			k.DstMask, b = b[0], b[1:]
		case flow.SrcPort:
			k.SrcPort, b = be.Uint16(b), b[2:]
		case flow.DstPort:
			k.DstPort, b = be.Uint16(b), b[2:]
		case flow.Proto:
			k.Proto, b = b[0], b[1:]
		case flow.TOS:
			k.TOS, b = b[0], b[1:]
		case flow.SamplingRate:
			k.SamplingRate, b = be.Uint32(b), b[4:]
		case flow.MPLSLabelTop:
			k.MPLSLabelTop, b = be.Uint32(b), b[4:]
		case flow.MPLSLabelBottom:
			k.MPLSLabelBottom, b = be.Uint32(b), b[4:]
		case flow.MPLSStackDepth:
			k.MPLSStackDepth, b = b[0], b[1:]
		case flow.TunnelSrcMAC:
			k.TunnelSrcMAC, b = [6]byte(b), b[6:]
		case flow.TunnelDstMAC:
			k.TunnelDstMAC, b = [6]byte(b), b[6:]
		case flow.TunnelSrcHost:
			k.TunnelSrcIP, b = addr(b)
		case flow.TunnelDstHost:
			k.TunnelDstIP, b = addr(b)
		case flow.TunnelProto:
			k.TunnelProto, b = b[0], b[1:]
		case flow.TunnelTOS:
			k.TunnelTOS, b = b[0], b[1:]
		case flow.TunnelSrcPort:
			k.TunnelSrcPort, b = be.Uint16(b), b[2:]
		case flow.TunnelDstPort:
			k.TunnelDstPort, b = be.Uint16(b), b[2:]
		case flow.VXLAN:
			k.VXLAN, b = be.Uint32(b), b[4:]
		case flow.TimestampStart:
			k.TimestampStart, b = int64(be.Uint64(b)), b[8:]
		case flow.TimestampEnd:
			k.TimestampEnd, b = int64(be.Uint64(b)), b[8:]
		case flow.TimestampArrival:
			k.TimestampArrival, b = int64(be.Uint64(b)), b[8:]
		case flow.ExportProtoSeqno:
			k.ExportProtoSeqno, b = be.Uint32(b), b[4:]
		case flow.ExportProtoVersion:
			k.ExportProtoVersion, b = be.Uint16(b), b[2:]
		case flow.ExportProtoSysID:
			k.ExportProtoSysID, b = be.Uint32(b), b[4:]
		case flow.TimestampExport:
			k.TimestampExport, b = int64(be.Uint64(b)), b[8:]
		}
	}
	return bin
}
