package flow

import (
	"strconv"
	"sync"
	"testing"
)

// Labels numbered past a chunk's end read back, while other goroutines
// number and read theirs (the race detector checks the publication); the
// same text keeps its number.
func TestLabelsAcrossChunks(t *testing.T) {
	const per = 3 * (1 << labelChunkBits) / 2
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			ids := make([]uint32, per)
			for i := range ids {
				ids[i] = LabelID("label-test-" + strconv.Itoa(g) + "-" + strconv.Itoa(i))
			}
			for i, id := range ids {
				want := "label-test-" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				if got := LabelText(id); got != want || LabelID(want) != id {
					t.Errorf("label %d: %q, want %q", id, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if Labels() < 2*per {
		t.Errorf("%d labels, want at least %d", Labels(), 2*per)
	}
	if LabelText(0) != "" || LabelID("") != 0 || LabelText(1<<31) != "" {
		t.Error(`"" is not 0, or a number never given has a text`)
	}
}
