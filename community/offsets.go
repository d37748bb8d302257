package community

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// deepOffset is where paging by loaded_messages switches from SQL's OFFSET,
// which walks every skipped row, to the in-memory id index.
const deepOffset = 1000

// offsetIndex lists a channel's message seqs in order, so that "skip the n
// newest" becomes an index lookup and then a range scan. It is built on the
// first deep page, by the reader that asked for it, and kept current by
// the writer's after-commit hooks; 1,000,000 messages cost 8 MB.
//
// The build reads the whole channel, which takes long on a big one, so it
// holds no lock the writer needs: changes committed meanwhile queue in
// pending and are applied when the read is in. mu is only ever held for
// memory work.
type offsetIndex struct {
	mu       sync.Mutex
	seqs     []int64
	building bool
	pending  []indexChange
	// ready is closed when the build is over; err says how it ended.
	ready chan struct{}
	err   error
}

type indexChange struct {
	seq     int64
	removed bool
}

type offsetIndexes struct {
	mu   sync.Mutex
	byID map[int64]*offsetIndex
}

// testHookIndexRead runs in a build between reading the ids and applying
// them; tests use it to hold a build open.
var testHookIndexRead func()

func (o *offsetIndexes) get(ch int64) *offsetIndex {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byID[ch]
}

// added and removed run after each commit, in commit order. They never
// wait for a build.
func (o *offsetIndexes) added(ch int64, seq int64) {
	if idx := o.get(ch); idx != nil {
		idx.change(indexChange{seq: seq})
	}
}

func (o *offsetIndexes) removed(ch int64, seq int64) {
	if idx := o.get(ch); idx != nil {
		idx.change(indexChange{seq: seq, removed: true})
	}
}

func (o *offsetIndexes) drop(ch int64) {
	o.mu.Lock()
	delete(o.byID, ch)
	o.mu.Unlock()
}

func (o *offsetIndexes) dropIf(ch int64, idx *offsetIndex) {
	o.mu.Lock()
	if o.byID[ch] == idx {
		delete(o.byID, ch)
	}
	o.mu.Unlock()
}

func (idx *offsetIndex) change(c indexChange) {
	idx.mu.Lock()
	defer idx.mu.Unlock()
	if idx.building {
		idx.pending = append(idx.pending, c)
		return
	}
	idx.apply(c)
}

// apply is idempotent: the build's read may or may not already have seen
// a change that was also queued in pending.
func (idx *offsetIndex) apply(c indexChange) {
	i, found := slices.BinarySearch(idx.seqs, c.seq)
	switch {
	case c.removed && found:
		idx.seqs = slices.Delete(idx.seqs, i, i+1)
	case !c.removed && !found:
		idx.seqs = slices.Insert(idx.seqs, i, c.seq)
	}
}

// offsetIndex returns the channel's index, reading it from the database
// the first time. It is registered before the read, so that every change
// committed after the read's snapshot reaches it through pending. Readers
// that find a build under way wait for it; if it fails (its reader hung
// up, say), they build again themselves.
func (c *Community) offsetIndex(ctx context.Context, ch int64) (*offsetIndex, error) {
	o := &c.offsets
	for {
		o.mu.Lock()
		if o.byID == nil {
			o.byID = map[int64]*offsetIndex{}
		}
		idx := o.byID[ch]
		fresh := idx == nil
		if fresh {
			idx = &offsetIndex{building: true, ready: make(chan struct{})}
			o.byID[ch] = idx
		}
		o.mu.Unlock()
		if fresh {
			idx.err = c.buildIndex(ctx, ch, idx)
			if idx.err != nil {
				o.dropIf(ch, idx)
			}
			close(idx.ready)
			if idx.err != nil {
				return nil, idx.err
			}
			return idx, nil
		}
		select {
		case <-idx.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if idx.err == nil {
			return idx, nil
		}
	}
}

func (c *Community) buildIndex(ctx context.Context, ch int64, idx *offsetIndex) error {
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT seq FROM messages WHERE channel_id = $1 ORDER BY seq`, ch)
	if err != nil {
		return fmt.Errorf("community: index messages: %w", err)
	}
	defer rows.Close()
	var seqs []int64
	var seq int64
	for rows.Next() {
		if err := rows.Scan(&seq); err != nil {
			return fmt.Errorf("community: index messages: %w", err)
		}
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("community: index messages: %w", err)
	}
	if testHookIndexRead != nil {
		testHookIndexRead()
	}
	idx.mu.Lock()
	defer idx.mu.Unlock()
	idx.seqs = seqs
	for _, change := range idx.pending {
		idx.apply(change)
	}
	idx.pending, idx.building = nil, false
	return nil
}

// newestAt returns the seq of the message with offset newer ones after it,
// and false when offset is past the oldest message.
func (idx *offsetIndex) newestAt(offset int) (int64, bool) {
	idx.mu.Lock()
	defer idx.mu.Unlock()
	i := len(idx.seqs) - 1 - offset
	if i < 0 {
		return 0, false
	}
	return idx.seqs[i], true
}
