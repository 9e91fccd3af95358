// Package spelling suggests the name a user probably meant: configuration keys,
// transformation keys, pmacct primitives.
package spelling

import "strings"

// Closest returns the name in known that word is probably a misspelling of: the
// same letters in another case, or at most two edits away. It returns "" when no
// name is close enough.
func Closest(word string, known []string) string {
	best, bestD := "", 3
	lw := strings.ToLower(word)
	for _, k := range known {
		lk := strings.ToLower(k)
		if lw == lk {
			return k
		}
		if len(word) < 3 || len(word) > 2*len(k) {
			continue
		}
		if d := Distance(lw, lk); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// Distance is the Levenshtein distance between a and b, in bytes.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
