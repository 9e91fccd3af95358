package testports

import "testing"

// No port is handed out twice, singly or in a run.
func TestNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		ports, err := Free(3)
		if err != nil {
			t.Fatal(err)
		}
		base, err := Consecutive(3)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range append(ports, base, base+1, base+2) {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
}
