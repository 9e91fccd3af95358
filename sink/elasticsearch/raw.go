package elasticsearch

import (
	"bytes"
	"context"
	"fmt"

	"github.com/flowdex/flowdex/aggregate/document"
)

// WriteRaw queues a document already encoded, a JSON object on one line (a
// dead-letter record's), for index as it is named. A non-empty id makes it a
// create with that _id, as for Write; without one it is an index action, which
// a repeat indexes again. It batches, retries and dead-letters as Write does.
func (s *Sink) WriteRaw(ctx context.Context, index, id string, doc []byte) error {
	if err := validateName(index); err != nil {
		return fmt.Errorf("index %q: %w", index, err)
	}
	if len(doc) == 0 || doc[0] != '{' || bytes.ContainsAny(doc, "\r\n") {
		return fmt.Errorf("the document is not a JSON object on one line")
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.unlock()
	var it item
	s.scratch, it = encodeRaw(s.scratch[:0], index, id, doc)
	return s.queueLocked(ctx, s.scratch, it)
}

// encodeRaw is encode for a document already encoded.
func encodeRaw(dst []byte, index, id string, doc []byte) ([]byte, item) {
	base, ix := len(dst), actionStart(dst, id)
	dst = document.AppendString(ix, index)
	dst, it := actionEnd(dst, base, len(ix), id)
	dst = append(dst, doc...)
	dst = append(dst, '\n')
	it.end = len(dst) - base
	return dst, it
}
