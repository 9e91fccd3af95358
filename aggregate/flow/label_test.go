package flow

import (
	"strconv"
	"sync"
	"testing"
	"time"
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

// Counted labels: a text with references keeps its number; without, it is
// freed by a FreeLabels after its release (not before), its number given
// to a new text; a counted text that LabelID takes is kept for good.
func TestCountedLabels(t *testing.T) {
	before := Labels()
	a := AcquireLabel("counted-test-a")
	if AcquireLabel("counted-test-a") != a || LabelText(a) != "counted-test-a" {
		t.Fatal("a counted label: not one number, or not its text")
	}
	kept := AcquireLabel("counted-test-kept")
	if LabelID("counted-test-kept") != kept {
		t.Fatal("LabelID of a counted label: another number")
	}
	ReleaseLabel(a)
	ReleaseLabel(kept)
	start := time.Now()
	if n := FreeLabels(start.Add(time.Hour)); n != 0 || LabelText(a) != "counted-test-a" {
		t.Fatalf("freed %d labels with a reference left", n)
	}
	ReleaseLabel(a)
	if n := FreeLabels(start.Add(-time.Hour)); n != 0 {
		t.Fatalf("freed %d labels released after the time given", n)
	}
	if n := FreeLabels(time.Now().Add(time.Second)); n != 1 || LabelText(a) != "" || LabelText(kept) != "counted-test-kept" {
		t.Fatalf("freed %d (want 1); texts now %q and %q", n, LabelText(a), LabelText(kept))
	}
	if Labels() != before+1 {
		t.Errorf("%d labels, want %d", Labels(), before+1)
	}
	b := AcquireLabel("counted-test-b")
	if b != a || LabelText(b) != "counted-test-b" || AcquireLabel("counted-test-a") == a {
		t.Errorf("a freed number not given again, or the freed text still has it")
	}
	// taken again before the time: not freed
	ReleaseLabel(b)
	AcquireLabel("counted-test-b")
	if n := FreeLabels(time.Now().Add(time.Second)); n != 0 {
		t.Errorf("freed %d labels taken again", n)
	}
}
