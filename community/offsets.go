package community

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"
)

// deepOffset is where paging by loaded_messages switches from SQL's OFFSET,
// which walks every skipped row, to the in-memory id index.
const deepOffset = 1000

// offsetIndex lists a channel's message ids in order, so that "skip the n
// newest" becomes an index lookup and then a range scan. It is built on the
// first deep page and kept current by the writer; 1,000,000 messages cost
// 16 MB.
type offsetIndex struct {
	mu  sync.Mutex
	ids []uuid.UUID
}

type offsetIndexes struct {
	mu    sync.Mutex
	byID  map[int64]*offsetIndex
	built map[int64]bool
}

func (o *offsetIndexes) get(ch int64) *offsetIndex {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byID == nil {
		o.byID = map[int64]*offsetIndex{}
	}
	return o.byID[ch]
}

// added and removed run after each commit, in commit order.
func (o *offsetIndexes) added(ch int64, id uuid.UUID) {
	if idx := o.get(ch); idx != nil {
		idx.mu.Lock()
		// A build may already have read this id from the database.
		if n := len(idx.ids); n == 0 || bytes.Compare(idx.ids[n-1][:], id[:]) < 0 {
			idx.ids = append(idx.ids, id)
		}
		idx.mu.Unlock()
	}
}

func (o *offsetIndexes) removed(ch int64, id uuid.UUID) {
	if idx := o.get(ch); idx != nil {
		idx.mu.Lock()
		if i, found := slices.BinarySearchFunc(idx.ids, id, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }); found {
			idx.ids = slices.Delete(idx.ids, i, i+1)
		}
		idx.mu.Unlock()
	}
}

func (o *offsetIndexes) drop(ch int64) {
	o.mu.Lock()
	delete(o.byID, ch)
	o.mu.Unlock()
}

// offsetIndex returns the channel's index, reading it from the database
// the first time. Writes that land during the read are applied by added and
// removed once the index is registered, so it is registered first.
func (c *Community) offsetIndex(ctx context.Context, ch int64) (*offsetIndex, error) {
	o := &c.offsets
	o.mu.Lock()
	if o.byID == nil {
		o.byID = map[int64]*offsetIndex{}
	}
	idx := o.byID[ch]
	fresh := idx == nil
	if fresh {
		idx = &offsetIndex{}
		idx.mu.Lock() // held until built: added/removed wait for it
		o.byID[ch] = idx
	}
	o.mu.Unlock()
	if !fresh {
		return idx, nil
	}
	defer idx.mu.Unlock()
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT id FROM messages WHERE channel_id = ? ORDER BY id`, ch)
	if err != nil {
		c.offsets.drop(ch)
		return nil, fmt.Errorf("community: index messages: %w", err)
	}
	defer rows.Close()
	var raw []byte
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			c.offsets.drop(ch)
			return nil, fmt.Errorf("community: index messages: %w", err)
		}
		idx.ids = append(idx.ids, uuid.UUID(raw))
	}
	if err := rows.Err(); err != nil {
		c.offsets.drop(ch)
		return nil, err
	}
	return idx, nil
}

// newestAt returns the id of the message with offset newer ones after it,
// and false when offset is past the oldest message.
func (idx *offsetIndex) newestAt(offset int) (uuid.UUID, bool) {
	idx.mu.Lock()
	defer idx.mu.Unlock()
	i := len(idx.ids) - 1 - offset
	if i < 0 {
		return uuid.UUID{}, false
	}
	return idx.ids[i], true
}
