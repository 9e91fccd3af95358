package cache

import (
	"encoding/binary"

	"github.com/flowdex/flowdex/aggregate/flow"
)

// An entry's key is the bin (8 bytes, with history) followed by the
// aggregated primitives packed by flow.KeyCodec: in Set order, each in a
// fixed width. The encoding is unambiguous, so equal keys mean equal
// aggregates.

// maxKey bounds an encoded key: the bin, every primitive of pmacct's that
// flowdex keeps and the custom ones take 583 bytes (a test keeps the two in
// step).
const maxKey = 592

// encode appends the key of k in bin to b.
func (c *Cache) encode(b []byte, k *flow.Key, bin int64) []byte {
	if c.slot > 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(bin))
	}
	return c.codec.Append(b, k)
}

// decode reads a key written by encode into k, which must be zero, and
// returns the bin.
func (c *Cache) decode(b []byte, k *flow.Key) (bin int64) {
	if c.slot > 0 {
		bin = int64(binary.BigEndian.Uint64(b))
		b = b[8:]
	}
	c.codec.Decode(b, k)
	return bin
}
