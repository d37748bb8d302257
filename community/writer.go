package community

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/iotad/iotad/internal/bus"
	"github.com/iotad/iotad/internal/db"
)

// maxBatch bounds how many writes share one transaction.
const maxBatch = 512

// writer is the single writer of the community store in this process (on
// PostgreSQL, other nodes have theirs; the database orders them, see
// commit). Writes that arrive while a commit is in flight wait and then
// share the next transaction (group commit), so the cost of a durable
// commit is paid once per batch, not per message; a write that finds the
// writer idle waits up to the commit window for others to share its
// transaction (see run). Each write runs in its own savepoint: one failing
// write does not undo the others, and a caller that hangs up mid-batch
// cannot undo them either: the batch runs under the writer's own context,
// and db's writer connection never interrupts a statement for its context
// (an interrupted statement would roll back the whole transaction). A
// caller gone before its turn is skipped. The after hooks run after the
// commit, in commit order, in this goroutine; they hand events to each
// community's bus subscription, which is what orders message_live updates.
type writer struct {
	db      *db.DB
	reqs    chan *writeOp
	closing chan struct{}
	stop    sync.Once
	done    chan struct{}
	// commitSeconds and batchSize are observed once per transaction.
	commitSeconds prometheus.Histogram
	batchSize     prometheus.Histogram
	// events, when not nil, holds the bus while a commit's after hooks
	// publish, so that its events reach each listener as one run.
	events bus.Holder
	// carried says the last commit's hold on events is still taken: writes
	// were queued when it ended, so its events wait for the next commit's
	// and both leave as one run (see releaseHold).
	carried bool
	// committed, when not nil, runs once each transaction is over,
	// before the after hooks (the member cache drops what it changed).
	committed func()
	// foreign, when not nil, runs inside a transaction, before its writes,
	// when another connection has committed to the store since this
	// writer's last transaction (SQLite's data_version moved): what this
	// process caches of the store may be stale. dataVersion is the last
	// value seen, and cachesFresh says the transaction in flight has
	// checked it; both are only touched in the writer's goroutine, which
	// runs the writes.
	foreign     func()
	dataVersion int64
	cachesFresh bool
	// window is how long a write that finds the writer idle waits for
	// others to share its transaction; 0 waits for none.
	window time.Duration
	// committedAt is when the last batch committed (see run).
	committedAt time.Time
}

// DefaultCommitWindow is serve's --commit-window. A burst of writes (people
// answering one message, a room's senders that post together) reaches an
// idle writer one by one, microseconds apart; without a window the first
// commits alone and the rest wait for its commit and then make a second,
// so a burst costs two durable commits and its events often leave in two
// runs, each a write to every socket. A millisecond gathers such a burst
// into one commit and one run, and is less than one commit takes on the
// disk measured in docs/BENCHMARKS.md ("A commit window for bursts").
const DefaultCommitWindow = time.Millisecond

// dataVersionQuery answers a number that changes when another connection
// commits to the database (on this connection's own commits it does not).
const dataVersionQuery = "PRAGMA data_version"

// checkForeign runs foreign if another connection committed since the
// last transaction; tx is the writer's, so none can commit during it.
func (w *writer) checkForeign(ctx context.Context, tx *sql.Tx) error {
	var v int64
	if err := w.db.Row(ctx, tx, dataVersionQuery).Scan(&v); err != nil {
		return fmt.Errorf("community: read data_version: %w", err)
	}
	if v != w.dataVersion {
		w.dataVersion = v
		w.foreign()
	}
	w.cachesFresh = true
	return nil
}

type writeOp struct {
	ctx   context.Context
	fn    func(tx *sql.Tx) error
	after func()
	err   error
	done  chan error
}

// errClosed answers a write that reaches the writer after Close.
var errClosed = errors.New("community: store is closed")

// collectors are the writer's histograms, for a registry.
func (w *writer) collectors() []prometheus.Collector {
	return []prometheus.Collector{w.commitSeconds, w.batchSize}
}

func newWriter(d *db.DB, window time.Duration, events bus.Holder, committed, foreign func()) *writer {
	w := &writer{db: d, window: window, events: events, committed: committed, foreign: foreign, reqs: make(chan *writeOp, maxBatch), closing: make(chan struct{}), done: make(chan struct{}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "iotad_commit_seconds",
			Help:    "How long one group commit of the community store took, its writes and the COMMIT together.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "iotad_commit_batch_writes",
			Help:    "How many writes shared one group commit of the community store.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 to maxBatch
		}),
	}
	go w.run()
	return w
}

// do runs fn in a write transaction and, once committed, after (if any).
func (w *writer) do(ctx context.Context, fn func(tx *sql.Tx) error, after func()) error {
	op := &writeOp{ctx: ctx, fn: fn, after: after, done: make(chan error, 1)}
	select {
	case w.reqs <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.closing:
		return errClosed
	}
	// Wait even if ctx ends: the write is skipped only if ctx ended before
	// its turn, so the caller never reports failure for a write that
	// committed.
	select {
	case err := <-op.done:
		return err
	case <-w.done:
		// Queued as the writer stopped: it ran, and answered before done
		// closed, or it never will.
		select {
		case err := <-op.done:
			return err
		default:
			return errClosed
		}
	}
}

// close runs the writes already queued and stops. reqs is never closed, so
// a write racing close gets errClosed, not a send on a closed channel.
func (w *writer) close() {
	w.stop.Do(func() { close(w.closing) })
	<-w.done
}

// run commits the writes as they come. A write that finds the writer
// idle, and idle for a window at least, opens the commit window, and what
// arrives within it shares the write's transaction. Writes that come
// sooner after a commit are a flow, not the start of a burst: group
// commit batches them without waiting, and those queued while a commit
// ran have waited already. (In the busy room of docs/BENCHMARKS.md, a
// flow of a write every millisecond or less, waiting made the fan-out
// dearer and its p99 longer.)
func (w *writer) run() {
	defer close(w.done)
	batch := make([]*writeOp, 0, maxBatch)
	for {
		select {
		case op := <-w.reqs:
			window := w.window
			if time.Since(w.committedAt) < window {
				window = 0
			}
			batch = w.batch(batch, op, window)
		case <-w.closing:
			for {
				select {
				case op := <-w.reqs:
					batch = w.batch(batch, op, 0)
				default:
					return
				}
			}
		}
	}
}

// batch commits op with the writes queued behind it and those arriving
// within window, up to maxBatch. Closing ends the window: the writes
// gathered are committed, not dropped.
func (w *writer) batch(batch []*writeOp, op *writeOp, window time.Duration) []*writeOp {
	batch = append(batch[:0], op)
drain:
	for len(batch) < maxBatch {
		select {
		case more := <-w.reqs:
			batch = append(batch, more)
		default:
			break drain
		}
	}
	if window > 0 && len(batch) < maxBatch {
		t := time.NewTimer(window)
	gather:
		for len(batch) < maxBatch {
			select {
			case more := <-w.reqs:
				batch = append(batch, more)
			case <-t.C:
				break gather
			case <-w.closing:
				break gather
			}
		}
		t.Stop()
	}
	w.commit(batch)
	w.committedAt = time.Now()
	clear(batch)
	return batch
}

// Every write runs in a savepoint of its own. The statements are prepared
// once (Open's PrepareWrites): parsing them again for every write was a
// tenth of the writer's CPU.
const (
	savepoint  = "SAVEPOINT op"
	rollbackTo = "ROLLBACK TO op"
	release    = "RELEASE op"
)

// releaseHold ends a commit's hold on the bus, or carries it into the
// next commit when writes are already queued for one. A burst of writes
// (senders that post together) is split by the commit in flight into two
// commits, the first often a single write; carried, their events reach
// every socket as one run, and each socket writes them in one system
// call instead of two, which is most of what a delivery costs. A hold is
// carried across one commit at most, so an event waits for no more than
// the commit after its own, and never while the writer is idle: the
// queued writes are the writer's next batch.
func (w *writer) releaseHold() {
	if w.carried {
		w.carried = false
		w.events.Release()
		w.events.Release()
		return
	}
	if len(w.reqs) > 0 {
		w.carried = true
		return
	}
	w.events.Release()
}

// maxAttempts bounds how often one write is tried when PostgreSQL aborts
// it to break a deadlock with another node's transaction.
const maxAttempts = 4

// commit commits batch and answers every write in it. On PostgreSQL a
// write can deadlock with another node's transaction (each bumping the
// seqs of two channels, in opposite orders): the server fails one
// statement, the write's savepoint is rolled back, and it is tried again
// in a transaction of its own once the others' commit has released their
// locks. Writes have no effects outside their transaction (the after hooks
// do that), so running one again is safe.
func (w *writer) commit(batch []*writeOp) {
	for attempt := 1; len(batch) > 0; attempt++ {
		batch = w.commitOnce(batch, attempt < maxAttempts)
	}
}

// commitOnce runs batch in one transaction, answers its writes and
// returns those to try again (only when retry is set).
func (w *writer) commitOnce(batch []*writeOp, retry bool) []*writeOp {
	ctx := context.Background()
	start := time.Now()
	err := w.db.Tx(ctx, func(tx *sql.Tx) error {
		if w.foreign != nil {
			if err := w.checkForeign(ctx, tx); err != nil {
				return err
			}
		}
		for _, op := range batch {
			if err := op.ctx.Err(); err != nil {
				op.err = fmt.Errorf("community: write skipped, its caller left: %w", err)
				continue
			}
			if _, err := w.db.Exec(ctx, tx, savepoint); err != nil {
				return err
			}
			op.err = op.fn(tx)
			if op.err != nil {
				if _, err := w.db.Exec(ctx, tx, rollbackTo); err != nil {
					return err
				}
			}
			if _, err := w.db.Exec(ctx, tx, release); err != nil {
				return err
			}
		}
		return nil
	})
	w.cachesFresh = false
	if w.commitSeconds != nil { // nil in tests that build a bare writer
		w.commitSeconds.Observe(time.Since(start).Seconds())
		w.batchSize.Observe(float64(len(batch)))
	}
	if w.committed != nil {
		w.committed()
	}
	if err != nil && retry && db.Retryable(err) {
		return batch
	}
	var again []*writeOp
	if w.events != nil {
		w.events.Hold()
		defer w.releaseHold()
	}
	for _, op := range batch {
		if err != nil {
			op.done <- fmt.Errorf("community: commit: %w", err)
			continue
		}
		if retry && db.Retryable(op.err) {
			again = append(again, op)
			continue
		}
		if op.err == nil && op.after != nil {
			op.after()
		}
		op.done <- op.err
	}
	return again
}
