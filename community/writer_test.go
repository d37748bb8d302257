package community

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/iotad/iotad/internal/bus"
	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/db/dbtest"
)

var hangUp struct {
	mu     sync.Mutex
	cancel context.CancelFunc
}

func init() {
	// hang_up(x) cancels the context in hangUp when x is 1: a client
	// disconnecting while its statement runs.
	sqlite.MustRegisterScalarFunction("hang_up", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if args[0] == int64(1) {
			hangUp.mu.Lock()
			if hangUp.cancel != nil {
				hangUp.cancel()
			}
			hangUp.mu.Unlock()
		}
		return args[0], nil
	})
}

// TestDisconnectingClientCannotFailItsGroupCommit: three writes share one
// transaction; the client of the second hangs up while its statement
// runs. The first and third must still commit and be acknowledged.
func TestDisconnectingClientCannotFailItsGroupCommit(t *testing.T) {
	s, c, _ := openTest(t, db.SyncNormal)
	ctx := context.Background()
	if err := c.CreateDefaultChannels(ctx); err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Find("General", "general")
	clientCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	hangUp.mu.Lock()
	hangUp.cancel = cancel
	hangUp.mu.Unlock()
	defer func() {
		hangUp.mu.Lock()
		hangUp.cancel = nil
		hangUp.mu.Unlock()
	}()

	insert := func(ctx context.Context, body string) func(tx *sql.Tx) error {
		return func(tx *sql.Tx) error {
			var seq int64
			var last []byte
			if err := tx.QueryRowContext(ctx, nextSeq(s.db), ch.ID).Scan(&seq, &last); err != nil {
				return err
			}
			id := s.ids.next(s.now(), seq)
			_, err := tx.ExecContext(ctx, insertMessage, ch.ID, seq, id[:], "someone", body, s.now().UnixMilli())
			return err
		}
	}
	acked := map[string]bool{}
	op := func(ctx context.Context, body string, fn func(tx *sql.Tx) error) *writeOp {
		return &writeOp{ctx: ctx, fn: fn, after: func() { acked[body] = true }, done: make(chan error, 1)}
	}
	first := op(ctx, "first", insert(ctx, "first"))
	// The thousands of rows after the one that hangs up give the driver
	// time to act on the cancellation while the statement still runs.
	gone := op(clientCtx, "gone", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(clientCtx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
			INSERT INTO channel_state(channel_id, key, value) SELECT $1, 'k' || hang_up(i), 'v' FROM n`, ch.ID)
		return err
	})
	third := op(ctx, "third", insert(ctx, "third"))

	// The batch as the writer goroutine would run it, built by hand so
	// that all three are in it for certain.
	w := &writer{db: s.db}
	w.commit([]*writeOp{first, gone, third})
	t.Logf("the disconnected client's write: %v", <-gone.done)
	for _, o := range []*writeOp{first, third} {
		if err := <-o.done; err != nil {
			t.Errorf("a connected client's write failed: %v", err)
		}
	}
	if !acked["first"] || !acked["third"] {
		t.Errorf("acknowledged: %v", acked)
	}
	var n int
	if err := s.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE channel_id = $1 AND body IN ('first', 'third')`, ch.ID).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d of the two connected clients' messages stored (%v)", n, err)
	}
}

// TestClientGoneBeforeItsTurnIsSkipped: a write whose client hung up while
// it waited in the queue is not run, and only that client hears so.
func TestClientGoneBeforeItsTurnIsSkipped(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		s, _, _ := openOn(t, b)
		ctx := context.Background()
		goneCtx, cancel := context.WithCancel(ctx)
		cancel()
		ran := false
		gone := &writeOp{ctx: goneCtx, fn: func(*sql.Tx) error { ran = true; return nil }, done: make(chan error, 1)}
		kept := &writeOp{ctx: ctx, fn: func(*sql.Tx) error { return nil }, done: make(chan error, 1)}
		w := &writer{db: s.db}
		w.commit([]*writeOp{gone, kept})
		if err := <-gone.done; !errors.Is(err, context.Canceled) || ran {
			t.Errorf("the gone client's write: ran %v, %v", ran, err)
		}
		if err := <-kept.done; err != nil {
			t.Errorf("the other write: %v", err)
		}
	})
}

// joinedMember joins c with an operator invite and returns the stored member,
// so that tests act as someone the community really has.
func joinedMember(t testing.TB, c *Community, userID string) Member {
	t.Helper()
	ctx := context.Background()
	secret, _, err := c.CreateOperatorInvite(ctx, InviteOptions{MaxUses: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Join(ctx, secret, userID, key(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWriteRacingShutdownCannotPanic: sessions keep writing while the
// server shuts down. Every write either commits or is told the store is
// closed; none panics on a closed queue, none waits forever.
func TestWriteRacingShutdownCannotPanic(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		s, _, _ := openOn(t, b)
		ctx := context.Background()
		const writers = 8
		started := make(chan struct{}, writers)
		errs := make(chan error, writers)
		for range writers {
			go func() {
				started <- struct{}{}
				for {
					if err := s.w.do(ctx, func(*sql.Tx) error { return nil }, nil); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for range writers {
			<-started
		}
		s.Close()
		deadline := time.After(10 * time.Second)
		for range writers {
			select {
			case err := <-errs:
				if !errors.Is(err, errClosed) {
					t.Errorf("a write racing Close: %v", err)
				}
			case <-deadline:
				t.Fatal("a write racing Close never returned")
			}
		}
	})
}

// TestDeadlockedWriteIsRetriedInTheNextCommit: on PostgreSQL a write of
// this node's group commit deadlocks with another node's transaction and
// is the one the server aborts. The rest of its batch still commits, and
// the write itself succeeds in the next transaction: its caller never
// sees the deadlock.
func TestDeadlockedWriteIsRetriedInTheNextCommit(t *testing.T) {
	ctx := context.Background()
	s, _, _ := openOn(t, dbtest.Postgres)
	if _, err := s.db.Write.ExecContext(ctx, `CREATE TABLE rows_to_lock (k BIGINT PRIMARY KEY); INSERT INTO rows_to_lock VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	lock := func(tx *sql.Tx, k int) error {
		_, err := tx.ExecContext(ctx, `UPDATE rows_to_lock SET k = k WHERE k = $1`, k)
		return err
	}
	ourFirst, theirFirst := make(chan struct{}), make(chan struct{})
	var tries int
	first := &writeOp{ctx: ctx, done: make(chan error, 1), fn: func(tx *sql.Tx) error {
		if err := lock(tx, 1); err != nil {
			return err
		}
		close(ourFirst)
		return nil
	}}
	second := &writeOp{ctx: ctx, done: make(chan error, 1), fn: func(tx *sql.Tx) error {
		tries++
		<-theirFirst
		// This side finds the deadlock first, so it is the one aborted.
		if _, err := tx.ExecContext(ctx, `SET LOCAL deadlock_timeout = '10ms'`); err != nil {
			return err
		}
		return lock(tx, 2)
	}}
	other := make(chan error, 1)
	go func() {
		other <- s.db.Tx(ctx, func(tx *sql.Tx) error {
			<-ourFirst
			if err := lock(tx, 2); err != nil {
				return err
			}
			close(theirFirst)
			return lock(tx, 1)
		})
	}()
	w := &writer{db: s.db}
	w.commit([]*writeOp{first, second})
	for _, op := range []*writeOp{first, second} {
		if err := <-op.done; err != nil {
			t.Errorf("write: %v", err)
		}
	}
	if err := <-other; err != nil {
		t.Errorf("the other node's transaction: %v", err)
	}
	if tries != 2 {
		t.Fatalf("the deadlocked write ran %d times, want 2 (aborted once, then committed)", tries)
	}
}

type writerNote int

func (writerNote) Encode() ([]byte, error) { return nil, errors.New("never leaves the process") }

// TestQueuedCommitJoinsTheRun: a write queued while another commits is the
// next commit, and the events of both reach a subscriber as one run, with
// no Drained between them; a commit with nothing queued behind it is
// delivered at once.
func TestQueuedCommitJoinsTheRun(t *testing.T) {
	s, _, _ := openTest(t, db.SyncNormal)
	events := bus.NewMemory()
	defer events.Close()
	heard := make(chan bus.Message, 8)
	firstHeard := make(chan struct{})
	if _, err := events.Subscribe("t.run", nil, func(m bus.Message) {
		heard <- m
		if m == writerNote(1) {
			close(firstHeard)
		}
	}); err != nil {
		t.Fatal(err)
	}
	w := newWriter(s.db, 0, events, nil, nil)
	defer w.close()
	publish := func(n writerNote) func() { return func() { events.Publish("t.run", n) } }
	nothing := func(*sql.Tx) error { return nil }

	running, proceed := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- w.do(context.Background(), func(*sql.Tx) error {
			close(running)
			<-proceed
			return nil
		}, publish(1))
	}()
	<-running
	// Queued behind the first for certain: the writer is inside it. The
	// second commit gives the first's events every chance to leave on
	// their own, as they would if the first's hold ended with it.
	second := &writeOp{ctx: context.Background(), fn: func(*sql.Tx) error {
		select {
		case <-firstHeard:
		case <-time.After(200 * time.Millisecond):
		}
		return nil
	}, after: publish(2), done: make(chan error, 1)}
	w.reqs <- second
	close(proceed)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second.done; err != nil {
		t.Fatal(err)
	}
	for i, want := range []bus.Message{writerNote(1), writerNote(2), bus.Drained} {
		if got := <-heard; got != want {
			t.Fatalf("event %d: %v, want %v", i, got, want)
		}
	}
	if err := w.do(context.Background(), nothing, publish(3)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bus.Message{writerNote(3), bus.Drained} {
		if got := <-heard; got != want {
			t.Fatalf("lone commit, event %d: %v, want %v", i, got, want)
		}
	}
}

// windowed starts a writer whose commit window outlasts any test, so that
// only a full batch or closing can end it, and counts its transactions.
// It has never committed, so its first write opens the window whenever it
// comes.
func windowed(t *testing.T) (w *writer, commits *atomic.Int64) {
	s, _, _ := openTest(t, db.SyncNormal)
	commits = new(atomic.Int64)
	w = newWriter(s.db, time.Hour, nil, func() { commits.Add(1) }, nil)
	t.Cleanup(w.close)
	return w, commits
}

// TestIdleWriterGathersItsWindow: writes that reach an idle writer one by
// one share one transaction, which starts as soon as the batch is full.
func TestIdleWriterGathersItsWindow(t *testing.T) {
	w, commits := windowed(t)
	errs := make(chan error, maxBatch)
	for range maxBatch {
		go func() { errs <- w.do(context.Background(), func(*sql.Tx) error { return nil }, nil) }()
	}
	for range maxBatch {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := commits.Load(); n != 1 {
		t.Fatalf("%d writes took %d transactions, want 1", maxBatch, n)
	}
}

// TestFlowIsNotDelayed: writes that come within a window of a commit,
// queued while it ran or arriving after it, commit without a window of
// their own.
func TestFlowIsNotDelayed(t *testing.T) {
	w, commits := windowed(t)
	nothing := func(*sql.Tx) error { return nil }
	running, proceed := make(chan struct{}), make(chan struct{})
	errs := make(chan error, maxBatch)
	// A full batch ends the first window; one of its writes holds the
	// commit once it runs.
	go func() {
		errs <- w.do(context.Background(), func(*sql.Tx) error {
			close(running)
			<-proceed
			return nil
		}, nil)
	}()
	for range maxBatch - 1 {
		go func() { errs <- w.do(context.Background(), nothing, nil) }()
	}
	<-running
	queued := &writeOp{ctx: context.Background(), fn: nothing, done: make(chan error, 1)}
	w.reqs <- queued
	close(proceed)
	for range maxBatch {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	after := &writeOp{ctx: context.Background(), fn: nothing, done: make(chan error, 1)}
	for i, op := range []*writeOp{queued, after} {
		if i == 1 {
			w.reqs <- op
		}
		select {
		case err := <-op.done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("write %d after the full batch waited for a window", i+1)
		}
	}
	if n := commits.Load(); n != 3 {
		t.Fatalf("%d transactions, want 3: the full batch, the write queued behind it, the one after", n)
	}
}

// TestClosingEndsTheWindow: a write gathered in the window is committed
// when the writer closes, not dropped, and close does not wait out the
// window.
func TestClosingEndsTheWindow(t *testing.T) {
	w, commits := windowed(t)
	op := &writeOp{ctx: context.Background(), fn: func(*sql.Tx) error { return nil }, done: make(chan error, 1)}
	w.reqs <- op
	// Taken, so in the window: nothing commits before it ends.
	for len(w.reqs) > 0 {
		runtime.Gosched()
	}
	closed := make(chan struct{})
	go func() { w.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("close waited for the window")
	}
	if err := <-op.done; err != nil {
		t.Fatalf("the write in the window: %v", err)
	}
	if n := commits.Load(); n != 1 {
		t.Fatalf("%d transactions, want 1", n)
	}
}
