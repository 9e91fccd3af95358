package netflow

import (
	"encoding/binary"
	"net/netip"

	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// Information elements (IANA IPFIX numbers; NetFlow v9 uses the same up to
// 127) that nfacctd reads from flow and option records.
const (
	ieOctetDeltaCount             = 1
	iePacketDeltaCount            = 2
	ieDeltaFlowCount              = 3
	ieProtocol                    = 4
	ieTOS                         = 5
	ieTCPFlags                    = 6
	ieSrcPort                     = 7
	ieSrcIPv4                     = 8
	ieSrcMaskIPv4                 = 9
	ieInIface                     = 10
	ieDstPort                     = 11
	ieDstIPv4                     = 12
	ieDstMaskIPv4                 = 13
	ieOutIface                    = 14
	ieIPNextHopIPv4               = 15
	ieSrcAS                       = 16
	ieDstAS                       = 17
	ieBGPNextHopIPv4              = 18
	ieLastSwitched                = 21
	ieFirstSwitched               = 22
	iePostOctetDeltaCount         = 23
	iePostPacketDeltaCount        = 24
	ieSrcIPv6                     = 27
	ieDstIPv6                     = 28
	ieSrcMaskIPv6                 = 29
	ieDstMaskIPv6                 = 30
	ieSamplingInterval            = 34
	ieSrcPrefixIPv4               = 44
	ieDstPrefixIPv4               = 45
	ieMPLSTopLabelIPv4            = 47
	ieSamplerID                   = 48
	ieSamplerRandomInterval       = 50
	ieSrcMAC                      = 56
	iePostDstMAC                  = 57
	ieVLAN                        = 58
	iePostVLAN                    = 59
	ieIPVersion                   = 60
	ieDirection                   = 61
	ieIPNextHopIPv6               = 62
	ieBGPNextHopIPv6              = 63
	ieDstMAC                      = 80
	iePostSrcMAC                  = 81
	ieOctetTotalCount             = 85
	iePacketTotalCount            = 86
	ieBGPNextAdjacentAS           = 128
	ieBGPPrevAdjacentAS           = 129
	ieMPLSTopLabelIPv6            = 140
	ieTemplateID                  = 145
	ieFlowStartSeconds            = 150
	ieFlowEndSeconds              = 151
	ieFlowStartMilliseconds       = 152
	ieFlowEndMilliseconds         = 153
	ieFlowStartMicroseconds       = 154
	ieFlowEndMicroseconds         = 155
	ieFlowStartNanoseconds        = 156
	ieFlowEndNanoseconds          = 157
	ieFlowStartDeltaMicroseconds  = 158
	ieFlowEndDeltaMicroseconds    = 159
	ieSystemInitTimeMilliseconds  = 160
	ieDstPrefixIPv6               = 169
	ieSrcPrefixIPv6               = 170
	ieUDPSrcPort                  = 180
	ieUDPDstPort                  = 181
	ieTCPSrcPort                  = 182
	ieTCPDstPort                  = 183
	ieDot1qVLAN                   = 243
	ieDot1qPriority               = 244
	ieIngressPhysicalIface        = 252
	ieEgressPhysicalIface         = 253
	iePostDot1qVLAN               = 254
	ieEthernetType                = 256
	ieSelectorID                  = 302
	ieSamplingPacketInterval      = 305
	ieSamplingPacketSpace         = 306
	ieSamplingSize                = 309
	ieSamplingPopulation          = 310
	ieObservationTimeMilliseconds = 323
	ieLayer2OctetDeltaCount       = 352
	ieStaMAC                      = 365
	ieStaIPv4                     = 366

	scopeSystem = 1 // NetFlow v9 option scope "system" (nfacctd reads IPFIX IE 1 alike)
)

// IP version of a record, as nfacctd guesses it.
const (
	famNone  uint8 = 0 // neither: layer 2 only, or events
	famIPv4  uint8 = 4
	famIPv6  uint8 = 6
	famMixed uint8 = 255 // both address families in the template: look at the IPv4 source
)

// opKind is one assignment of a record field from one template field.
type opKind uint8

const (
	opSrcAS opKind = iota + 1
	opDstAS
	opPeerSrcAS
	opPeerDstAS
	opInIface
	opOutIface
	opTOS
	opProto
	opTCPFlags
	opSrcPort
	opDstPort
	opSrcMAC
	opDstMAC
	opCoS
	opEType
	opBytes
	opPackets
	opFlows
	opPeerDstIPv4
	opPeerDstIPv6
	opSrcIPv4
	opDstIPv4
	opSrcMask
	opDstMask
	opSrcIPv6
	opDstIPv6
)

type op struct {
	kind opKind
	fam  uint8 // famNone: always; else only for records of that family
	idx  int   // template field
}

// Flow time encodings.
const (
	timeNone    uint8 = iota
	timeUptime        // v9: ms (or s) since boot, relative to the header's sysUptime
	timeSysInit       // IPFIX: ms since boot plus systemInitTimeMilliseconds
	timeMillis
	timeMicros // dateTimeMicroseconds (NTP), or pmacct's 16-octet sec+usec
	timeNanos  // dateTimeNanoseconds (NTP)
	timeSeconds
	timeDelta // microseconds before the export time
)

type timeSpec struct {
	kind     uint8
	idx, aux int // aux: systemInitTimeMilliseconds
}

// plan is a data template compiled into the assignments nfacctd would make:
// every choice that depends only on the template (which IE wins when several
// carry the same primitive) is made once here.
type plan struct {
	ops []op

	fam       uint8
	ipVersion int // IE 60, -1 if absent
	v4Probe   int // IPv4 address deciding famMixed

	direction       int // IE 61, -1 if absent
	vlanIn, vlanOut int // with a direction
	vlan            int // without

	start, end timeSpec

	samplerID    int // 48, else 302
	interval     int // 34
	randInterval int // 50
}

// compile builds the plan of a data template, following nfacctd's handlers
// (src/pkt_handlers.c NF_*_handler): the last occurrence of a repeated IE
// wins, and the first IE present in each preference list.
func compile(version uint16, fields []goflow.Field, useIPNextHop bool) plan {
	last := make(map[uint16]int, len(fields))
	lengths := make(map[uint16]uint16, len(fields))
	for i, f := range fields {
		if f.PenProvided {
			continue // enterprise-specific: not the IANA element of that number
		}
		last[f.Type] = i
		lengths[f.Type] = f.Length
	}
	idx := func(ie uint16) int {
		if i, ok := last[ie]; ok {
			return i
		}
		return -1
	}
	firstOf := func(ies ...uint16) int {
		for _, ie := range ies {
			if i := idx(ie); i >= 0 {
				return i
			}
		}
		return -1
	}
	has := func(ie uint16) bool { return idx(ie) >= 0 }

	p := plan{ipVersion: idx(ieIPVersion), v4Probe: firstOf(ieSrcIPv4, ieDstIPv4)}
	add := func(kind opKind, fam uint8, i int) {
		if i >= 0 {
			p.ops = append(p.ops, op{kind: kind, fam: fam, idx: i})
		}
	}

	hasV4 := has(ieSrcIPv4) || has(ieDstIPv4)
	hasV6 := has(ieSrcIPv6) || has(ieDstIPv6)
	switch {
	case hasV4 && hasV6:
		p.fam = famMixed
	case hasV4 || has(ieSrcPrefixIPv4) || has(ieDstPrefixIPv4) || has(ieStaIPv4):
		p.fam = famIPv4
	case hasV6 || has(ieSrcPrefixIPv6) || has(ieDstPrefixIPv6):
		p.fam = famIPv6
	}

	add(opSrcIPv4, famIPv4, firstOf(ieSrcIPv4, ieSrcPrefixIPv4, ieStaIPv4))
	add(opDstIPv4, famIPv4, firstOf(ieDstIPv4, ieDstPrefixIPv4))
	add(opSrcMask, famIPv4, idx(ieSrcMaskIPv4))
	add(opDstMask, famIPv4, idx(ieDstMaskIPv4))
	add(opSrcIPv6, famIPv6, firstOf(ieSrcIPv6, ieSrcPrefixIPv6))
	add(opDstIPv6, famIPv6, firstOf(ieDstIPv6, ieDstPrefixIPv6))
	add(opSrcMask, famIPv6, idx(ieSrcMaskIPv6))
	add(opDstMask, famIPv6, idx(ieDstMaskIPv6))

	add(opSrcMAC, famNone, firstOf(ieSrcMAC, iePostSrcMAC, ieStaMAC))
	add(opDstMAC, famNone, firstOf(ieDstMAC, iePostDstMAC))
	add(opCoS, famNone, idx(ieDot1qPriority))
	add(opEType, famNone, idx(ieEthernetType))
	add(opSrcAS, famNone, idx(ieSrcAS))
	add(opDstAS, famNone, idx(ieDstAS))
	add(opPeerSrcAS, famNone, idx(ieBGPPrevAdjacentAS))
	add(opPeerDstAS, famNone, idx(ieBGPNextAdjacentAS))
	add(opInIface, famNone, firstOf(ieInIface, ieIngressPhysicalIface))
	add(opOutIface, famNone, firstOf(ieOutIface, ieEgressPhysicalIface))
	add(opSrcPort, famNone, firstOf(ieSrcPort, ieUDPSrcPort, ieTCPSrcPort))
	add(opDstPort, famNone, firstOf(ieDstPort, ieUDPDstPort, ieTCPDstPort))
	add(opProto, famNone, idx(ieProtocol))
	add(opTOS, famNone, idx(ieTOS))
	add(opTCPFlags, famNone, idx(ieTCPFlags))
	add(opBytes, famNone, firstOf(ieOctetDeltaCount, ieOctetTotalCount, iePostOctetDeltaCount, ieLayer2OctetDeltaCount))
	add(opPackets, famNone, firstOf(iePacketDeltaCount, iePacketTotalCount, iePostPacketDeltaCount))
	add(opFlows, famNone, idx(ieDeltaFlowCount))

	// peer_dst_ip: nfacctd takes the first of these present; an IP next hop
	// present without use_ip_next_hop ends the search empty-handed.
	switch {
	case has(ieBGPNextHopIPv4):
		add(opPeerDstIPv4, famNone, idx(ieBGPNextHopIPv4))
	case has(ieMPLSTopLabelIPv4):
		add(opPeerDstIPv4, famNone, idx(ieMPLSTopLabelIPv4))
	case has(ieIPNextHopIPv4):
		if useIPNextHop {
			add(opPeerDstIPv4, famNone, idx(ieIPNextHopIPv4))
		}
	case has(ieBGPNextHopIPv6):
		add(opPeerDstIPv6, famNone, idx(ieBGPNextHopIPv6))
	case has(ieMPLSTopLabelIPv6):
		add(opPeerDstIPv6, famNone, idx(ieMPLSTopLabelIPv6))
	case has(ieIPNextHopIPv6):
		if useIPNextHop {
			add(opPeerDstIPv6, famNone, idx(ieIPNextHopIPv6))
		}
	}

	p.direction = idx(ieDirection)
	p.vlanIn = firstOf(ieVLAN, ieDot1qVLAN)
	p.vlanOut = firstOf(iePostVLAN, iePostDot1qVLAN)
	p.vlan = firstOf(ieVLAN, iePostVLAN, ieDot1qVLAN, iePostDot1qVLAN)

	sysInit := -1
	if lengths[ieSystemInitTimeMilliseconds] == 8 {
		sysInit = idx(ieSystemInitTimeMilliseconds)
	}
	p.start = timeOf(version, idx, sysInit, ieFirstSwitched, ieFlowStartMilliseconds,
		ieFlowStartMicroseconds, ieFlowStartNanoseconds, ieObservationTimeMilliseconds,
		ieFlowStartSeconds, ieFlowStartDeltaMicroseconds)
	p.end = timeOf(version, idx, sysInit, ieLastSwitched, ieFlowEndMilliseconds,
		ieFlowEndMicroseconds, ieFlowEndNanoseconds, 0,
		ieFlowEndSeconds, ieFlowEndDeltaMicroseconds)

	p.samplerID = firstOf(ieSamplerID, ieSelectorID)
	p.interval = idx(ieSamplingInterval)
	p.randInterval = idx(ieSamplerRandomInterval)
	return p
}

// timeOf picks a flow time source in nfacctd's order (NF_time_msecs_handler),
// with the nanosecond elements, which nfacctd ignores, after the microsecond
// ones. IPFIX uptime fields count only with systemInitTimeMilliseconds, and
// stop the search without it. observation is 0 for the end time.
func timeOf(version uint16, idx func(uint16) int, sysInit int,
	uptime, millis, micros, nanos, observation, seconds, delta uint16) timeSpec {
	switch {
	case idx(uptime) >= 0 && version == versionV9:
		return timeSpec{kind: timeUptime, idx: idx(uptime)}
	case idx(uptime) >= 0:
		if sysInit >= 0 {
			return timeSpec{kind: timeSysInit, idx: idx(uptime), aux: sysInit}
		}
		return timeSpec{}
	case idx(millis) >= 0:
		return timeSpec{kind: timeMillis, idx: idx(millis)}
	case idx(micros) >= 0:
		return timeSpec{kind: timeMicros, idx: idx(micros)}
	case idx(nanos) >= 0:
		return timeSpec{kind: timeNanos, idx: idx(nanos)}
	case observation != 0 && idx(observation) >= 0:
		return timeSpec{kind: timeMillis, idx: idx(observation)}
	case idx(seconds) >= 0:
		return timeSpec{kind: timeSeconds, idx: idx(seconds)}
	case idx(delta) >= 0 && version == versionIPFIX:
		return timeSpec{kind: timeDelta, idx: idx(delta)}
	}
	return timeSpec{}
}

// header holds what records take from their datagram's header.
type header struct {
	version  uint16
	uptime   uint32 // v9 sysUptime
	secs     uint32 // export time, unix seconds
	seq      uint32
	domain   uint32 // v9 source id, IPFIX observation domain
	timeSecs bool   // nfacctd_time_secs
}

// view locates the fields of one record.
type view struct {
	rec        []byte
	offs, lens []int
}

func (v *view) field(i int) []byte { return v.rec[v.offs[i] : v.offs[i]+v.lens[i]] }

// fill sets the fields of r that a record of the template carries. r holds
// the header's fields already.
func (p *plan) fill(r *flow.Record, rv *view, h *header) {
	field := rv.field

	fam := p.fam
	if p.ipVersion >= 0 {
		if v, ok := uintBE(field(p.ipVersion)); ok && (v == 4 || v == 6) {
			fam = uint8(v)
		}
	}
	if fam == famMixed {
		fam = famIPv6
		if p.v4Probe >= 0 && !allZero(field(p.v4Probe)) {
			fam = famIPv4
		}
	}
	switch fam {
	case famIPv4:
		r.EType = 0x0800
	case famIPv6:
		r.EType = 0x86dd
	}

	for _, o := range p.ops {
		if o.fam != famNone && o.fam != fam {
			continue
		}
		b := field(o.idx)
		switch o.kind {
		case opSrcIPv4:
			r.SrcIP = addr4(b, r.SrcIP)
		case opDstIPv4:
			r.DstIP = addr4(b, r.DstIP)
		case opSrcIPv6:
			r.SrcIP = addr16(b, r.SrcIP)
		case opDstIPv6:
			r.DstIP = addr16(b, r.DstIP)
		case opPeerDstIPv4:
			r.PeerDstIP = addr4(b, r.PeerDstIP)
		case opPeerDstIPv6:
			r.PeerDstIP = addr16(b, r.PeerDstIP)
		case opSrcMAC:
			if len(b) == 6 {
				r.SrcMAC = [6]byte(b)
			}
		case opDstMAC:
			if len(b) == 6 {
				r.DstMAC = [6]byte(b)
			}
		default:
			v, ok := uintBE(b)
			if !ok {
				continue
			}
			switch o.kind {
			case opSrcMask:
				r.SrcMask = uint8(v)
			case opDstMask:
				r.DstMask = uint8(v)
			case opSrcAS:
				r.SrcAS = uint32(v)
			case opDstAS:
				r.DstAS = uint32(v)
			case opPeerSrcAS:
				r.PeerSrcAS = uint32(v)
			case opPeerDstAS:
				r.PeerDstAS = uint32(v)
			case opInIface:
				r.InIface = uint32(v)
			case opOutIface:
				r.OutIface = uint32(v)
			case opTOS:
				r.TOS = uint8(v)
			case opProto:
				r.Proto = uint8(v)
			case opTCPFlags:
				r.TCPFlags = uint8(v) // a 2-octet field: the low octet, as nfacctd
			case opSrcPort:
				r.SrcPort = uint16(v)
			case opDstPort:
				r.DstPort = uint16(v)
			case opCoS:
				r.CoS = uint8(v)
			case opEType:
				r.EType = uint16(v)
			case opBytes:
				r.Bytes = v
			case opPackets:
				r.Packets = v
			case opFlows:
				if v != 0 {
					r.Flows = v
				}
			}
		}
	}

	vlan := -1
	if p.direction >= 0 {
		if d, ok := uintBE(field(p.direction)); ok {
			switch d {
			case 0:
				vlan = p.vlanIn
			case 1:
				vlan = p.vlanOut
			}
		}
	} else {
		vlan = p.vlan
	}
	if vlan >= 0 {
		if v, ok := uintBE(field(vlan)); ok {
			r.VLAN = uint16(v)
		}
	}

	if p.start.kind != timeNone {
		r.TimestampStart = p.start.micros(rv, h)
	}
	if r.TimestampStart == 0 {
		r.TimestampStart = int64(h.secs) * 1e6 // nfacctd: the export time
	}
	if p.end.kind != timeNone {
		r.TimestampEnd = p.end.micros(rv, h)
	}
}

// ntpEpoch is 1900-01-01 in unix seconds.
const ntpEpoch = 2208988800

// micros returns a flow time in unix microseconds, 0 if unreadable.
func (t timeSpec) micros(v *view, h *header) int64 {
	b := v.field(t.idx)
	switch t.kind {
	case timeMicros, timeNanos:
		switch {
		case len(b) == 8:
			sec := int64(binary.BigEndian.Uint32(b)) - ntpEpoch
			frac := uint64(binary.BigEndian.Uint32(b[4:]))
			if t.kind == timeMicros {
				frac &^= 0x7ff // RFC 7011 6.1.9: the low 11 bits are not part of the value
			}
			return sec*1e6 + int64(frac*1e6>>32)
		case len(b) == 16 && t.kind == timeMicros: // pmacct's nfprobe: seconds, microseconds
			return int64(binary.BigEndian.Uint64(b))*1e6 + int64(binary.BigEndian.Uint64(b[8:]))
		}
		return 0
	}
	n, ok := uintBE(b)
	if !ok {
		return 0
	}
	switch t.kind {
	case timeUptime:
		return uptimeTime(h.secs, h.uptime, uint32(n), h.timeSecs)
	case timeSysInit:
		init, ok := uintBE(v.field(t.aux))
		if !ok {
			return 0
		}
		return int64(init+n) * 1e3
	case timeMillis:
		return int64(n) * 1e3
	case timeSeconds:
		return int64(n) * 1e6
	case timeDelta:
		return int64(h.secs)*1e6 - int64(n)
	}
	return 0
}

// uintBE reads an unsigned big-endian integer of 1 to 8 octets (IPFIX
// reduced-size encoding included).
func uintBE(b []byte) (uint64, bool) {
	switch len(b) {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), true
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), true
	case 8:
		return binary.BigEndian.Uint64(b), true
	case 3, 5, 6, 7:
		var v uint64
		for _, c := range b {
			v = v<<8 | uint64(c)
		}
		return v, true
	}
	return 0, false
}

func addr4(b []byte, old netip.Addr) netip.Addr {
	if len(b) != 4 {
		return old
	}
	return netip.AddrFrom4([4]byte(b))
}

func addr16(b []byte, old netip.Addr) netip.Addr {
	if len(b) != 16 {
		return old
	}
	return netip.AddrFrom16([16]byte(b))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
