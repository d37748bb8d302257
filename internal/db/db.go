// Package db opens the one SQLite database that iotad keeps its state in and
// applies each component's embedded migrations.
//
// Writes go through a single connection so SQLite never has to arbitrate
// between writers (no SQLITE_BUSY storms under load); reads use a separate
// pool, which WAL mode lets run beside the writer.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sync chooses SQLite's synchronous setting.
type Sync string

const (
	// SyncNormal survives a crash of the process (kill -9): a committed
	// transaction sits in the WAL in the kernel's page cache.
	SyncNormal Sync = "NORMAL"
	// SyncFull also survives a power cut, at the price of an fsync per commit.
	SyncFull Sync = "FULL"
)

// DB is the database with its single writer and its reader pool.
type DB struct {
	// Write has exactly one connection: every write transaction goes here.
	Write *sql.DB
	// Read is a pool for queries; it never writes.
	Read *sql.DB
	Path string

	// readStmts holds the statements of ReadRow, prepared once: parsing
	// the SQL was a tenth of a login's server time.
	readStmts sync.Map // query string → *sql.Stmt
}

// Open opens (creating if needed) the database file at file.
func Open(ctx context.Context, file string, sync Sync) (*DB, error) {
	if sync == "" {
		sync = SyncFull
	}
	if sync != SyncNormal && sync != SyncFull {
		return nil, fmt.Errorf("db: synchronous must be NORMAL or FULL, not %q", sync)
	}
	pragmas := []string{
		"busy_timeout(10000)",
		"journal_mode(WAL)",
		"synchronous(" + string(sync) + ")",
		"foreign_keys(ON)",
		// Deleted rows are overwritten, so what a user removed does not
		// linger in free pages of the file.
		"secure_delete(ON)",
	}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	// BEGIN IMMEDIATE takes the write lock at the start, so a transaction
	// never fails half-way for lack of it.
	q.Set("_txlock", "immediate")
	dsn := "file:" + file + "?" + q.Encode()
	// The database holds sealed lists and members' keys: readable by the
	// operator alone. SQLite gives the -wal and -shm files the same mode.
	if f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}

	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("db: open %s: %w", file, err)
	}

	rq := url.Values{}
	for _, p := range pragmas {
		rq.Add("_pragma", p)
	}
	rq.Add("_pragma", "query_only(ON)")
	r, err := sql.Open("sqlite", "file:"+file+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("db: open readers: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return &DB{Write: w, Read: r, Path: file}, nil
}

// Close closes both pools.
func (d *DB) Close() error {
	var errs []error
	d.readStmts.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	return errors.Join(append(errs, d.Read.Close(), d.Write.Close())...)
}

// ReadRow is Read.QueryRowContext for a query that runs often (a login's,
// a request's): its statement is prepared on first use and kept.
func (d *DB) ReadRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := d.readStmts.Load(query); ok {
		return st.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := d.Read.PrepareContext(ctx, query)
	if err != nil {
		return d.Read.QueryRowContext(ctx, query, args...) // carries the error
	}
	if prev, loaded := d.readStmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}

// Tx runs fn in one write transaction and commits it when fn returns nil.
func (d *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := d.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: commit: %w", err)
	}
	return nil
}

// Migrate applies the numbered .sql files in migrations (named like
// 0001_init.sql) that component has not applied yet, each in its own
// transaction together with the version it records. Components share the
// database file but keep separate version counters, so the iota and
// community packages never depend on each other's schema.
func (d *DB) Migrate(ctx context.Context, component string, migrations fs.FS) error {
	if _, err := d.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_versions (
		component TEXT PRIMARY KEY,
		version   INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("db: schema_versions: %w", err)
	}
	var current int
	err := d.Write.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = ?`, component).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("db: read %s version: %w", component, err)
	}
	files, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return fmt.Errorf("db: list %s migrations: %w", component, err)
	}
	sort.Strings(files)
	for _, name := range files {
		num, err := migrationNumber(name)
		if err != nil {
			return fmt.Errorf("db: %s: %w", component, err)
		}
		if num <= current {
			continue
		}
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return fmt.Errorf("db: read %s/%s: %w", component, name, err)
		}
		err = d.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("db: apply %s/%s: %w", component, name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_versions(component, version) VALUES(?, ?)
				ON CONFLICT(component) DO UPDATE SET version = excluded.version`, component, num)
			return err
		})
		if err != nil {
			return err
		}
		current = num
	}
	return nil
}

// Version reports the migration version recorded for component (0 if none).
func (d *DB) Version(ctx context.Context, component string) (int, error) {
	var v int
	err := d.Read.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = ?`, component).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func migrationNumber(name string) (int, error) {
	base := path.Base(name)
	digits, _, ok := strings.Cut(base, "_")
	if !ok {
		return 0, fmt.Errorf("migration %q is not named NNNN_what.sql", name)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("migration %q is not named NNNN_what.sql", name)
	}
	return n, nil
}
