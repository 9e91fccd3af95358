package cache

import (
	"bytes"
	"hash/maphash"
)

// table is an open-addressing hash table of aggregates. Keys are stored back
// to back in one byte slice and counters in parallel slices, indexed by entry
// number in insertion order; a slot holds a hash tag and an entry number.
// Nothing is allocated per entry: the slices grow by doubling.
type table struct {
	seed  maphash.Seed
	slots []slot
	keys  []byte     // every key, back to back
	ends  []uint32   // ends[i]: end of key i in keys
	ctrs  []counters // ctrs[i]: counters of entry i
	flags []uint16   // flags[i]: OR-ed TCP flags of entry i, and flagTraffic
}

type slot struct {
	tag uint32 // high half of the key's hash
	idx uint32 // entry number + 1; 0: empty
}

type counters struct{ packets, bytes, flows uint64 }

// flagTraffic, OR-ed with a record's TCP flags, says it is traffic, not an
// event (flow.Record.Event): an entry without it is of events only.
const flagTraffic = 0x100

const minSlots = 1024

func newTable(seed maphash.Seed) *table {
	return &table{seed: seed, slots: make([]slot, minSlots)}
}

func (t *table) n() int { return len(t.ends) }

func (t *table) key(i int) []byte {
	start := uint32(0)
	if i > 0 {
		start = t.ends[i-1]
	}
	return t.keys[start:t.ends[i]]
}

// add sums the counters into the entry of key, creating it if needed; h is
// maphash.Bytes(t.seed, key).
func (t *table) add(key []byte, h uint64, packets, bytes_, flows uint64, flags uint16) {
	if (len(t.ends)+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	tag := uint32(h >> 32)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.idx == 0 {
			t.keys = append(t.keys, key...)
			t.ends = append(t.ends, uint32(len(t.keys)))
			t.ctrs = append(t.ctrs, counters{packets, bytes_, flows})
			t.flags = append(t.flags, flags)
			*s = slot{tag: tag, idx: uint32(len(t.ends))}
			return
		}
		if s.tag == tag {
			e := int(s.idx - 1)
			if bytes.Equal(t.key(e), key) {
				c := &t.ctrs[e]
				c.packets += packets
				c.bytes += bytes_
				c.flows += flows
				t.flags[e] |= flags
				return
			}
		}
	}
}

// grow doubles the slots and places every entry again.
func (t *table) grow() {
	t.rehash(len(t.slots) * 2)
}

func (t *table) rehash(size int) {
	t.slots = make([]slot, size)
	mask := uint64(size - 1)
	for e := range t.ends {
		h := maphash.Bytes(t.seed, t.key(e))
		i := h & mask
		for t.slots[i].idx != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = slot{tag: uint32(h >> 32), idx: uint32(e + 1)}
	}
}

// reset empties the table. It keeps its memory for the next interval unless
// the interval just flushed used far less than the table holds, so that one
// burst does not pin memory forever.
func (t *table) reset() {
	n := len(t.ends)
	if len(t.slots) > minSlots && n*8 < len(t.slots) {
		size := minSlots
		for size*3 < n*4*2 { // room for twice the last interval
			size *= 2
		}
		t.slots = make([]slot, size)
		t.keys = make([]byte, 0, 2*len(t.keys))
		t.ends = make([]uint32, 0, n*2)
		t.ctrs = make([]counters, 0, n*2)
		t.flags = make([]uint16, 0, n*2)
		return
	}
	clear(t.slots)
	t.keys = t.keys[:0]
	t.ends = t.ends[:0]
	t.ctrs = t.ctrs[:0]
	t.flags = t.flags[:0]
}
