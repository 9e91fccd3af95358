// Package sflow turns sFlow v5 datagrams into flow records, with what sfacctd
// takes from each flow sample: the sampled header parsed from L2 to L4, the
// extended switch, router and gateway data, the agent as the exporter.
//
// goflow2's decoder reads the datagram structure; the sampled headers are
// parsed here with gopacket's DecodingLayerParser, without allocating.
package sflow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/exporter"
	"github.com/flowdex/flowdex/collector/packet"
)

// Configuration of a decoder.
type Configuration struct {
	// Sampling overrides the rate the agents report, for the agents in a
	// prefix (the first match wins).
	Sampling exporter.SamplingOverrides `toml:"sampling,omitempty"`
}

// DefaultConfiguration is a decoder that believes the agents.
func DefaultConfiguration() Configuration { return Configuration{} }

// Stats counts what the decoder saw.
type Stats struct {
	Datagrams       uint64 // decoded, whole or in part
	Malformed       uint64 // datagrams with an error (what came before it was used)
	FlowSamples     uint64 // flow and expanded flow samples
	CounterSamples  uint64 // decoded and not used: flowdex accounts traffic
	DropSamples     uint64 // sFlow drop notifications, not traffic
	Records         uint64 // records emitted, one per flow sample
	HeaderTruncated uint64 // sampled headers cut before L4 (the record keeps what was read)
	HeaderUnknown   uint64 // sampled headers of a protocol other than Ethernet, IPv4, IPv6
	CustomCut       uint64 // custom primitives' values read from sampled headers, longer than a record keeps: cut
}

// Decoder decodes sFlow v5 datagrams. It is safe for concurrent use.
type Decoder struct {
	cfg     Configuration
	logger  *slog.Logger
	parsers sync.Pool // *packet.Parser

	datagrams, malformed, flowSamples, counterSamples, dropSamples atomic.Uint64
	records, headerTruncated, headerUnknown, customCut             atomic.Uint64
	pointers                                                       *packet.Pointers // custom primitives read from sampled headers; nil: none

	poolsMu sync.Mutex
	pools   map[poolKey]poolState // the last sample of each data source
}

// poolKey is a data source of an agent: sfacctd's key of sample pools.
type poolKey struct {
	agent    netip.Addr
	subAgent uint32
	source   uint32 // ds_class<<24 | ds_index
}

type poolState struct{ seq, pool uint32 }

// maxPools bounds the data sources remembered; past it they are forgotten
// all at once (each then starts anew: its next sample uses its rate).
const maxPools = 65536

// resetBoundary is sfacctd's XFLOW_RESET_BOUNDARY: a data source whose
// sample sequence jumps further starts anew.
const resetBoundary = 50

// renorm returns what sfacctd multiplies a sample's counters by when it
// renormalizes: the growth of the data source's sample pool over the
// growth of its sample sequence since its last sample, when both grew;
// else the sampling rate (the data source's state then starts anew from
// this sample when it is its first, or when its sequence jumped by more
// than resetBoundary). sfacctd would multiply by 0 when the pool grew less
// than the sequence; flowdex takes the rate.
func (d *Decoder) renorm(k poolKey, seq, pool, rate uint32) uint32 {
	d.poolsMu.Lock()
	defer d.poolsMu.Unlock()
	if d.pools == nil || len(d.pools) >= maxPools {
		d.pools = map[poolKey]poolState{}
	}
	st, ok := d.pools[k]
	if ok && seq > st.seq && pool > st.pool {
		d.pools[k] = poolState{seq, pool}
		if m := (pool - st.pool) / (seq - st.seq); m > 0 {
			return m
		}
		return rate
	}
	if jump := int64(seq) - int64(st.seq); !ok || jump > resetBoundary || jump < -resetBoundary {
		d.pools[k] = poolState{seq, pool}
	}
	return rate
}

// New returns a decoder.
func New(cfg Configuration, logger *slog.Logger) (*Decoder, error) {
	if err := cfg.Sampling.Validate(); err != nil {
		return nil, fmt.Errorf("sflow: %w", err)
	}
	d := &Decoder{cfg: cfg, logger: logger, pointers: packet.NewPointers()}
	d.parsers.New = func() any {
		p := packet.NewParser()
		d.pointers.Track(p)
		return p
	}
	return d, nil
}

// Stats returns the counters.
func (d *Decoder) Stats() Stats {
	return Stats{
		Datagrams: d.datagrams.Load(), Malformed: d.malformed.Load(), FlowSamples: d.flowSamples.Load(),
		CounterSamples: d.counterSamples.Load(), DropSamples: d.dropSamples.Load(), Records: d.records.Load(),
		HeaderTruncated: d.headerTruncated.Load(), HeaderUnknown: d.headerUnknown.Load(), CustomCut: d.customCut.Load(),
	}
}

// errVersion is returned for a datagram that is not sFlow v5.
var errVersion = errors.New("not an sFlow v5 datagram")

// Decode decodes one datagram received from source at received and calls emit
// for every flow sample; emit's record is reused after it returns. A malformed
// datagram gives an error, after the samples before the damage were emitted.
func (d *Decoder) Decode(payload []byte, source netip.Addr, received time.Time, emit func(*flow.Record)) error {
	if len(payload) < 4 || payload[0] != 0 || payload[1] != 0 || payload[2] != 0 || payload[3] != 5 {
		d.malformed.Add(1)
		return errVersion
	}
	if err := checkRecordCounts(payload); err != nil {
		d.malformed.Add(1)
		return fmt.Errorf("sflow from %s: %w", source, err)
	}
	var pkt sflow.Packet
	err := sflow.DecodeMessageVersion(bytes.NewBuffer(payload), &pkt)
	d.datagrams.Add(1)
	if err != nil {
		d.malformed.Add(1)
		err = fmt.Errorf("sflow from %s: %w", source, err)
	}
	if err == nil {
		// goflow2 stops quietly at a sample longer than what is left
		n := 0
		for _, s := range pkt.Samples {
			if s != nil {
				n++
			}
		}
		if n < len(pkt.Samples) {
			d.malformed.Add(1)
			err = fmt.Errorf("sflow from %s: datagram cut short: %d of %d samples", source, n, len(pkt.Samples))
		}
	}
	agent, _ := netip.AddrFromSlice(pkt.AgentIP)
	agent = agent.Unmap()
	hp := d.parsers.Get().(*packet.Parser)
	defer d.parsers.Put(hp)
	var r flow.Record
	for _, s := range pkt.Samples {
		var rate, in, out, pool uint32
		var records []sflow.FlowRecord
		var h sflow.SampleHeader
		switch s := s.(type) {
		case sflow.FlowSample:
			rate, in, out, records, pool, h = s.SamplingRate, s.Input, s.Output, s.Records, s.SamplePool, s.Header
		case sflow.ExpandedFlowSample:
			rate, in, out, records, pool, h = s.SamplingRate, s.InputIfValue, s.OutputIfValue, s.Records, s.SamplePool, s.Header
		case sflow.CounterSample:
			d.counterSamples.Add(1)
			continue
		case sflow.DropSample:
			d.dropSamples.Add(1)
			continue
		default:
			continue // nil: a sample after the damage
		}
		d.flowSamples.Add(1)
		r = flow.Record{}
		r.PeerSrcIP = agent
		r.ExportProtoSysID = pkt.SubAgentId
		r.ExportProtoSeqno = pkt.SequenceNumber
		r.ExportProtoVersion = 5
		r.TimestampArrival = received.UnixMicro()
		// the whole 32-bit value, format bits included, as sfacctd reports it
		r.InIface, r.OutIface = in, out
		r.SamplingRate = d.rate(agent, rate)
		if d.cfg.Sampling.Rate(agent) == 0 {
			// a configured rate is used as it is, as sfacctd's sampling_map
			source := h.SourceIdType<<24 | h.SourceIdValue&0xffffff
			r.Renorm = d.renorm(poolKey{agent, pkt.SubAgentId, source}, h.SampleSequenceNumber, pool, rate)
		}
		r.Packets = 1
		d.fill(&r, records, hp)
		d.records.Add(1)
		emit(&r)
	}
	return err
}

// rate is the sampling rate of a sample from agent: the configuration's, else
// the sample's own (meanSkipCount).
func (d *Decoder) rate(agent netip.Addr, sampled uint32) uint32 {
	if r := d.cfg.Sampling.Rate(agent); r != 0 {
		return r
	}
	return sampled
}

// penPmacct is pmacct's private enterprise number.
const penPmacct = 43874

// switchData is the VLAN and priority information of a sample, in sfacctd's
// terms: the extended switch record sets them, a sampled 802.1Q tag only when
// nothing set them before.
type switchData struct{ inVLAN, outVLAN, inPrio, outPrio uint32 }

// fill sets r from a flow sample's records, in their order.
func (d *Decoder) fill(r *flow.Record, records []sflow.FlowRecord, hp *packet.Parser) {
	var sw switchData
	var bgpNextHop, nextHop netip.Addr
	for _, rec := range records {
		switch v := rec.Data.(type) {
		case sflow.SampledHeader:
			r.Bytes = uint64(v.FrameLength)
			info := hp.Parse(r, headerLayer(v.Protocol), v.HeaderData)
			if cut := d.pointers.Fill(r, hp); cut > 0 {
				d.customCut.Add(uint64(cut))
			}
			switch info.Result {
			case packet.Truncated:
				d.headerTruncated.Add(1)
			case packet.Unknown:
				d.headerUnknown.Add(1)
			}
			// sfacctd: a sampled tag counts when nothing set VLAN and priority before
			if info.Tagged {
				if sw.inVLAN == 0 && sw.outVLAN == 0 {
					sw.inVLAN = uint32(info.VLAN)
				}
				if sw.inPrio == 0 && sw.outPrio == 0 {
					sw.inPrio = uint32(info.Priority)
				}
			}
		case sflow.RawRecord:
			// pmacct's sfprobe's tags (its enterprise, format 2): two
			// 64-bit numbers, which the map's win over, as in sfacctd
			if rec.Header.DataFormat == penPmacct<<12|2 && len(v.Data) >= 16 {
				r.Tag, r.Tag2 = binary.BigEndian.Uint64(v.Data), binary.BigEndian.Uint64(v.Data[8:])
				r.MapFlags |= flow.MapProbeTag | flow.MapProbeTag2 | flow.MapProbeYields
			}
		case sflow.SampledEthernet:
			copy(r.SrcMAC[:], v.SrcMac)
			copy(r.DstMAC[:], v.DstMac)
			r.EType = uint16(v.EthType)
			if r.Bytes == 0 {
				r.Bytes = uint64(v.Length)
			}
		case sflow.SampledIPv4:
			d.sampledIP(r, &v.SampledIPBase)
			r.TOS = uint8(v.Tos)
			if r.EType == 0 {
				r.EType = 0x0800
			}
		case sflow.SampledIPv6:
			d.sampledIP(r, &v.SampledIPBase)
			r.TOS = uint8(v.Priority)
			if r.EType == 0 {
				r.EType = 0x86dd
			}
		case sflow.ExtendedSwitch:
			sw = switchData{inVLAN: v.SrcVlan, outVLAN: v.DstVlan, inPrio: v.SrcPriority, outPrio: v.DstPriority}
		case sflow.ExtendedRouter:
			nextHop = addr(v.NextHop)
			r.SrcMask, r.DstMask = uint8(v.SrcMaskLen), uint8(v.DstMaskLen)
		case sflow.ExtendedGateway:
			bgpNextHop = addr(v.NextHop)
			r.SrcAS = v.SrcAS
			r.PeerSrcAS = v.SrcPeerAS
			if n := len(v.ASPath); n > 0 {
				r.PeerDstAS = v.ASPath[0] // the first AS of the path is the peer
				r.DstAS = v.ASPath[n-1]   // and the last the destination
			}
		}
	}
	// sfacctd: in VLAN/priority, else out
	r.VLAN = uint16(sw.inVLAN)
	if r.VLAN == 0 {
		r.VLAN = uint16(sw.outVLAN)
	}
	r.CoS = uint8(sw.inPrio)
	if r.CoS == 0 {
		r.CoS = uint8(sw.outPrio)
	}
	// peer_dst_ip: the BGP next hop, else the IP next hop
	r.PeerDstIP = bgpNextHop
	r.NextHop = nextHop
	if !r.PeerDstIP.IsValid() {
		r.PeerDstIP = nextHop
	}
}

// sampledIP fills r from a decoded IPv4 or IPv6 record, used when an agent
// sends those instead of a header.
func (d *Decoder) sampledIP(r *flow.Record, v *sflow.SampledIPBase) {
	r.SrcIP, r.DstIP = addr(v.SrcIP), addr(v.DstIP)
	r.Proto = uint8(v.Protocol)
	if r.Proto == 6 || r.Proto == 17 {
		r.SrcPort, r.DstPort = uint16(v.SrcPort), uint16(v.DstPort)
	}
	if r.Proto == 6 {
		r.TCPFlags = uint8(v.TcpFlags)
	}
	if r.Bytes == 0 {
		r.Bytes = uint64(v.Length)
	}
}

func addr(b []byte) netip.Addr {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// sFlow header protocols (sFlow v5, sampled_header).
const (
	protoEthernet = 1
	protoIPv4     = 11
	protoIPv6     = 12
)

// headerLayer is the first layer of a sampled header of the given protocol.
func headerLayer(protocol uint32) gopacket.LayerType {
	switch protocol {
	case protoEthernet:
		return layers.LayerTypeEthernet
	case protoIPv4:
		return layers.LayerTypeIPv4
	case protoIPv6:
		return layers.LayerTypeIPv6
	}
	return gopacket.LayerTypeZero
}

// expandedFlowSample is sFlow's sample format 3.
const expandedFlowSample = 3

// checkRecordCounts refuses a datagram whose expanded flow sample claims more
// records than its length can hold. goflow2 v2.2.6 caps the record count of
// every sample format but that one, and makes a slice of the claimed count: a
// single crafted datagram would have it allocate gigabytes (found by
// FuzzDecodeSFlow).
func checkRecordCounts(p []byte) error {
	u32 := func(off int) (uint32, bool) {
		if off < 0 || off+4 > len(p) {
			return 0, false
		}
		return binary.BigEndian.Uint32(p[off:]), true
	}
	off := 8 // version, agent address type
	switch t, _ := u32(4); t {
	case 1:
		off += 4
	case 2:
		off += 16
	default:
		return nil // goflow2 reports it
	}
	off += 12 // sub-agent, sequence, uptime
	n, ok := u32(off)
	if !ok {
		return nil
	}
	off += 4
	for i := uint32(0); i < n; i++ {
		format, ok1 := u32(off)
		length, ok2 := u32(off + 4)
		if !ok1 || !ok2 || uint64(length) > uint64(len(p)-off-8) {
			return nil // a short datagram: goflow2 stops there
		}
		body := off + 8
		if format == expandedFlowSample {
			// sequence, source type and index, rate, pool, drops, in and out
			// (format and value each), then the record count
			if count, ok := u32(body + 40); ok && uint64(count)*8 > uint64(length) {
				return fmt.Errorf("expanded flow sample %d claims %d records in %d bytes", i, count, length)
			}
		}
		off = body + int(length)
	}
	return nil
}
