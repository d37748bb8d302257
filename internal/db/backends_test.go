package db_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/db/dbtest"
)

// TestMigrationsMeanTheSameOnEveryBackend: a migration written for SQLite
// (STRICT, INTEGER, BLOB, AUTOINCREMENT) gives PostgreSQL the same table:
// 64-bit integers (a millisecond time does not fit in 32), bytes that
// round-trip, an id the database assigns and RETURNING hands back, and a
// version that makes the second run a no-op.
func TestMigrationsMeanTheSameOnEveryBackend(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		target := b.New(t)
		migrations := fstest.MapFS{
			"0001_init.sql": {Data: []byte(`CREATE TABLE things (
				id   INTEGER PRIMARY KEY AUTOINCREMENT,
				at   INTEGER NOT NULL,
				raw  BLOB NOT NULL
			) STRICT;
			CREATE TABLE pairs (a TEXT NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (a, b)) STRICT, WITHOUT ROWID;`)},
			"0002_more.sql": {Data: []byte(`ALTER TABLE things ADD COLUMN note TEXT NOT NULL DEFAULT ''`)},
		}
		for range 2 {
			d := dbtest.OpenTarget(t, target)
			if err := d.Migrate(ctx, "test", migrations); err != nil {
				t.Fatal(err)
			}
			if v, err := d.Version(ctx, "test"); err != nil || v != 2 {
				t.Fatalf("version %d, %v", v, err)
			}
			d.Close()
		}
		d := dbtest.OpenTarget(t, target)
		const at = int64(1) << 42
		raw := []byte{0, 1, 0xff, 'x', 0}
		var ids [2]int64
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			for i := range ids {
				if err := tx.QueryRowContext(ctx, `INSERT INTO things(at, raw) VALUES($1, $2) RETURNING id`, at, raw).Scan(&ids[i]); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO pairs(a, b) VALUES($1, $2) ON CONFLICT(a, b) DO NOTHING`, "x", at)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if ids[0] < 1 || ids[1] <= ids[0] {
			t.Fatalf("ids %v: want increasing, from 1", ids)
		}
		var gotAt int64
		var gotRaw []byte
		if err := d.Read.QueryRowContext(ctx, `SELECT at, raw FROM things WHERE id = $1`, ids[1]).Scan(&gotAt, &gotRaw); err != nil {
			t.Fatal(err)
		}
		if gotAt != at || string(gotRaw) != string(raw) {
			t.Fatalf("read back %d %x, want %d %x", gotAt, gotRaw, at, raw)
		}
	})
}

// TestEachEngineAppliesItsHalfOfAPair: a migration that the two engines
// write differently is a pair of one number; each applies its own half and
// neither the other's nor the number twice.
func TestEachEngineAppliesItsHalfOfAPair(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		d := dbtest.OpenTarget(t, b.New(t))
		migrations := fstest.MapFS{
			"0001_init.sql":           {Data: []byte(`CREATE TABLE engine (name TEXT NOT NULL) STRICT`)},
			"0002_which.postgres.sql": {Data: []byte(`INSERT INTO engine(name) VALUES('postgres')`)},
			"0002_which.sqlite.sql":   {Data: []byte(`INSERT INTO engine(name) VALUES('sqlite')`)},
			"0003_after.sql":          {Data: []byte(`INSERT INTO engine(name) VALUES('both')`)},
		}
		for range 2 {
			if err := d.Migrate(ctx, "test", migrations); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := d.Read.QueryContext(ctx, `SELECT name FROM engine ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			got = append(got, n)
		}
		if want := []string{"both", d.Dialect.String()}; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("applied %v, want %v", got, want)
		}
		if v, err := d.Version(ctx, "test"); err != nil || v != 3 {
			t.Fatalf("version %d, %v", v, err)
		}
	})
}

// barrierFS holds every reader of a migration file until n have arrived,
// so that concurrent migrators are all past whatever they did before
// reading the file.
type barrierFS struct {
	fs.FS
	mu      sync.Mutex
	arrived int
	n       int
	all     chan struct{}
}

func (b *barrierFS) Open(name string) (fs.File, error) {
	if strings.HasSuffix(name, ".sql") {
		b.mu.Lock()
		b.arrived++
		if b.arrived == b.n {
			close(b.all)
		}
		b.mu.Unlock()
		select {
		case <-b.all:
		case <-time.After(10 * time.Second):
			return nil, errors.New("barrierFS: the other migrator never read the file")
		}
	}
	return b.FS.Open(name)
}

// TestConcurrentMigratorsCannotApplyTwice: two processes starting on one
// database (iotad serve and a CLI command, or two nodes) migrate at once.
// Both have decided what to apply when they reach the migration; only one
// may apply it, the other must see its version and skip it.
func TestConcurrentMigratorsCannotApplyTwice(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		target := b.New(t)
		migrations := &barrierFS{n: 2, all: make(chan struct{}), FS: fstest.MapFS{
			// Not idempotent: a second application fails.
			"0001_init.sql": {Data: []byte(`CREATE TABLE once (x INTEGER)`)},
		}}
		var dbs [2]*db.DB
		for i := range dbs {
			dbs[i] = dbtest.OpenTarget(t, target)
		}
		errs := make(chan error, len(dbs))
		for _, d := range dbs {
			go func() { errs <- d.Migrate(ctx, "test", migrations) }()
		}
		for range dbs {
			if err := <-errs; err != nil {
				t.Errorf("migrate: %v", err)
			}
		}
		if v, err := dbs[0].Version(ctx, "test"); err != nil || v != 1 {
			t.Fatalf("version %d, %v", v, err)
		}
	})
}

// TestPreparedWritesOnEveryBackend: the prepared-statement helpers the
// stores use (PrepareWrites, Row, Exec, ReadRow) give the same answers on
// both engines, though only SQLite keeps statements of its own.
func TestPreparedWritesOnEveryBackend(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		d := b.Open(t)
		if _, err := d.Write.ExecContext(ctx, `CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT)`); err != nil {
			t.Fatal(err)
		}
		const put, get = `INSERT INTO kv(k, v) VALUES($1, $2)`, `SELECT v FROM kv WHERE k = $1`
		if err := d.PrepareWrites(ctx, put, get); err != nil {
			t.Fatal(err)
		}
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := d.Exec(ctx, tx, put, "a", "v"); err != nil {
				return err
			}
			var v string
			return d.Row(ctx, tx, get, "a").Scan(&v)
		})
		if err != nil {
			t.Fatal(err)
		}
		var v string
		if err := d.ReadRow(ctx, get, "a").Scan(&v); err != nil || v != "v" {
			t.Fatalf("read pool: %q %v", v, err)
		}
		if err := d.ReadRow(ctx, get, "b").Scan(&v); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("missing row: %v", err)
		}
	})
}

// TestCancelledCallerCannotAbortAPostgresTransaction: on PostgreSQL one
// failed statement aborts its whole transaction, so a caller whose context
// ends while its statement runs would fail every write of its group
// commit. The writer's connections run statements to the end regardless.
func TestCancelledCallerCannotAbortAPostgresTransaction(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Postgres.Open(t)
	if _, err := d.Write.ExecContext(ctx, `CREATE TABLE kv (k BIGINT, who TEXT)`); err != nil {
		t.Fatal(err)
	}
	// The caller's statement waits for a lock held here, so it is surely
	// under way when its context is cancelled.
	holder, err := d.Read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	callerCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = d.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES (0, 'before')`); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() {
			_, err := tx.ExecContext(callerCtx, `SELECT pg_advisory_xact_lock(4242)`)
			done <- err
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var waiting int
			err := holder.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting)
			if err != nil {
				return err
			}
			if waiting == 1 {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("the caller's statement never waited for the lock")
			}
			time.Sleep(5 * time.Millisecond) // polling the server's lock table; there is no event to wait on
		}
		cancel()
		if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_unlock(4242)`); err != nil {
			return err
		}
		t.Logf("the cancelled caller's statement: %v", <-done)
		_, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES (0, 'after')`)
		return err
	})
	if err != nil {
		t.Fatalf("the transaction failed: %v", err)
	}
	var n int
	if err := d.Read.QueryRowContext(ctx, `SELECT count(*) FROM kv WHERE who IN ('before', 'after')`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d of the other callers' rows committed (%v), want 2", n, err)
	}
}

// TestBackupRefusesPostgres: iotad backup copies a SQLite file; pointed at
// a PostgreSQL URL it says to use pg_dump instead of trying.
func TestBackupRefusesPostgres(t *testing.T) {
	err := db.Backup(context.Background(), "postgres://iotad@db.example/iotad", t.TempDir()+"/out.db")
	if err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup of a postgres URL: %v, want a refusal naming pg_dump", err)
	}
}

// TestLostPostgresConnectionsAreReplaced: PostgreSQL restarts (here: every
// connection of this database is cut, as a restart or a failover does).
// Writes and reads that meet a dead connection fail, at most once per
// pooled connection, and the pools then connect afresh by themselves: no
// restart of iotad is needed.
func TestLostPostgresConnectionsAreReplaced(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Postgres.Open(t)
	if _, err := d.Write.ExecContext(ctx, `CREATE TABLE kv (k BIGINT)`); err != nil {
		t.Fatal(err)
	}
	var app string
	if err := d.Read.QueryRowContext(ctx, `SELECT current_setting('application_name')`).Scan(&app); err != nil {
		t.Fatal(err)
	}
	admin := dbtest.Postgres.Open(t) // another schema, so another application_name
	var cut int
	err := admin.Read.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&cut)
	if err != nil || cut < 2 {
		t.Fatalf("cut %d connections (%v), want the writer's and the reader's", cut, err)
	}
	// Both pools hold at most pgPoolSize (8) connections each.
	const most = 2*8 + 1
	write := func() error {
		return d.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES (1)`)
			return err
		})
	}
	failed := 0
	for write() != nil {
		if failed++; failed == most {
			t.Fatalf("%d writes failed after the connections were cut", failed)
		}
	}
	t.Logf("%d writes failed before one committed", failed)
	failed = 0
	var n int
	for d.Read.QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&n) != nil {
		if failed++; failed == most {
			t.Fatalf("%d reads failed after the connections were cut", failed)
		}
	}
	t.Logf("%d reads failed before one answered", failed)
	for range 3 {
		if err := write(); err != nil {
			t.Fatalf("a write after the pools recovered: %v", err)
		}
	}
}
