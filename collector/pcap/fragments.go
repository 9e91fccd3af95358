package pcap

import (
	"net/netip"
	"sync/atomic"

	"github.com/flowdex/flowdex/aggregate/flow"
	"github.com/flowdex/flowdex/collector/packet"
)

// pmacctd's fragment handling, on when a pipeline aggregates ports or TCP
// flags: the first fragment of a TCP/UDP datagram lends its ports to the
// later ones; a later fragment seen before the first is held back and added
// (packets and bytes) to the first one's record when it comes. Entries live
// 60 seconds of capture time from the datagram's first fragment seen, as in
// pmacct; a held fragment whose first never came is counted as orphaned.

const (
	fragTimeout = 60 * 1e6 // microseconds, pmacct's IPF_TIMEOUT
	// maxFragments bounds the table (pmacct's default 4 MB buffer holds about
	// as many): when full, expired entries go; if none has, the packet is
	// accounted alone and counted as untracked.
	maxFragments = 1 << 16
)

type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

type fragEntry struct {
	deadline         int64 // capture time, microseconds
	gotFirst         bool
	srcPort, dstPort uint16
	packets, bytes   uint64 // held back until the first fragment
}

// fragments tracks the fragmented datagrams of one capture.
type fragments struct {
	table map[fragKey]fragEntry
	// hold is off with an external sampling rate: pmacctd then accounts a
	// later fragment seen before its first at once, without ports.
	hold      bool
	nextPrune int64
	// counters: later fragments held, held ones that never met their first
	// (packets and bytes), fragments accounted alone because the table was full
	held, orphanPackets, orphanBytes, untracked atomic.Uint64
}

func newFragments(hold bool) *fragments {
	return &fragments{table: make(map[fragKey]fragEntry), hold: hold}
}

// account applies the first fragment's ports to r, or holds r back; false
// when r is held (not to be emitted now).
func (f *fragments) account(r *flow.Record, info packet.Info, now int64) bool {
	if now >= f.nextPrune {
		f.expire(now)
		f.nextPrune = now + fragTimeout
	}
	k := fragKey{src: r.SrcIP, dst: r.DstIP, id: info.FragID, proto: r.Proto}
	e, ok := f.table[k]
	if ok && e.deadline <= now {
		f.orphan(e)
		ok = false
	}
	if !ok {
		if len(f.table) >= maxFragments && !f.expire(now) {
			f.untracked.Add(1)
			return true
		}
		e = fragEntry{deadline: now + fragTimeout}
	}
	switch {
	case e.gotFirst && !info.FragFirst:
		r.SrcPort, r.DstPort = e.srcPort, e.dstPort
	case info.FragFirst:
		e.gotFirst, e.srcPort, e.dstPort = true, r.SrcPort, r.DstPort
		r.Packets += e.packets
		r.Bytes += e.bytes
		e.packets, e.bytes = 0, 0
	case !f.hold:
		return true
	default: // a later fragment before its first
		e.packets += r.Packets
		e.bytes += r.Bytes
		f.held.Add(1)
		f.table[k] = e
		return false
	}
	f.table[k] = e
	return true
}

// expire drops the entries past their deadline; false when none was.
func (f *fragments) expire(now int64) bool {
	n := len(f.table)
	for k, e := range f.table {
		if e.deadline <= now {
			f.orphan(e)
			delete(f.table, k)
		}
	}
	return len(f.table) < n
}

// close counts what is still held as orphaned (the capture ended).
func (f *fragments) close() {
	for k, e := range f.table {
		f.orphan(e)
		delete(f.table, k)
	}
}

func (f *fragments) orphan(e fragEntry) {
	if !e.gotFirst {
		f.orphanPackets.Add(e.packets)
		f.orphanBytes.Add(e.bytes)
	}
}
