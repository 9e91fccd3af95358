package spelling

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"Actions", "Conditions", "file", "flush_docs", "Transformations"}
	tests := []struct{ word, want string }{
		{"Action", "Actions"},
		{"actions", "Actions"}, // case only
		{"fiel", "file"},       // transposition: two edits
		{"flush_doc", "flush_docs"},
		{"Trasnformations", "Transformations"},
		{"zzzzzz", ""},
		{"fi", ""}, // too short to guess
	}
	for _, tt := range tests {
		if got := Closest(tt.word, known); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}} {
		if got := Distance(tt.a, tt.b); got != tt.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}
