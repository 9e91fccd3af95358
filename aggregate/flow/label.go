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
var labels struct {
	mu    sync.Mutex
	ids   map[string]uint32
	texts atomic.Pointer[[]string] // by number; replaced, never changed, as it grows
}

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
	var texts []string
	if t := labels.texts.Load(); t != nil {
		texts = *t
	} else {
		texts = []string{""}
	}
	texts = append(texts[:len(texts):len(texts)], s)
	id := uint32(len(texts) - 1)
	labels.ids[s] = id
	labels.texts.Store(&texts)
	return id
}

// LabelText returns the label numbered id by LabelID; "" for 0 or a number
// it did not give.
func LabelText(id uint32) string {
	if t := labels.texts.Load(); t != nil && int(id) < len(*t) {
		return (*t)[id]
	}
	return ""
}

// Labels returns how many labels LabelID numbered.
func Labels() int {
	if t := labels.texts.Load(); t != nil {
		return len(*t) - 1
	}
	return 0
}
