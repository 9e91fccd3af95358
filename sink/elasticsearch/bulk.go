package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// filterPath trims the bulk answer to what the sink reads.
var filterPath = []string{"errors", "items.*.status", "items.*.error"}

// worker is the state of one sender, reused from request to request.
type worker struct {
	reader bytes.Reader
	resp   bytes.Buffer
	allOK  bool
	parsed bulkResponse
	kept   []int
	dl     []byte // dead-letter records of the current round
	dlN    int
}

type bulkResponse struct {
	Errors bool `json:"errors"`
	Items  []struct {
		Index  *bulkItem `json:"index"`
		Create *bulkItem `json:"create"`
	} `json:"items"`
}

type bulkItem struct {
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

func (s *Sink) work(w *worker) {
	defer s.workers.Done()
	for b := range s.send {
		n := len(b.items)
		switch {
		case s.hurried():
			s.stopped(w, b) // StopGrace is over: nothing more is sent
		case s.spool != nil && (s.needSetup.Load() || s.spool.Active()):
			s.toSpool(w, b) // behind what is queued on disk, in order; or before the template is in place
		default:
			s.process(w, b)
		}
		s.queued.Add(-int64(n))
		s.settle.done(b.docs.first)
		b.reset(s.cfg.FlushBytes)
		s.free <- b
	}
}

// process sends one batch until every document in it is indexed, a duplicate,
// rejected, or given up after the retries.
//
// With a spool, a batch not delivered SpoolAfter after its first attempt is
// spooled whatever retries are left, and so is one that fails while the sink
// stops; once StopGrace is over, the request in flight is abandoned.
func (s *Sink) process(w *worker, b *batch) {
	var spoolAt time.Time // with a spool: the time it takes the batch over
	if s.spool != nil {
		spoolAt = time.Now().Add(s.cfg.SpoolAfter.Duration)
	}
	for attempt := 0; len(b.items) > 0; attempt++ {
		if attempt > 0 {
			if s.spool != nil && s.isStopping() {
				s.toSpool(w, b) // the next start sends it; stopping does not wait for retries
				return
			}
			if !s.sleep(s.backoff(attempt)) {
				s.stopped(w, b)
				return
			}
			if s.spool != nil && !time.Now().Before(spoolAt) {
				if ok, suppressed := s.retrying.Allow(); ok {
					s.logger.Warn("elasticsearch: bulk request not delivered within spool_after; spooling", "documents", len(b.items),
						"spool_after", s.cfg.SpoolAfter.Duration, "attempts", attempt, "dir", s.cfg.SpoolDir, "similar_not_logged", suppressed)
				}
				s.toSpool(w, b)
				return
			}
			s.retried.Add(uint64(len(b.items)))
		}
		last := attempt >= s.cfg.MaxRetries
		status, body, err := s.bulk(w, b, spoolAt)
		s.requests.Add(1)
		if err == nil && status/100 == 2 {
			if err = s.parse(w, body, len(b.items)); err == nil {
				s.failing.Store(nil)
				s.results(w, b, last)
				continue
			}
		}

		// the request failed as a whole
		s.bulkErrors.Add(1)
		if mayHaveReached(err, status) {
			b.maybeIndexed = true
		}
		if err != nil && s.sendCtx.Err() != nil {
			s.stopped(w, b)
			return
		}
		var errJSON []byte
		var msg string
		if err != nil {
			msg = err.Error()
			errJSON = errorJSON("request_failed", msg)
		} else {
			msg = errorBody(status, body)
			errJSON = answerError(status, body)
		}
		retryable := retryableRequest(err, status)
		s.setFailing(msg, !retryable)
		if retryable && last && s.spool != nil {
			s.logger.Warn("elasticsearch: bulk request failed after the retries; spooling", "documents", len(b.items),
				"status", status, "error", msg, "retries", attempt, "dir", s.cfg.SpoolDir)
			s.toSpool(w, b)
			return
		}
		if !retryable || last {
			if retryable {
				msg = fmt.Sprintf("%s (after %d retries)", msg, attempt)
			}
			s.logger.Error("elasticsearch: bulk request failed", "documents", len(b.items),
				"status", status, "error", msg, "retries", attempt)
			if b.maybeIndexed {
				s.confirm(w, b)
			}
			s.giveUpAll(w, b, status, errJSON)
			return
		}
		if ok, suppressed := s.retrying.Allow(); ok {
			s.logger.Warn("elasticsearch: bulk request failed, retrying", "documents", len(b.items),
				"status", status, "error", msg, "attempt", attempt+1, "similar_not_logged", suppressed)
		}
	}
}

// mayHaveReached tells whether a bulk request that failed as a whole may
// have been applied: anything but a failure to connect, or a gateway's
// answer (502, 504) for a request it may have passed on.
func mayHaveReached(err error, status int) bool {
	if err != nil {
		var op *net.OpError
		return !errors.As(err, &op) || op.Op != "dial"
	}
	return status == http.StatusBadGateway || status == http.StatusGatewayTimeout || status/100 == 2 // 2xx: an answer that did not parse
}

// confirm asks Elasticsearch which documents of a batch given up after a
// request that may have been applied are indexed after all (their ids are
// there): those count as duplicates, as a retry answered 409 would have
// counted them, and leave the batch. When it cannot tell (no answer, no
// ids), the documents left are counted as unconfirmed: dead-lettered or
// failed, though Elasticsearch may hold them.
func (s *Sink) confirm(w *worker, b *batch) {
	var body bytes.Buffer
	body.WriteString(`{"docs":[`)
	n := 0
	for i := range b.items {
		it := &b.items[i]
		if it.idLen == 0 {
			continue
		}
		if n > 0 {
			body.WriteByte(',')
		}
		n++
		body.WriteString(`{"_index":`)
		body.Write(it.index(b.buf))
		body.WriteString(`,"_id":`)
		body.Write(it.id(b.buf))
		body.WriteByte('}')
	}
	body.WriteString(`]}`)
	found := map[string]bool{}
	var err error
	if n > 0 {
		found, err = s.indexedIDs(&body)
	}
	if n == 0 || err != nil {
		s.unconfirmed.Add(uint64(len(b.items)))
		if err != nil {
			s.logger.Warn("elasticsearch: cannot check which documents of a cut request were indexed; counted as unconfirmed",
				"documents", len(b.items), "error", err)
		}
		return
	}
	w.kept = w.kept[:0]
	var dup uint64
	for i := range b.items {
		it := &b.items[i]
		if it.idLen > 0 && found[unquote(it.index(b.buf))+"\x00"+unquote(it.id(b.buf))] {
			dup++
		} else {
			w.kept = append(w.kept, i)
		}
	}
	s.duplicates.Add(dup)
	s.unconfirmed.Add(uint64(len(w.kept) - (n - int(dup)))) // those without an id
	b.keep(w.kept)
	s.logger.Info("elasticsearch: checked the documents of a cut request", "indexed_after_all", dup, "not_indexed", len(b.items))
}

// indexedIDs reads, with one multi-get, which of the documents of body
// exist: the set of their index and id, joined by a NUL.
func (s *Sink) indexedIDs(body io.Reader) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(s.sendCtx, min(s.cfg.RequestTimeout.Duration, 10*time.Second))
	defer cancel()
	status, answer, err := s.do(ctx, esapi.MgetRequest{Body: body, Source: []string{"false"}})
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, errors.New(errorBody(status, answer))
	}
	var r struct {
		Docs []struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
			Found bool   `json:"found"`
		} `json:"docs"`
	}
	if err := json.Unmarshal(answer, &r); err != nil {
		return nil, fmt.Errorf("reading the multi-get answer: %w", err)
	}
	found := make(map[string]bool, len(r.Docs))
	for _, d := range r.Docs {
		if d.Found {
			found[d.Index+"\x00"+d.ID] = true
		}
	}
	return found, nil
}

// unquote reads a JSON string of a batch ("" if it is not one).
func unquote(raw []byte) string {
	var v string
	_ = json.Unmarshal(raw, &v)
	return v
}

// retryableRequest tells whether a bulk request that failed as a whole, or
// one document of it (err nil), may succeed later: unreachable, timed out,
// overloaded, a server error.
func retryableRequest(err error, status int) bool {
	return err != nil || status == http.StatusTooManyRequests || status >= 500
}

// bulk sends the batch and reads the answer, waiting RequestTimeout at most,
// and not past until unless it is zero.
func (s *Sink) bulk(w *worker, b *batch, until time.Time) (int, []byte, error) {
	timeout := s.cfg.RequestTimeout.Duration
	if !until.IsZero() {
		timeout = min(timeout, max(time.Until(until), time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(s.sendCtx, timeout)
	defer cancel()
	defer func(start time.Time) { s.latency.observe(time.Since(start)) }(time.Now())
	w.reader.Reset(b.buf)
	res, err := esapi.BulkRequest{Body: &w.reader, FilterPath: filterPath}.Do(ctx, s.client)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	w.resp.Reset()
	if _, err := w.resp.ReadFrom(res.Body); err != nil {
		return 0, nil, fmt.Errorf("reading the bulk answer: %w", err)
	}
	return res.StatusCode, w.resp.Bytes(), nil
}

// parse reads a 2xx bulk answer. An answer without errors is recognised
// without decoding its items.
func (s *Sink) parse(w *worker, body []byte, n int) error {
	head := body[:min(len(body), 64)]
	if bytes.Contains(head, []byte(`"errors":false`)) {
		w.allOK = true
		return nil
	}
	w.allOK = false
	w.parsed = bulkResponse{} // errors: a fresh decode, allocations do not matter
	if err := json.Unmarshal(body, &w.parsed); err != nil {
		return fmt.Errorf("unreadable bulk answer: %w", err)
	}
	// an answer that accounts for fewer documents than were sent (a proxy's "{}")
	// is not a success: the request is retried, then dead-lettered
	if len(w.parsed.Items) != n {
		return fmt.Errorf("the bulk answer has %d items for %d documents", len(w.parsed.Items), n)
	}
	return nil
}

// results counts the items of an answer, dead-letters the rejected ones and
// keeps those to retry.
func (s *Sink) results(w *worker, b *batch, last bool) {
	if w.allOK {
		s.indexed.Add(uint64(len(b.items)))
		b.keep(nil)
		return
	}
	w.kept = w.kept[:0]
	var indexed, duplicates uint64
	for i := range w.parsed.Items {
		r := w.parsed.Items[i].Create
		if r == nil {
			r = w.parsed.Items[i].Index
		}
		if r == nil {
			r = &bulkItem{Error: errorJSON("unknown_answer", "no index or create result for this document")}
		}
		it := &b.items[i]
		switch st := r.Status; {
		case st/100 == 2:
			indexed++
		case st == http.StatusConflict && it.create:
			duplicates++
		case retryableRequest(nil, st):
			if last && s.spool == nil {
				s.reject(w, b, it, st, r.Error, true)
			} else {
				w.kept = append(w.kept, i) // the spool takes them after the last attempt
			}
		default:
			s.reject(w, b, it, st, r.Error, false)
		}
	}
	s.indexed.Add(indexed)
	s.duplicates.Add(duplicates)
	s.flushDeadLetters(w)
	if len(w.kept) > 0 {
		if ok, suppressed := s.retrying.Allow(); ok {
			r := w.parsed.Items[w.kept[0]].Create
			if r == nil {
				r = w.parsed.Items[w.kept[0]].Index
			}
			e := parseError(r.Error)
			s.logger.Warn("elasticsearch: documents refused for overload, retrying", "documents", len(w.kept),
				"status", r.Status, "error_type", e.Type, "reason", e.Reason, "similar_not_logged", suppressed)
		}
	}
	b.keep(w.kept)
	if last && len(b.items) > 0 && s.spool != nil {
		s.toSpool(w, b)
	}
}

// giveUpAll rejects every document left in the batch with the same error.
func (s *Sink) giveUpAll(w *worker, b *batch, status int, errJSON []byte) {
	for i := range b.items {
		s.reject(w, b, &b.items[i], status, errJSON, true)
	}
	s.flushDeadLetters(w)
	b.keep(nil)
}

// reject logs (rate-limited) a document that will not be indexed and queues it
// for the dead-letter file, or counts it as failed.
func (s *Sink) reject(w *worker, b *batch, it *item, status int, errJSON []byte, gaveUp bool) {
	if len(errJSON) == 0 {
		errJSON = errorJSON("unknown", "HTTP "+strconv.Itoa(status)+" without an error")
	}
	l, msg := &s.rejected, "elasticsearch: document rejected"
	if gaveUp {
		l, msg = &s.gaveUp, "elasticsearch: document not delivered"
	}
	if ok, suppressed := l.Allow(); ok {
		e := parseError(errJSON)
		var id string
		if raw := it.id(b.buf); raw != nil {
			_ = json.Unmarshal(raw, &id)
		}
		s.logger.Warn(msg, "index", string(bytes.Trim(it.index(b.buf), `"`)), "id", id,
			"status", status, "error_type", e.Type, "reason", e.Reason, "similar_not_logged", suppressed)
	}
	if s.deadLetter == nil {
		s.failed.Add(1)
		return
	}
	w.dl = appendDeadLetter(w.dl, time.Now(), b, it, status, errJSON)
	w.dlN++
}

// flushDeadLetters writes the records of this round in one go.
func (s *Sink) flushDeadLetters(w *worker) {
	if w.dlN == 0 {
		return
	}
	n, err := s.deadLetter.write(w.dl, w.dlN)
	s.deadLettered.Add(uint64(n))
	if err != nil {
		s.failed.Add(uint64(w.dlN - n))
		s.logger.Error("elasticsearch: cannot write to the dead-letter file; documents lost",
			"file", s.cfg.DeadLetterFile, "documents", w.dlN-n, "written", n, "error", err)
	}
	w.dl, w.dlN = w.dl[:0], 0
}

// appendDeadLetter appends one dead-letter record:
// {"time":…,"index":…,"id":…,"status":…,"error":{…},"document":{…}}.
func appendDeadLetter(dst []byte, now time.Time, b *batch, it *item, status int, errJSON []byte) []byte {
	dst = append(dst, `{"time":"`...)
	dst = appendTimestamp(dst, now)
	dst = append(dst, `","index":`...)
	dst = append(dst, it.index(b.buf)...)
	dst = append(dst, `,"id":`...)
	if id := it.id(b.buf); id != nil {
		dst = append(dst, id...)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"error":`...)
	dst = appendCompact(dst, errJSON)
	dst = append(dst, `,"document":`...)
	dst = append(dst, it.document(b.buf)...)
	return append(dst, "}\n"...)
}

func errorJSON(typ, reason string) []byte {
	b, _ := json.Marshal(esError{Type: typ, Reason: reason})
	return b
}

// answerError is the error object of a failed request's answer, or one made
// from its status and text.
func answerError(status int, body []byte) []byte {
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &r) == nil && len(r.Error) > 0 && r.Error[0] == '{' {
		return r.Error
	}
	return errorJSON("http_error", errorBody(status, body))
}

func stoppedError(why string) []byte {
	return errorJSON("stopped", "the sink stopped before the document could be delivered: "+why)
}

func parseError(raw []byte) esError {
	var e esError
	if json.Unmarshal(raw, &e) != nil || e.Type == "" {
		e.Type, e.Reason = "unknown", string(raw)
	}
	return e
}

// backoff is the wait before attempt (1, 2, …): BackoffMin doubled each time,
// capped at BackoffMax, with its upper half random.
func (s *Sink) backoff(attempt int) time.Duration {
	d := s.cfg.BackoffMin
	for i := 1; i < attempt && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, or reports false if the sink gives up first.
func (s *Sink) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.sendCtx.Done():
		return false
	}
}
