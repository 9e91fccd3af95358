package flow

import (
	"sync"
	"sync/atomic"
	"time"
)

// Labels are kept in records as numbers, LabelID's: a Key stays of a fixed
// size and comparable, and a cache key packs a label in 4 bytes. LabelID's
// numbers hold for the life of the process, whatever map gave the label (a
// map reloaded on SIGHUP adds its new labels; an aggregate made before
// keeps its number): those labels are the operator's, few. The texts of
// BGP routes come and go with the routes, by the million over the days of
// a full table's churn: AcquireLabel counts their references, and a label
// whose last one went is freed (FreeLabels) once no aggregate can hold its
// number any more, the number given again later.
//
// The texts are kept in chunks that never move: a new label costs a slot,
// not a copy of the table.
var labels struct {
	mu       sync.Mutex
	ids      map[string]uint32
	chunks   atomic.Pointer[[]*labelChunk] // the list is replaced as it grows; a chunk never moves
	n        atomic.Uint32                 // labels numbered, 0 ("") included once the first is: slots below it are written
	counted  map[uint32]int32              // AcquireLabel's labels and their references; LabelID's are not counted, kept
	released []releasedLabel               // counted labels whose references went to 0, in order
	free     []uint32                      // freed numbers, given again
}

type releasedLabel struct {
	id uint32
	at time.Time
}

const labelChunkBits = 12

type labelChunk [1 << labelChunkBits]string

// LabelIDBytes is LabelID of b's text, which it copies only for a label
// not seen before.
func LabelIDBytes(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	labels.mu.Lock()
	id, ok := labels.ids[string(b)]
	labels.mu.Unlock()
	if ok {
		return id
	}
	return LabelID(string(b))
}

// LabelID returns the number of label s, kept for the life of the
// process; "" is 0.
func LabelID(s string) uint32 {
	if s == "" {
		return 0
	}
	labels.mu.Lock()
	defer labels.mu.Unlock()
	if id, ok := labels.ids[s]; ok {
		delete(labels.counted, id) // counted until now: kept from now on
		return id
	}
	return newLabelLocked(s)
}

// AcquireLabel returns the number of label s, and counts a reference to
// it that ReleaseLabel gives back; "" is 0.
func AcquireLabel(s string) uint32 {
	if s == "" {
		return 0
	}
	labels.mu.Lock()
	defer labels.mu.Unlock()
	id, ok := labels.ids[s]
	if !ok {
		id = newLabelLocked(s)
		if labels.counted == nil {
			labels.counted = map[uint32]int32{}
		}
		labels.counted[id] = 1
		return id
	}
	if refs, counted := labels.counted[id]; counted {
		labels.counted[id] = refs + 1
	}
	return id
}

// ReleaseLabel gives back a reference AcquireLabel counted. A label left
// without one is freed by a FreeLabels after now.
func ReleaseLabel(id uint32) {
	if id == 0 {
		return
	}
	labels.mu.Lock()
	defer labels.mu.Unlock()
	refs, counted := labels.counted[id]
	if !counted || refs <= 0 {
		return
	}
	if labels.counted[id] = refs - 1; refs == 1 {
		labels.released = append(labels.released, releasedLabel{id, time.Now()})
	}
}

// FreeLabels frees the counted labels whose last reference went before
// before and none came since: their texts go, their numbers are given
// again. The engine calls it with a time before which no aggregate still
// in a cache can have been made; it returns how many it freed.
func FreeLabels(before time.Time) int {
	labels.mu.Lock()
	defer labels.mu.Unlock()
	freed, i := 0, 0
	for ; i < len(labels.released) && labels.released[i].at.Before(before); i++ {
		id := labels.released[i].id
		if refs, counted := labels.counted[id]; !counted || refs > 0 {
			continue // kept (LabelID), or taken again
		}
		slot := &(*labels.chunks.Load())[id>>labelChunkBits][id&(1<<labelChunkBits-1)]
		delete(labels.ids, *slot)
		delete(labels.counted, id)
		*slot = ""
		labels.free = append(labels.free, id)
		freed++
	}
	labels.released = append(labels.released[:0], labels.released[i:]...)
	return freed
}

// newLabelLocked numbers a new label, a freed number first.
func newLabelLocked(s string) uint32 {
	if labels.ids == nil {
		labels.ids = map[string]uint32{}
	}
	if n := len(labels.free); n > 0 {
		id := labels.free[n-1]
		labels.free = labels.free[:n-1]
		(*labels.chunks.Load())[id>>labelChunkBits][id&(1<<labelChunkBits-1)] = s
		labels.ids[s] = id
		return id
	}
	id := max(labels.n.Load(), 1) // 0 is ""
	var chunks []*labelChunk
	if c := labels.chunks.Load(); c != nil {
		chunks = *c
	}
	if int(id>>labelChunkBits) == len(chunks) {
		chunks = append(chunks[:len(chunks):len(chunks)], new(labelChunk))
		labels.chunks.Store(&chunks)
	}
	chunks[id>>labelChunkBits][id&(1<<labelChunkBits-1)] = s
	labels.ids[s] = id
	labels.n.Store(id + 1) // after the slot: a reader that sees the number sees the text
	return id
}

// LabelText returns the label numbered id by LabelID; "" for 0 or a number
// it did not give.
func LabelText(id uint32) string {
	if id == 0 || id >= labels.n.Load() {
		return ""
	}
	return (*labels.chunks.Load())[id>>labelChunkBits][id&(1<<labelChunkBits-1)]
}

// Labels returns how many labels there are.
func Labels() int {
	labels.mu.Lock()
	defer labels.mu.Unlock()
	return int(max(labels.n.Load(), 1)-1) - len(labels.free)
}
