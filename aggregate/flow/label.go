package flow

import (
	"sync"
	"sync/atomic"
)

// Labels are kept in records as numbers, LabelID's: a Key stays of a fixed
// size and comparable, and a cache key packs a label in 4 bytes. The numbers
// hold for the life of the process, whatever map gave the label (a map
// reloaded on SIGHUP adds its new labels; an aggregate made before keeps its
// number), so the table only grows: by the distinct labels of the maps
// loaded, which are the operator's.
//
// The texts are kept in chunks that never move: a new label costs a slot,
// not a copy of the table (BGP's AS paths and communities make hundreds of
// thousands of labels a full table).
var labels struct {
	mu     sync.Mutex
	ids    map[string]uint32
	chunks atomic.Pointer[[]*labelChunk] // the list is replaced as it grows; a chunk never moves
	n      atomic.Uint32                 // labels numbered, 0 ("") included once the first is: slots below it are written
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

// LabelID returns the number of label s; "" is 0.
func LabelID(s string) uint32 {
	if s == "" {
		return 0
	}
	labels.mu.Lock()
	defer labels.mu.Unlock()
	if id, ok := labels.ids[s]; ok {
		return id
	}
	if labels.ids == nil {
		labels.ids = map[string]uint32{}
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

// Labels returns how many labels LabelID numbered.
func Labels() int {
	return int(max(labels.n.Load(), 1) - 1)
}
