package engine

import (
	"net/netip"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/aggregate/routes"
)

// bgpPrimitives are those a route lookup fills: of the destination's route,
// then of the source's (src_*).
var (
	bgpDst = flow.Set{}.With(flow.ASPath).With(flow.StdComm).With(flow.ExtComm).With(flow.LrgComm).With(flow.LocalPref).With(flow.MED)
	bgpSrc = flow.Set{}.With(flow.SrcASPath).With(flow.SrcStdComm).With(flow.SrcExtComm).With(flow.SrcLrgComm).With(flow.SrcLocalPref).With(flow.SrcMED)
)

// bgpLookup is an input's route lookups: which sides its pipelines need,
// and whether one takes its AS numbers, or its nets and next hop, from
// them.
type bgpLookup struct {
	rib               *routes.RIB      // BGP peers'; nil without [bgp]
	bmp               *routes.RIB      // BMP routers' views; nil without [bmp]
	agents            *routes.AgentMap // nil: every exporter is its own peer
	dst, src, as, net bool
}

// newBGPLookup returns the lookups the pipelines need, nil if none.
func newBGPLookup(rib, bmp *routes.RIB, agents *routes.AgentMap, pipelines []*flowPipeline) *bgpLookup {
	if rib == nil && bmp == nil {
		return nil
	}
	l := &bgpLookup{rib: rib, bmp: bmp, agents: agents}
	for _, p := range pipelines {
		l.dst = l.dst || p.agg.Set.Intersects(bgpDst)
		l.src = l.src || p.agg.Set.Intersects(bgpSrc)
		l.as = l.as || p.cache.BGPAS()
		l.net = l.net || p.cache.BGPNet()
	}
	if !l.dst && !l.src && !l.as && !l.net {
		return nil
	}
	return l
}

// fill sets r's BGP primitives from the routes of its exporter's BGP peer
// or BMP router: the bgp_agent_map's address, else the exporter's; a BGP
// session from that address is taken first, else the view of the BMP
// router connected from it.
func (l *bgpLookup) fill(r *flow.Record) {
	r.BGPAS = flow.BGPAS{}
	addr := r.PeerSrcIP.Unmap()
	if l.agents != nil {
		addr = l.agents.Peer(addr)
	}
	var peer *routes.Peer
	if l.rib != nil {
		peer = l.rib.Find(addr)
	}
	if peer == nil && l.bmp != nil {
		peer = l.bmp.Find(addr)
	}
	if peer == nil {
		return
	}
	if (l.dst || l.as || l.net) && r.DstIP.IsValid() {
		var rt *routes.Route
		var bits int
		var ok bool
		if nh := r.PeerDstIP; nh.IsValid() || peer.ByNextHop() { // the record's BGP next hop picks among paths
			rt, bits, ok = peer.LookupVia(r.DstIP.Unmap(), nh.Unmap())
		} else {
			rt, bits, ok = l.lookup(peer, r.DstIP.Unmap())
		}
		if ok {
			if l.dst {
				r.ASPath, r.StdComm, r.ExtComm, r.LrgComm = rt.ASPathID, rt.StdCommID, rt.ExtCommID, rt.LrgCommID
				r.LocalPref, r.MED = rt.LocalPref, rt.MED
			}
			r.BGPDstAS, r.BGPPeerDstAS = rt.OriginAS, rt.PeerAS
			r.BGPDstMask, r.BGPNextHop = uint8(bits), rt.NextHop
		}
	}
	if (l.src || l.as || l.net) && r.SrcIP.IsValid() {
		if rt, bits, ok := l.lookup(peer, r.SrcIP.Unmap()); ok {
			if l.src {
				r.SrcASPath, r.SrcStdComm, r.SrcExtComm, r.SrcLrgComm = rt.ASPathID, rt.StdCommID, rt.ExtCommID, rt.LrgCommID
				r.SrcLocalPref, r.SrcMED = rt.LocalPref, rt.MED
			}
			r.BGPSrcAS, r.BGPPeerSrcAS, r.BGPSrcMask = rt.OriginAS, rt.PeerAS, uint8(bits)
		}
	}
}

// lookup finds ip's route, with its prefix length when a pipeline takes
// nets from BGP (the lookup that gives it costs more).
func (l *bgpLookup) lookup(peer *routes.Peer, ip netip.Addr) (*routes.Route, int, bool) {
	if l.net {
		return peer.LookupNet(ip)
	}
	rt, ok := peer.Lookup(ip)
	return rt, 0, ok
}
