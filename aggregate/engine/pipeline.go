package engine

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"hash/fnv"
	"io"
	"log/slog"
	"time"

	"github.com/flowdex/flowdex/aggregate/enrich"
	"github.com/flowdex/flowdex/aggregate/timestamp"
	"github.com/flowdex/flowdex/aggregate/transform"
	"github.com/flowdex/flowdex/collector/pmacct"
)

// pipeline turns records into documents for its outputs: enrichment, then the
// p2es transformations. A pipeline that aggregates flows is a flowPipeline
// around one (flows.go).
type pipeline struct {
	name     string
	enricher *enrich.Enricher   // nil: no enrichment
	program  *transform.Program // nil: no transformations
	outputs  []*namedOutput
	times    []string // timestamp_fields: where a record's time is read
}

// consume sends every record of r through pipeline p. ids names the input for
// document ids: the same line of the same origin gets the same id, so a retried or
// repeated delivery cannot index it twice. A record's time is read from it
// before enrichment and transformations, naive times in zone.
func (p *pipeline) consume(ctx context.Context, r *pmacct.Reader, ids *idMaker, zone *time.Location, c *counters, logger *slog.Logger) error {
	last := r.Stats()
	for n := 0; ; n++ {
		if n&255 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := r.Next()
		// the counters move as lines are read (a followed file may not end for days)
		if st := r.Stats(); st.Lines != last.Lines {
			c.lines.Add(uint64(st.Lines - last.Lines))
			c.badLines.Add(uint64(st.BadLines - last.BadLines))
			c.invalidUTF8.Add(uint64(st.InvalidUTF8 - last.InvalidUTF8))
			last = st
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // the read was interrupted
			}
			return err
		}
		if rec.Kind != pmacct.Data {
			c.markers.Add(1)
			continue
		}
		c.pmacctRecords.Add(1)
		c.records.Add(1)
		id := ids.make(rec.Line, rec.Raw)
		t, _ := timestamp.Of(rec.Doc, p.times, zone) // none: the time of writing
		if p.enricher != nil {                       // before the transformations, which may rename what it adds
			p.enricher.Enrich(rec.Doc)
		}
		if p.program != nil {
			p.program.Apply(rec.Doc)
		}
		for _, o := range p.outputs {
			if err := o.Write(ctx, rec.Doc, id, t); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.writeErrors.Add(1)
				logger.Error("write failed", "pipeline", p.name, "output", o.name, "line", rec.Line, "error", err)
			}
		}
	}
}

// idMaker derives document ids from the origin, the line number and the
// line: the origin's hash, the line number (fixed width) and the line's hash.
// The ids of one origin share their start and grow with the line, which is
// what Elasticsearch checks fastest (a create looks the id up first): random
// ids cost it a quarter more CPU per document in bench/'s ingest scenario.
// The line's hash keeps a rewritten line from taking an indexed one's id.
//
// For a Kafka partition (the origin names topic and partition) the message's
// offset comes before the line in the message: offset, not -1.
type idMaker struct {
	h      hash.Hash64
	prefix []byte // base64 of the origin's hash
	buf    []byte
	sum    [8]byte
	offset int64  // of the Kafka message read; -1 for a file
	given  string // the id the Kafka message carried, for its one record; "" if none
}

func newIDMaker(origin string) *idMaker {
	h := fnv.New64a()
	h.Write([]byte(origin))
	return &idMaker{h: h, prefix: base64.RawURLEncoding.AppendEncode(nil, h.Sum(nil)), offset: -1}
}

func (m *idMaker) make(line int, raw []byte) string {
	if m.given != "" {
		return m.given
	}
	m.buf = append(m.buf[:0], m.prefix...)
	if m.offset >= 0 {
		m.buf = appendHex(m.buf, uint64(m.offset), 16)
		m.buf = appendHex(m.buf, uint64(line), 6) // 16 million records a message
	} else {
		m.buf = appendHex(m.buf, uint64(line), 10) // a trillion lines
	}
	m.h.Reset()
	m.h.Write(raw)
	binary.BigEndian.PutUint64(m.sum[:], m.h.Sum64()) // Sum's bytes, without its allocation
	m.buf = base64.RawURLEncoding.AppendEncode(m.buf, m.sum[:])
	return string(m.buf)
}

// appendHex appends the digits low hexadecimal digits of v.
func appendHex(b []byte, v uint64, digits int) []byte {
	const hex = "0123456789abcdef"
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		b = append(b, hex[v>>shift&0xf])
	}
	return b
}

// flush ends a purge: what the outputs hold goes out now.
func (p *pipeline) flush(ctx context.Context, logger *slog.Logger) {
	for _, o := range p.outputs {
		if err := o.Flush(ctx); err != nil {
			logger.Error("flush failed", "pipeline", p.name, "output", o.name, "error", err)
		}
	}
}
