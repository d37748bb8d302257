package bus

import (
	"encoding/binary"
	"errors"
)

// batchMark opens a NATS message that carries several encodings of one
// subject: the mark, then each encoding after its length as a uvarint. No
// single encoding starts with it: both of iotad's are JSON objects, and
// 0xFF is never the first byte of UTF-8 text.
const batchMark = 0xFF

// batches packs items (encodings of one subject, in publish order) into
// as few NATS messages as fit maxPayload each, in order. A message of one
// item is that item unchanged, so a lone event crosses as before; an item
// too large to share a message goes alone (and NATS refuses it as it
// would have before).
func batches(items [][]byte, maxPayload int) [][]byte {
	if len(items) == 1 {
		return items
	}
	var out [][]byte
	var cur []byte
	var first []byte // cur's first item, sent as itself if none joins it
	n := 0           // items in cur
	flush := func() {
		switch {
		case n == 1:
			out = append(out, first)
		case n > 1:
			out = append(out, cur)
		}
		cur, n = nil, 0
	}
	for _, it := range items {
		if n > 0 && len(cur)+binary.MaxVarintLen64+len(it) > maxPayload {
			flush()
		}
		if n == 0 {
			cur, first = []byte{batchMark}, it
		}
		cur = binary.AppendUvarint(cur, uint64(len(it)))
		cur = append(cur, it...)
		n++
	}
	flush()
	return out
}

var errBadBatch = errors.New("bus: malformed batch")

// splitBatch is the inverse of batches for one message that starts with
// batchMark: the encodings it carries, in order, as slices of data.
func splitBatch(data []byte) ([][]byte, error) {
	if len(data) == 0 || data[0] != batchMark {
		return nil, errBadBatch
	}
	var items [][]byte
	for rest := data[1:]; len(rest) > 0; {
		size, k := binary.Uvarint(rest)
		if k <= 0 || size > uint64(len(rest)-k) {
			return nil, errBadBatch
		}
		rest = rest[k:]
		items = append(items, rest[:size:size])
		rest = rest[size:]
	}
	if len(items) == 0 {
		return nil, errBadBatch
	}
	return items, nil
}
