package netflow

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowdex/flowdex/aggregate/flow"
)

const (
	v5HeaderLen = 24
	v5RecordLen = 48
)

// decodeV5 decodes a NetFlow v5 datagram. The format is fixed, so records
// are read at their offsets; goflow2's netflowlegacy decoder reads the same
// fields (the tests compare both on every fixture) but allocates per field
// and sizes its record slice from the untrusted header count.
func (d *Decoder) decodeV5(st *state, e *exporterState, p []byte, received time.Time, emit func(*flow.Record)) error {
	if len(p) < v5HeaderLen {
		return d.malformed(e, errShort)
	}
	count := int(binary.BigEndian.Uint16(p[2:]))
	uptime := binary.BigEndian.Uint32(p[4:])
	secs := binary.BigEndian.Uint32(p[8:])
	nsecs := int64(binary.BigEndian.Uint32(p[12:]))
	export := int64(secs)*1e6 + nsecs/1e3

	base := &st.base
	*base = flow.Record{}
	base.PeerSrcIP = e.addr
	base.EType = 0x0800
	base.TimestampArrival = received.UnixMicro()
	base.TimestampExport = export
	base.ExportProtoSeqno = binary.BigEndian.Uint32(p[16:])
	base.ExportProtoSysID = uint32(p[21]) // engine id only, as nfacctd
	base.EngineType = p[20]
	base.ExportProtoVersion = versionV5
	base.Flows = 1
	if e.override != 0 {
		base.SamplingRate = e.override
	} else {
		base.SamplingRate = uint32(binary.BigEndian.Uint16(p[22:]) & 0x3fff)
	}

	var err error
	if avail := (len(p) - v5HeaderLen) / v5RecordLen; avail < count {
		err = d.malformed(e, fmt.Errorf("%w: header count %d, room for %d records", errTruncated, count, avail))
		count = avail
	}
	for i := range count {
		b := p[v5HeaderLen+i*v5RecordLen:][:v5RecordLen]
		r := st.reset(false)
		r.SrcIP = netip.AddrFrom4([4]byte(b[0:4]))
		r.DstIP = netip.AddrFrom4([4]byte(b[4:8]))
		r.NextHop = netip.AddrFrom4([4]byte(b[8:12]))
		if d.cfg.UseIPNextHop {
			r.PeerDstIP = r.NextHop
		}
		r.InIface = uint32(binary.BigEndian.Uint16(b[12:]))
		r.OutIface = uint32(binary.BigEndian.Uint16(b[14:]))
		r.Packets = uint64(binary.BigEndian.Uint32(b[16:]))
		r.Bytes = uint64(binary.BigEndian.Uint32(b[20:]))
		r.TimestampStart = uptimeTime(secs, uptime, binary.BigEndian.Uint32(b[24:]), d.cfg.TimeSecs)
		r.TimestampEnd = uptimeTime(secs, uptime, binary.BigEndian.Uint32(b[28:]), d.cfg.TimeSecs)
		r.Proto = b[38]
		r.TOS = b[39]
		// nfacctd keeps the source port of TCP and UDP only, the destination
		// port also for ICMP (type*256+code there), and TCP flags for TCP.
		switch r.Proto {
		case protoTCP:
			r.TCPFlags = b[37]
			fallthrough
		case protoUDP:
			r.SrcPort = binary.BigEndian.Uint16(b[32:])
			r.DstPort = binary.BigEndian.Uint16(b[34:])
		case protoICMP, protoICMPv6:
			r.DstPort = binary.BigEndian.Uint16(b[34:])
		}
		r.SrcAS = uint32(binary.BigEndian.Uint16(b[40:]))
		r.DstAS = uint32(binary.BigEndian.Uint16(b[42:]))
		r.SrcMask = b[44]
		r.DstMask = b[45]
		emit(r)
	}
	d.counters.records.Add(uint64(count))
	return err
}

const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// uptimeTime is the time of a flow stamped with the exporter's uptime (v5 and
// v9 First/Last): the header's export seconds minus how long before the header
// that was, in whole seconds, as nfacctd computes it. The difference is taken
// modulo 2^32 (the uptime counter wraps every 49.7 days) and read as signed, so
// a flow stamped just after the header was made is not taken for one 49 days
// old, as nfacctd takes it.
func uptimeTime(exportSecs, uptime, stamp uint32, timeSecs bool) int64 {
	ago := int64(int32(uptime - stamp))
	if !timeSecs {
		ago /= 1000 // milliseconds, truncated toward zero as nfacctd does
	}
	return (int64(exportSecs) - int64(ago)) * 1e6
}
