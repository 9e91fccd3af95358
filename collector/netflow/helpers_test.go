package netflow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	goflow "github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/setting"
)

// sharedTests is where pmacct's regression captures live: /work/shared is a
// sibling of the repository.
const sharedTests = "../../../shared/pmacct-tests"

// datagram is one UDP payload of a capture.
type datagram struct {
	payload  []byte
	exporter netip.Addr
	received time.Time
}

// readPcap returns the UDP payloads of a capture, with their source address.
// A missing file skips the test, or fails it when CI=true.
func readPcap(t testing.TB, path string) []datagram {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing", path)
		}
		t.Skipf("%s is missing", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []datagram
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if udp == nil {
			continue
		}
		var src netip.Addr
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			src, _ = netip.AddrFromSlice(ip.SrcIP)
		case *layers.IPv6:
			src, _ = netip.AddrFromSlice(ip.SrcIP)
		}
		out = append(out, datagram{payload: udp.Payload, exporter: src.Unmap(), received: ci.Timestamp})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no UDP datagram", path)
	}
	return out
}

// captures lists the captures the golden tests run on.
func captures(t testing.TB) []string {
	t.Helper()
	shared, err := filepath.Glob(filepath.Join(sharedTests, "*", "traffic-*.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no capture under %s", sharedTests)
		}
		t.Logf("no capture under %s: pmacct's cases skipped", sharedTests)
	}
	own, err := filepath.Glob("testdata/*.pcap")
	if err != nil || len(own) == 0 {
		t.Fatalf("no capture under testdata: %v", err)
	}
	return append(shared, own...)
}

func mustNew(t testing.TB, cfg Configuration) *Decoder {
	t.Helper()
	d, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// decodeAll decodes datagrams and returns copies of the records emitted.
func decodeAll(d *Decoder, dgs []datagram) ([]flow.Record, []error) {
	var recs []flow.Record
	var errs []error
	for _, dg := range dgs {
		err := d.Decode(dg.payload, dg.exporter, dg.received, func(r *flow.Record) { recs = append(recs, *r) })
		if err != nil {
			errs = append(errs, err)
		}
	}
	return recs, errs
}

// reference decodes datagrams with goflow2's generic decoders (netflowlegacy,
// and DecodeMessageVersion on the decoder's template store seen through
// goflow2's interface), and turns goflow2's values into records by looking
// elements up by number, written apart from the compiled plans. It is what
// the compiled path is checked against.
type reference struct {
	d        *Decoder
	samplers map[refSampler]uint32
}

type refSampler struct {
	exporter netip.Addr
	domain   uint32
	global   bool
	id       uint64
}

func newReference(t testing.TB, cfg Configuration) *reference {
	return &reference{d: mustNew(t, cfg), samplers: map[refSampler]uint32{}}
}

// refHeader is what a record takes from its datagram.
type refHeader struct {
	exporter                  netip.Addr
	received                  time.Time
	version                   uint16
	uptime, secs, seq, domain uint32
	exportMicros              int64
	flowset                   uint16 // the data set's template id
}

func (ref *reference) decode(dg datagram) ([]flow.Record, error) {
	if len(dg.payload) >= 2 && binary.BigEndian.Uint16(dg.payload) == 5 {
		return ref.decodeV5(dg)
	}
	var v9 goflow.NFv9Packet
	var ipfix goflow.IPFIXPacket
	ts := ref.d.templateSystem(dg.exporter)
	err := goflow.DecodeMessageVersion(bytes.NewBuffer(dg.payload), ts, &v9, &ipfix)
	if err != nil && !errors.Is(err, goflow.ErrorTemplateNotFound) {
		return nil, err
	}
	h := refHeader{exporter: dg.exporter.Unmap(), received: dg.received}
	var sets []any
	if v9.Version == 9 {
		h.version, h.uptime, h.secs, h.seq, h.domain = 9, v9.SystemUptime, v9.UnixSeconds, v9.SequenceNumber, v9.SourceId
		sets = v9.FlowSets
	} else {
		h.version, h.secs, h.seq, h.domain = 10, ipfix.ExportTime, ipfix.SequenceNumber, ipfix.ObservationDomainId
		sets = ipfix.FlowSets
	}
	h.exportMicros = int64(h.secs) * 1e6
	var out []flow.Record
	for _, s := range sets {
		switch s := s.(type) {
		case goflow.OptionsDataFlowSet:
			for _, r := range s.Records {
				ref.option(h, r)
			}
		case goflow.DataFlowSet:
			h.flowset = s.Id
			for _, r := range s.Records {
				out = append(out, ref.record(h, r.Values))
			}
		}
	}
	return out, nil
}

func (ref *reference) decodeV5(dg datagram) ([]flow.Record, error) {
	var p netflowlegacy.PacketNetFlowV5
	if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(dg.payload), &p); err != nil {
		return nil, err
	}
	cfg := ref.d.cfg
	export := int64(p.UnixSecs)*1e6 + int64(p.UnixNSecs)/1e3
	// nfacctd: whole seconds, the uptime difference modulo 2^32
	ago := func(stamp uint32) int64 {
		d := int64(int32(p.SysUptime - stamp))
		if !cfg.TimeSecs {
			d /= 1000
		}
		return d
	}
	var out []flow.Record
	for _, v := range p.Records {
		r := flow.Record{Flows: 1}
		r.PeerSrcIP = dg.exporter
		r.EType = 0x800
		r.TimestampArrival = dg.received.UnixMicro()
		r.TimestampExport = export
		r.ExportProtoSeqno = p.FlowSequence
		r.ExportProtoSysID = uint32(p.EngineId)
		r.ExportProtoVersion = 5
		r.SamplingRate = uint32(p.SamplingInterval & 0x3fff)
		if o := ref.d.cfg.Sampling.Rate(dg.exporter); o != 0 {
			r.SamplingRate = o
		}
		r.SrcIP = v4(uint32(v.SrcAddr))
		r.DstIP = v4(uint32(v.DstAddr))
		r.NextHop, r.EngineType = v4(uint32(v.NextHop)), p.EngineType
		if cfg.UseIPNextHop {
			r.PeerDstIP = r.NextHop
		}
		r.InIface, r.OutIface = uint32(v.Input), uint32(v.Output)
		r.Packets, r.Bytes = uint64(v.DPkts), uint64(v.DOctets)
		r.TimestampStart = (int64(p.UnixSecs) - ago(v.First)) * 1e6
		r.TimestampEnd = (int64(p.UnixSecs) - ago(v.Last)) * 1e6
		r.Proto, r.TOS = v.Proto, v.Tos
		if v.Proto == 6 {
			r.TCPFlags = v.TCPFlags
		}
		if v.Proto == 6 || v.Proto == 17 {
			r.SrcPort = v.SrcPort
		}
		if v.Proto == 6 || v.Proto == 17 || v.Proto == 1 || v.Proto == 58 {
			r.DstPort = v.DstPort
		}
		r.SrcAS, r.DstAS = uint32(v.SrcAS), uint32(v.DstAS)
		r.SrcMask, r.DstMask = v.SrcMask, v.DstMask
		out = append(out, r)
	}
	return out, nil
}

func v4(a uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrFrom4(b)
}

// refValues indexes a record's IANA values by element, the last occurrence
// winning.
type refValues map[uint16][]byte

func newRefValues(values []goflow.DataField) refValues {
	m := refValues{}
	for _, v := range values {
		if !v.PenProvided {
			m[v.Type] = v.Value.([]byte)
		}
	}
	return m
}

func (m refValues) has(ie uint16) bool { _, ok := m[ie]; return ok }

func (m refValues) num(ie uint16) (uint64, bool) {
	b, ok := m[ie]
	if !ok || len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// first returns the first of ies present.
func (m refValues) first(ies ...uint16) (uint16, bool) {
	for _, ie := range ies {
		if m.has(ie) {
			return ie, true
		}
	}
	return 0, false
}

func (m refValues) numFirst(ies ...uint16) (uint64, bool) {
	if ie, ok := m.first(ies...); ok {
		return m.num(ie)
	}
	return 0, false
}

func (m refValues) addr(ie uint16, size int) (netip.Addr, bool) {
	b, ok := m[ie]
	if !ok || len(b) != size {
		return netip.Addr{}, false
	}
	a, _ := netip.AddrFromSlice(b)
	return a, true
}

func (ref *reference) record(h refHeader, values []goflow.DataField) flow.Record {
	m := newRefValues(values)
	cfg := ref.d.cfg
	r := flow.Record{Flows: 1}
	r.PeerSrcIP = h.exporter
	r.TimestampArrival = h.received.UnixMicro()
	r.TimestampExport = h.exportMicros
	r.ExportProtoSeqno = h.seq
	r.ExportProtoSysID = h.domain
	r.ExportProtoVersion = h.version

	// IP version: IE 60, else the addresses present.
	fam := 0
	if v, ok := m.num(60); ok && (v == 4 || v == 6) {
		fam = int(v)
	} else {
		v4 := m.has(8) || m.has(12)
		v6 := m.has(27) || m.has(28)
		switch {
		case v4 && v6:
			fam = 6
			if ie, ok := m.first(8, 12); ok {
				for _, c := range m[ie] {
					if c != 0 {
						fam = 4
					}
				}
			}
		case v4 || m.has(44) || m.has(45) || m.has(366):
			fam = 4
		case v6 || m.has(170) || m.has(169):
			fam = 6
		}
	}
	switch fam {
	case 4:
		r.EType = 0x800
		if ie, ok := m.first(8, 44, 366); ok {
			r.SrcIP, _ = m.addr(ie, 4)
		}
		if ie, ok := m.first(12, 45); ok {
			r.DstIP, _ = m.addr(ie, 4)
		}
		if v, ok := m.num(9); ok {
			r.SrcMask = uint8(v)
		}
		if v, ok := m.num(13); ok {
			r.DstMask = uint8(v)
		}
	case 6:
		r.EType = 0x86dd
		if ie, ok := m.first(27, 170); ok {
			r.SrcIP, _ = m.addr(ie, 16)
		}
		if ie, ok := m.first(28, 169); ok {
			r.DstIP, _ = m.addr(ie, 16)
		}
		if v, ok := m.num(29); ok {
			r.SrcMask = uint8(v)
		}
		if v, ok := m.num(30); ok {
			r.DstMask = uint8(v)
		}
	}
	if v, ok := m.num(256); ok {
		r.EType = uint16(v)
	}
	// peer_src_ip: the exporter address of the record, when asked for
	if cfg.UseExporterAddress {
		if a, ok := m.addr(130, 4); ok && !a.IsUnspecified() {
			r.PeerSrcIP = a
		} else if a, ok := m.addr(131, 16); ok && !a.IsUnspecified() {
			r.PeerSrcIP = a
		}
	}
	// what pre_tag_map reads: the template, the customer VLAN, a
	// one-octet forwarding status, both bi-flow counters, the IP next hop
	r.FlowsetID = h.flowset
	if v, ok := m.num(245); ok {
		r.CVLAN = uint16(v)
	}
	if d, ok := m[89]; ok && len(d) == 1 {
		r.FwdStatus, r.MapFlags = d[0], flow.MapFwdStatus
	}
	if m.has(231) && m.has(232) {
		r.MapFlags |= flow.MapBiFlow
	}
	// pmacct's nfprobe's tag, tag2 and label (its enterprise's 1, 2, 3)
	for _, v := range values {
		b, _ := v.Value.([]byte)
		if !v.PenProvided || v.Pen != 43874 {
			continue
		}
		switch v.Type &^ 0x8000 {
		case 1:
			r.Tag, r.MapFlags = new(big.Int).SetBytes(b).Uint64(), r.MapFlags|flow.MapProbeTag
		case 2:
			r.Tag2, r.MapFlags = new(big.Int).SetBytes(b).Uint64(), r.MapFlags|flow.MapProbeTag2
		case 3:
			if z := bytes.IndexByte(b, 0); z >= 0 {
				b = b[:z]
			}
			r.Label, r.MapFlags = flow.LabelID(string(b)), r.MapFlags|flow.MapProbeLabel
		}
	}
	if a, ok := m.addr(15, 4); ok {
		r.NextHop = a
	} else if a, ok := m.addr(62, 16); ok && !m.has(15) {
		r.NextHop = a
	}
	// sampling_direction: a 1-octet IE 61
	if d, ok := m[61]; ok && len(d) == 1 && d[0] <= 1 {
		r.SamplingDirection = flow.DirectionIngress + d[0]
	}
	// mpls_vpn_rd: the VRF id of the direction, or of the only VRF element;
	// else IE 90
	dir := byte(0)
	if d := m[61]; len(d) > 0 {
		dir = d[0]
	}
	vrf := func(ie uint16) uint64 {
		v := make([]byte, 4)
		copy(v, m[ie])
		return uint64(v[0])<<24 | uint64(v[1])<<16 | uint64(v[2])<<8 | uint64(v[3])
	}
	switch in, out := vrf(234), vrf(235); {
	case in != 0 && (dir == 0 || out == 0):
		r.MPLSVPNRD = flow.RDVRFID<<48 | in
	case out != 0 && (dir == 1 || in == 0):
		r.MPLSVPNRD = flow.RDVRFID<<48 | out
	case m.has(90):
		v := make([]byte, 8)
		copy(v, m[90])
		for _, c := range v {
			r.MPLSVPNRD = r.MPLSVPNRD<<8 | uint64(c)
		}
	}
	if v, ok := m.num(249); ok {
		r.MPLSPWID = uint32(v)
	}
	// events (nfacctd's NF_evaluate_flow_type), NEL and NSEL
	r.Event = m.has(230) || !(m.has(1) || m.has(23) || m.has(85) || m.has(231) || m.has(232) || m.has(315) || m.has(104) || m.has(352) ||
		m.has(2) || m.has(24) || m.has(86))
	if fam == 4 || r.Event {
		if ie, ok := m.first(225, 40001); ok {
			r.PostNATSrcIP, _ = m.addr(ie, 4)
		}
		if ie, ok := m.first(226, 40002); ok {
			r.PostNATDstIP, _ = m.addr(ie, 4)
		}
	}
	if v, ok := m.numFirst(227, 40003); ok {
		r.PostNATSrcPort = uint16(v)
	}
	if v, ok := m.numFirst(228, 40004); ok {
		r.PostNATDstPort = uint16(v)
	}
	if v, ok := m.numFirst(230, 40005); ok {
		r.NATEvent = uint8(v)
	}
	if v, ok := m.num(233); ok {
		r.FWEvent = uint8(v)
	}
	if ie, ok := m.first(56, 81, 365); ok && len(m[ie]) == 6 {
		r.SrcMAC = [6]byte(m[ie])
	}
	if ie, ok := m.first(80, 57); ok && len(m[ie]) == 6 {
		r.DstMAC = [6]byte(m[ie])
	}
	if v, ok := m.num(244); ok {
		r.CoS = uint8(v)
	}
	if v, ok := m.num(16); ok {
		r.SrcAS = uint32(v)
	}
	if v, ok := m.num(17); ok {
		r.DstAS = uint32(v)
	}
	if v, ok := m.num(129); ok {
		r.PeerSrcAS = uint32(v)
	}
	if v, ok := m.num(128); ok {
		r.PeerDstAS = uint32(v)
	}
	if v, ok := m.numFirst(10, 252); ok {
		r.InIface = uint32(v)
	}
	if v, ok := m.numFirst(14, 253); ok {
		r.OutIface = uint32(v)
	}
	if v, ok := m.numFirst(7, 180, 182); ok {
		r.SrcPort = uint16(v)
	}
	if v, ok := m.numFirst(11, 181, 183); ok {
		r.DstPort = uint16(v)
	}
	if v, ok := m.num(4); ok {
		r.Proto = uint8(v)
	}
	if v, ok := m.num(5); ok {
		r.TOS = uint8(v)
	}
	if v, ok := m.num(6); ok {
		r.TCPFlags = uint8(v)
	}
	if v, ok := m.numFirst(1, 85, 23, 352); ok {
		r.Bytes = v
	}
	if v, ok := m.numFirst(2, 86, 24); ok {
		r.Packets = v
	}
	if v, ok := m.num(3); ok && v != 0 {
		r.Flows = v
	}
	// peer_dst_ip.
	switch ie, _ := m.first(18, 47, 15, 63, 140, 62); ie {
	case 18, 47:
		r.PeerDstIP, _ = m.addr(ie, 4)
	case 15:
		if cfg.UseIPNextHop {
			r.PeerDstIP, _ = m.addr(ie, 4)
		}
	case 63, 140:
		r.PeerDstIP, _ = m.addr(ie, 16)
	case 62:
		if cfg.UseIPNextHop {
			r.PeerDstIP, _ = m.addr(ie, 16)
		}
	}
	// VLAN: by direction when there is one.
	var vlanIE uint16
	var ok bool
	if dir, has := m.num(61); has {
		switch dir {
		case 0:
			vlanIE, ok = m.first(58, 243)
		case 1:
			vlanIE, ok = m.first(59, 254)
		}
	} else if m.has(61) {
		ok = false
	} else {
		vlanIE, ok = m.first(58, 59, 243, 254)
	}
	if ok {
		if v, ok := m.num(vlanIE); ok {
			r.VLAN = uint16(v)
		}
	}
	r.TimestampStart = ref.time(h, m, true)
	if r.TimestampStart == 0 {
		r.TimestampStart = h.exportMicros
	}
	r.TimestampEnd = ref.time(h, m, false)
	r.SamplingRate = ref.rate(h, m)
	return r
}

func (ref *reference) time(h refHeader, m refValues, start bool) int64 {
	ies := [...]uint16{21, 153, 155, 157, 0, 151, 159}
	if start {
		ies = [...]uint16{22, 152, 154, 156, 323, 150, 158}
	}
	ntp := func(b []byte, mask uint32) int64 {
		sec := int64(binary.BigEndian.Uint32(b)) - 2208988800
		frac := uint64(binary.BigEndian.Uint32(b[4:]) &^ mask)
		return sec*1e6 + int64(frac*1e6/(1<<32))
	}
	switch {
	case m.has(ies[0]) && h.version == 9:
		v, _ := m.num(ies[0])
		// nfacctd: whole seconds, the uptime difference modulo 2^32 (signed)
		d := int64(int32(h.uptime - uint32(v)))
		if !ref.d.cfg.TimeSecs {
			d /= 1000
		}
		return (int64(h.secs) - d) * 1e6
	case m.has(ies[0]):
		v, _ := m.num(ies[0])
		if init, ok := m.num(160); ok && len(m[160]) == 8 {
			return int64(init+v) * 1e3
		}
		return 0
	case m.has(ies[1]):
		v, _ := m.num(ies[1])
		return int64(v) * 1e3
	case m.has(ies[2]):
		switch b := m[ies[2]]; len(b) {
		case 8:
			return ntp(b, 0x7ff)
		case 16:
			return int64(binary.BigEndian.Uint64(b))*1e6 + int64(binary.BigEndian.Uint64(b[8:]))
		}
		return 0
	case m.has(ies[3]):
		if b := m[ies[3]]; len(b) == 8 {
			return ntp(b, 0)
		}
		return 0
	case ies[4] != 0 && m.has(ies[4]):
		v, _ := m.num(ies[4])
		return int64(v) * 1e3
	case m.has(ies[5]):
		v, _ := m.num(ies[5])
		return int64(v) * 1e6
	case m.has(ies[6]) && h.version == 10:
		v, _ := m.num(ies[6])
		return int64(h.secs)*1e6 - int64(v)
	}
	return 0
}

func (ref *reference) lookup(h refHeader, id uint64) uint32 {
	if r, ok := ref.samplers[refSampler{h.exporter, h.domain, false, id}]; ok {
		return r
	}
	return ref.samplers[refSampler{h.exporter, 0, true, id}]
}

func (ref *reference) rate(h refHeader, m refValues) uint32 {
	if o := ref.d.cfg.Sampling.Rate(h.exporter); o != 0 {
		return o
	}
	if id, ok := m.numFirst(48, 302); ok {
		return ref.lookup(h, id)
	}
	if m.has(34) || m.has(50) {
		rate, _ := m.num(34)
		if v, ok := m.num(50); ok {
			rate = v
		}
		return uint32(rate)
	}
	return ref.lookup(h, 0)
}

func (ref *reference) option(h refHeader, r goflow.OptionsDataRecord) {
	// First occurrence, scopes first.
	m := refValues{}
	for _, vs := range [][]goflow.DataField{r.OptionsValues, r.ScopesValues} {
		for i := len(vs) - 1; i >= 0; i-- {
			if !vs[i].PenProvided {
				m[vs[i].Type] = vs[i].Value.([]byte)
			}
		}
	}
	if !m.has(48) && !m.has(34) && !m.has(305) && !m.has(309) {
		return
	}
	k := refSampler{exporter: h.exporter, domain: h.domain}
	for _, s := range r.ScopesValues {
		if s.Type == 1 && !s.PenProvided {
			k.domain, k.global = 0, true
		}
	}
	if v, ok := m.num(145); ok && !k.global {
		k.id = v
	}
	if v, ok := m.numFirst(48, 302); ok {
		k.id = v
	}
	var rate uint64
	if v, ok := m.num(34); ok {
		rate = v
	}
	interval, okI := m.num(305)
	size, okS := m.num(309)
	switch {
	case m.has(50):
		rate, _ = m.num(50)
	case okI && m.has(306):
		if interval != 0 {
			space, _ := m.num(306)
			rate = (interval + space) / interval
		}
	case okS && m.has(310):
		if size != 0 {
			pop, _ := m.num(310)
			rate = pop / size
		}
	}
	ref.samplers[k] = uint32(rate)
}

// prefix reads an address or a prefix as the configuration does.
func prefix(s string) setting.Prefix {
	p, err := setting.ParsePrefix(s)
	if err != nil {
		panic(err)
	}
	return p
}
