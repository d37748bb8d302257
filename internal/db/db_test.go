package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"modernc.org/sqlite"
)

func TestReadRow(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Write.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	const q = `SELECT v FROM kv WHERE k = $1`
	var v string
	if err := d.ReadRow(ctx, q, "a").Scan(&v); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("missing row: %v", err)
	}
	// The kept statement sees rows written after it was prepared.
	if _, err := d.Write.ExecContext(ctx, `INSERT INTO kv VALUES ('a', 'one')`); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadRow(ctx, q, "a").Scan(&v); err != nil || v != "one" {
		t.Fatalf("row: %q, %v", v, err)
	}
	if err := d.ReadRow(ctx, `SELECT nothing FROM nowhere`).Scan(&v); err == nil {
		t.Fatal("bad SQL gave no error")
	}
	n := 0
	d.readStmts.Range(func(_, _ any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d statements kept, want 1 (bad SQL is not kept)", n)
	}
	// Readers are read-only, prepared statements included.
	if err := d.ReadRow(ctx, `INSERT INTO kv VALUES ('b', 'two') RETURNING v`).Scan(&v); err == nil {
		t.Fatal("a reader wrote")
	}
}

// TestDataDirNameCannotRedirectTheDatabase: a data directory whose name
// holds URI syntax ('?' starts the driver's parameters, '#' ends SQLite's
// path, %41 decodes to 'A') must still get the database, with its pragmas,
// at exactly the path asked for.
func TestDataDirNameCannotRedirectTheDatabase(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "odd ?name=x #frag %41 dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "iotad.db")
	d, err := Open(ctx, file, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := d.Read.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v: the pragmas were lost", mode, err)
	}
	var n int
	if err := d.Read.QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&n); err != nil {
		t.Fatalf("the readers do not see the writer's database: %v", err)
	}
	d.Close()
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		t.Fatalf("nothing written at %s: %v", file, err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files beside the data directory: %q", names)
	}
}

var cancelHere struct {
	mu     sync.Mutex
	cancel context.CancelFunc
}

func init() {
	// cancel_here(x) cancels the context registered in cancelHere when x
	// is 1, from inside the statement that calls it.
	sqlite.MustRegisterScalarFunction("cancel_here", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if args[0] == int64(1) {
			cancelHere.mu.Lock()
			if cancelHere.cancel != nil {
				cancelHere.cancel()
			}
			cancelHere.mu.Unlock()
		}
		return args[0], nil
	})
}

// TestCancelledStatementCannotRollBackTheWriteTransaction: in a write
// transaction shared by several callers (the community writer's group
// commit), one caller's context is cancelled while its INSERT runs. Its
// statement may finish or fail, but the transaction, with the other
// callers' rows, must still commit.
func TestCancelledStatementCannotRollBackTheWriteTransaction(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Write.ExecContext(ctx, `CREATE TABLE kv (k INTEGER, who TEXT)`); err != nil {
		t.Fatal(err)
	}
	callerCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cancelHere.mu.Lock()
	cancelHere.cancel = cancel
	cancelHere.mu.Unlock()
	defer func() {
		cancelHere.mu.Lock()
		cancelHere.cancel = nil
		cancelHere.mu.Unlock()
	}()
	err = d.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES (0, 'before')`); err != nil {
			return err
		}
		// The row that cancels comes first; the thousands after it
		// give the driver's watcher time to interrupt the statement.
		_, err := tx.ExecContext(callerCtx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
			INSERT INTO kv SELECT cancel_here(i), 'cancelled' FROM n`)
		t.Logf("the cancelled caller's statement: %v", err)
		_, err = tx.ExecContext(ctx, `INSERT INTO kv VALUES (0, 'after')`)
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

// TestPreparedWritesInsideTransactions: Row and Exec inside a write
// transaction use the statements PrepareWrites made (and still work for a
// query it did not), and Row on the read pool sees what was committed.
func TestPreparedWritesInsideTransactions(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "p.db"), SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Write.ExecContext(ctx, `CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	const put, get = `INSERT INTO kv(k, v) VALUES($1, $2)`, `SELECT v FROM kv WHERE k = $1`
	if err := d.PrepareWrites(ctx, put, get); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := d.Exec(ctx, tx, put, fmt.Sprint(i), "v"); err != nil {
				return err
			}
			var v string
			if err := d.Row(ctx, tx, get, fmt.Sprint(i)).Scan(&v); err != nil || v != "v" {
				return fmt.Errorf("read back %q: %v", v, err)
			}
			// Not prepared: parsed in the transaction, as before.
			var n int
			return d.Row(ctx, tx, `SELECT count(*) FROM kv`).Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var v string
	if err := d.Row(ctx, d.Read, get, "2").Scan(&v); err != nil || v != "v" {
		t.Fatalf("read pool: %q %v", v, err)
	}
}

func TestPositional(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT v FROM kv WHERE k = $1`, `SELECT v FROM kv WHERE k = ?`},
		{`INSERT INTO t(a, b, c) VALUES($1, $2, $3) RETURNING a`, `INSERT INTO t(a, b, c) VALUES(?, ?, ?) RETURNING a`},
		{`SELECT 1 FROM t WHERE a = $1 AND b = 'it''s $2' AND c = $2`, `SELECT 1 FROM t WHERE a = ? AND b = 'it''s $2' AND c = ?`},
		{`SAVEPOINT op`, `SAVEPOINT op`},
		// Out of order, repeated, or already named otherwise: left as they are.
		{`SELECT $2, $1`, `SELECT $2, $1`},
		{`SELECT $1 WHERE x = $1`, `SELECT $1 WHERE x = $1`},
		{`SELECT $10`, `SELECT $10`},
		{`SELECT ? WHERE a = $1`, `SELECT ? WHERE a = $1`},
		{`SELECT :name`, `SELECT :name`},
		{`SELECT $1 -- a comment`, `SELECT $1 -- a comment`},
		{`SELECT 'unterminated $1`, `SELECT 'unterminated $1`},
	} {
		if got := positional(c.in); got != c.want {
			t.Errorf("positional(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
