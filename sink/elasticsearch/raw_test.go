package elasticsearch

import (
	"context"
	"strings"
	"testing"
)

// WriteRaw sends a document as it is, to the index named, as a create with
// its id (a repeat is a duplicate) or an index without; it refuses an index
// name Elasticsearch would and a document not on one line.
func TestWriteRaw(t *testing.T) {
	f, srv := newFakeES(t, nil)
	s, _ := startSink(t, fakeConfig(srv.URL))
	ctx := context.Background()
	doc := []byte(`{"ip_src":"192.0.2.1","@timestamp":"2024-01-01T00:00:00.000Z"}`)
	for _, id := range []string{"a", "a", ""} {
		if err := s.WriteRaw(ctx, "flows-2024.01.01", id, doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteRaw(ctx, "Flows", "b", doc); err == nil || !strings.Contains(err.Error(), "lowercase") {
		t.Errorf("index Flows: %v", err)
	}
	if err := s.WriteRaw(ctx, "flows", "b", []byte("{\"a\":\n1}")); err == nil {
		t.Error("a document on two lines was taken")
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written != 3 || st.Indexed != 2 || st.Duplicates != 1 {
		t.Errorf("stats %+v: want 3 written, 2 indexed, 1 duplicate", st)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := string(f.docs["a"]); got != string(doc) {
		t.Errorf("document a: %s, want %s", got, doc)
	}
}
