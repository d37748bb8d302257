package community

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/iotad/iotad/internal/db"
)

// How the SQLite search index catches up (migration 0010). Indexing a
// message alone was most of the CPU of storing it: FTS5 writes a segment
// per transaction, so a batch of messages costs little more than one.
// indexDelay bounds how long a message waits for company; indexAt starts a
// batch at once when enough have gathered; indexBatch bounds one write, so
// a backlog never holds the writer for long. A search indexes what is
// pending first, so the delay decides only how often the index commits,
// and those commits come at an idle writer, with an fsync of their own: at
// 500 ms they were one commit in seven in the room of 100 of
// docs/BENCHMARKS.md ("Fewer index commits").
const (
	indexDelay = 5 * time.Second
	indexAt    = 256
	indexBatch = 1024
)

// searchIndexer moves SQLite's pending rids into messages_fts through the
// writer, as writes of their own that share group commits with the
// others. On PostgreSQL it is nil: the tsvector is made at insert (see
// migration 0010's PostgreSQL half).
type searchIndexer struct {
	w *writer

	mu      sync.Mutex
	noted   int  // messages committed since the last batch began
	pending bool // search_pending may hold rids
	timer   *time.Timer
	closed  bool
	running sync.WaitGroup
}

const (
	pendingUpTo = `SELECT max(rid) FROM (SELECT rid FROM search_pending ORDER BY rid LIMIT $1)`
	indexUpTo   = `INSERT INTO messages_fts(rowid, body)
		SELECT p.rid, m.body FROM search_pending p
		CROSS JOIN message_search s ON s.rid = p.rid
		CROSS JOIN messages m ON m.channel_id = s.channel_id AND m.seq = s.seq
		WHERE p.rid <= $1 ORDER BY p.rid`
	unpendUpTo = `DELETE FROM search_pending WHERE rid <= $1`
)

// newSearchIndexer is d's indexer, nil on PostgreSQL. Rids left pending by
// a previous run (stopped before its batch, or killed) are indexed at the
// first search or the first message.
func newSearchIndexer(ctx context.Context, d *db.DB, w *writer) (*searchIndexer, error) {
	if d.Dialect != db.SQLite {
		return nil, nil
	}
	x := &searchIndexer{w: w}
	err := d.Read.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM search_pending)`).Scan(&x.pending)
	if err != nil {
		return nil, fmt.Errorf("community: search index: %w", err)
	}
	return x, nil
}

// added notes that a message was committed. It runs in the writer's after
// hook, so a batch it starts runs on a goroutine of its own: the writer
// cannot wait for itself.
func (x *searchIndexer) added() {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.noted++
	x.pending = true
	if x.closed {
		return
	}
	switch {
	case x.noted >= indexAt:
		if x.timer != nil && x.timer.Stop() {
			x.running.Done()
		}
		x.start(0)
	case x.timer == nil:
		x.start(indexDelay)
	}
}

// start runs catchUp after delay; x.mu is held.
func (x *searchIndexer) start(delay time.Duration) {
	x.running.Add(1)
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		defer x.running.Done()
		x.mu.Lock()
		if x.timer == t {
			x.timer = nil
		}
		x.mu.Unlock()
		if err := x.catchUp(context.Background()); err != nil && !errors.Is(err, errClosed) {
			slog.Warn("search index: batch failed; the next search or message retries", slog.Any("err", err))
		}
	})
	x.timer = t
}

// catchUp indexes every pending rid, a batch per write. A search calls it
// first, so what it finds includes every message acknowledged before it.
func (x *searchIndexer) catchUp(ctx context.Context) error {
	if x == nil {
		return nil
	}
	x.mu.Lock()
	if !x.pending {
		x.mu.Unlock()
		return nil
	}
	x.noted = 0
	x.mu.Unlock()
	for {
		more, err := x.batch(ctx)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// batch indexes up to indexBatch pending rids in one write and reports
// whether more are pending. pending is cleared only by a write that found
// none left, in its after hook, and set again by any message committed
// after it, so a message is never left pending with pending false.
func (x *searchIndexer) batch(ctx context.Context) (bool, error) {
	var more bool
	err := x.w.do(ctx, func(tx *sql.Tx) error {
		var upTo sql.NullInt64
		if err := tx.QueryRowContext(ctx, pendingUpTo, indexBatch).Scan(&upTo); err != nil {
			return fmt.Errorf("community: search index: %w", err)
		}
		if !upTo.Valid {
			return nil
		}
		if _, err := tx.ExecContext(ctx, indexUpTo, upTo.Int64); err != nil {
			return fmt.Errorf("community: search index: %w", err)
		}
		if _, err := tx.ExecContext(ctx, unpendUpTo, upTo.Int64); err != nil {
			return fmt.Errorf("community: search index: %w", err)
		}
		return tx.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM search_pending)`).Scan(&more)
	}, func() {
		if !more {
			x.mu.Lock()
			x.pending = x.noted > 0
			x.mu.Unlock()
		}
	})
	return more, err
}

// close stops the timers and waits for a batch under way; rids still
// pending are indexed after the next start.
func (x *searchIndexer) close() {
	if x == nil {
		return
	}
	x.mu.Lock()
	x.closed = true
	if x.timer != nil && x.timer.Stop() {
		x.running.Done()
	}
	x.timer = nil
	x.mu.Unlock()
	x.running.Wait()
}
