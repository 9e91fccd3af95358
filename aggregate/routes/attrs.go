// Package routes is the routing information flows are looked up in: a RIB
// of one Adj-RIB-In per BGP peer (or BMP-monitored peer), each a
// longest-prefix-match table of the routes the peer announced, whose path
// attributes are kept once for every route that shares them (a full table
// holds about a million routes and a few hundred thousand attribute sets).
//
// The table is github.com/gaissmai/bart's Table, chosen by the benchmarks
// of choice_test.go against bart's Fast and a map per prefix length (the
// numbers are in the README, "BGP and BMP").
package routes

import (
	"net/netip"
	"slices"
	"strconv"
)

// Attrs are the path attributes of a route, as flow records take them:
// texts in pmacct's formats, written once per attribute set rather than
// once per record.
type Attrs struct {
	ASPath    string // "64500_64501_{64502,64503}", pmacct's as_path
	StdComm   string // "64500:1_64500:2", pmacct's std_comm
	ExtComm   string // "RT:64500:1", pmacct's ext_comm
	LrgComm   string // "64500:1:2", pmacct's lrg_comm
	LocalPref uint32
	MED       uint32
	NextHop   netip.Addr // the BGP next hop: peer_dst_ip
	PeerAS    uint32     // the path's first AS: peer_dst_as
	OriginAS  uint32     // the path's last AS: dst_as (src_as of the reverse lookup)
}

// PathText writes an AS path of one sequence as pmacct does: the ASes
// joined by '_'.
func PathText(path []uint32) string {
	b := make([]byte, 0, 8*len(path))
	for i, as := range path {
		if i > 0 {
			b = append(b, '_')
		}
		b = strconv.AppendUint(b, uint64(as), 10)
	}
	return string(b)
}

// CommunitiesText writes standard communities as pmacct's std_comm: in
// numeric order, each once (pmacct sorts and dedupes the attribute as it
// parses it), "64500:1_64500:2".
func CommunitiesText(cs []uint32) string {
	cs = slices.Clone(cs)
	slices.Sort(cs)
	cs = slices.Compact(cs)
	b := make([]byte, 0, 12*len(cs))
	for i, c := range cs {
		if i > 0 {
			b = append(b, '_')
		}
		b = strconv.AppendUint(b, uint64(c>>16), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(c&0xffff), 10)
	}
	return string(b)
}
