// Package db opens the database that iotad keeps its state in, SQLite by
// default or PostgreSQL when given a postgres:// URL, and applies each
// component's embedded migrations.
//
// On SQLite, writes go through a single connection so SQLite never has to
// arbitrate between writers (no SQLITE_BUSY storms under load); reads use a
// separate pool, which WAL mode lets run beside the writer. On PostgreSQL
// both are pools of the server's connections (postgres.go).
package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
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

	"modernc.org/sqlite"
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
	// Path is the SQLite file; "" on PostgreSQL.
	Path string
	// Dialect is the engine; the SQL that differs between the two asks it.
	Dialect Dialect

	// readStmts holds the statements of ReadRow, prepared once: parsing
	// the SQL was a tenth of a login's server time.
	readStmts sync.Map // query string → *sql.Stmt
	// writeStmts are the same for queries run inside write transactions
	// (every write re-reads its actor), prepared on the writer connection.
	writeStmts sync.Map // query string → *sql.Stmt
}

// uriPath escapes a file name for a "file:" URI: SQLite ends the path at
// the first '?' or '#' and decodes %HH in it, and the driver splits off its
// parameters at the first '?', so a data directory named "a?b" or "100%"
// would otherwise open another file, with none of the pragmas below.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

// Open opens the database named by target: a postgres:// URL connects to
// that PostgreSQL database (sync is then the server's business and
// ignored); anything else is a SQLite file, created if needed.
func Open(ctx context.Context, target string, sync Sync) (*DB, error) {
	if IsPostgres(target) {
		return openPostgres(ctx, target)
	}
	return openSQLite(ctx, target, sync)
}

func openSQLite(ctx context.Context, file string, sync Sync) (*DB, error) {
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
	dsn := "file:" + uriPath.Replace(file) + "?" + q.Encode()
	// The database holds sealed lists and members' keys: readable by the
	// operator alone. SQLite gives the -wal and -shm files the same mode.
	if f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}

	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open writer: %w", err)
	}
	w := sql.OpenDB(steadyConnector{base})
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
	r, err := sql.Open("sqlite", "file:"+uriPath.Replace(file)+"?"+rq.Encode())
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
	for _, m := range []*sync.Map{&d.readStmts, &d.writeStmts} {
		m.Range(func(_, st any) bool {
			errs = append(errs, st.(*sql.Stmt).Close())
			return true
		})
	}
	return errors.Join(append(errs, d.Read.Close(), d.Write.Close())...)
}

// ReadRow is Read.QueryRowContext for a query that runs often (a login's,
// a request's): its statement is prepared on first use and kept.
func (d *DB) ReadRow(ctx context.Context, query string, args ...any) *sql.Row {
	if d.Dialect == Postgres {
		return d.Read.QueryRowContext(ctx, query, args...) // pgx keeps the statement
	}
	st, err := d.readStmt(ctx, query)
	if err != nil {
		return d.Read.QueryRowContext(ctx, query, args...) // carries the error
	}
	return st.QueryRowContext(ctx, args...)
}

// ReadQuery is ReadRow for a query of several rows.
func (d *DB) ReadQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if d.Dialect == Postgres {
		return d.Read.QueryContext(ctx, query, args...)
	}
	st, err := d.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (d *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := d.readStmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := d.Read.PrepareContext(ctx, positional(query))
	if err != nil {
		return nil, err
	}
	if prev, loaded := d.readStmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st, nil
}

// Queryer is what reads a row: a write transaction or a pool.
type Queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// PrepareWrites prepares queries on the writer connection, for Row and
// Exec inside write transactions. It must run while no transaction holds
// that one connection (at start-up): preparing inside one would wait for
// the connection the transaction itself holds.
func (d *DB) PrepareWrites(ctx context.Context, queries ...string) error {
	if d.Dialect == Postgres {
		return nil // pgx prepares each query once per connection by itself
	}
	for _, q := range queries {
		if _, ok := d.writeStmts.Load(q); ok {
			continue
		}
		st, err := d.Write.PrepareContext(ctx, positional(q))
		if err != nil {
			return fmt.Errorf("db: prepare: %w", err)
		}
		if _, loaded := d.writeStmts.LoadOrStore(q, st); loaded {
			st.Close()
		}
	}
	return nil
}

// Row is q.QueryRowContext from a statement prepared once where there is
// one: in a write transaction one that PrepareWrites made, on the read pool
// ReadRow's; otherwise the query is parsed as usual.
func (d *DB) Row(ctx context.Context, q Queryer, query string, args ...any) *sql.Row {
	switch q := q.(type) {
	case *sql.Tx:
		if st, ok := d.writeStmts.Load(query); ok {
			return q.StmtContext(ctx, st.(*sql.Stmt)).QueryRowContext(ctx, args...)
		}
	case *sql.DB:
		if q == d.Read {
			return d.ReadRow(ctx, query, args...)
		}
	}
	return q.QueryRowContext(ctx, query, args...)
}

// Exec is tx.ExecContext, from PrepareWrites' statement when it made one.
func (d *DB) Exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st, ok := d.writeStmts.Load(query); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// Query is tx.QueryContext, from PrepareWrites' statement when it made one.
func (d *DB) Query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st, ok := d.writeStmts.Load(query); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
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
//
// The version is read inside each migration's transaction, which BEGIN
// IMMEDIATE opens with the write lock held: of two processes starting on
// one file at once (serve beside a CLI command), the second waits for the
// first's commit and then sees the version it recorded, instead of
// applying the same migration again from a version read before the lock.
// On PostgreSQL an advisory lock does what BEGIN IMMEDIATE does here.
//
// The files are SQLite's; Schema gives PostgreSQL the same tables. Where
// the engines truly differ (full-text search: FTS5 against tsvector), a
// migration is a pair, NNNN_what.sqlite.sql and NNNN_what.postgres.sql,
// of one number, and each engine applies its own (Dialect.applies).
func (d *DB) Migrate(ctx context.Context, component string, migrations fs.FS) error {
	err := d.Tx(ctx, func(tx *sql.Tx) error {
		if err := d.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, d.Schema(`CREATE TABLE IF NOT EXISTS schema_versions (
		component TEXT PRIMARY KEY,
		version   INTEGER NOT NULL
	) STRICT`))
		return err
	})
	if err != nil {
		return fmt.Errorf("db: schema_versions: %w", err)
	}
	files, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return fmt.Errorf("db: list %s migrations: %w", component, err)
	}
	sort.Strings(files)
	for _, name := range files {
		if !d.Dialect.applies(name) {
			continue
		}
		num, err := migrationNumber(name)
		if err != nil {
			return fmt.Errorf("db: %s: %w", component, err)
		}
		// Read before the transaction: the write lock is held for the SQL only.
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return fmt.Errorf("db: read %s/%s: %w", component, name, err)
		}
		err = d.Tx(ctx, func(tx *sql.Tx) error {
			if err := d.lockMigrations(ctx, tx); err != nil {
				return err
			}
			var current int
			err := tx.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = $1`, component).Scan(&current)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("db: read %s version: %w", component, err)
			}
			if num <= current {
				return nil
			}
			if _, err := tx.ExecContext(ctx, d.Schema(string(body))); err != nil {
				return fmt.Errorf("db: apply %s/%s: %w", component, name, err)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_versions(component, version) VALUES($1, $2)
				ON CONFLICT(component) DO UPDATE SET version = excluded.version`, component, num)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Version reports the migration version recorded for component (0 if none).
func (d *DB) Version(ctx context.Context, component string) (int, error) {
	var v int
	err := d.Read.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = $1`, component).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// positional turns a query whose parameters are $1, $2, … $n, each once and
// in that order, into the same query with ? for each, which SQLite binds
// by position; any other query comes back as it is. The queries are
// written with $n, the form both backends take, but modernc's driver looks
// a $n parameter's name up at every execution, an allocation per
// parameter: on the statements every message runs, a few percent of the
// writer's CPU. Text in quotes and comments is left alone.
func positional(q string) string {
	var b strings.Builder
	next := 1
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '\'' || c == '"':
			end := strings.IndexByte(q[i+1:], c)
			if end < 0 {
				return q
			}
			b.WriteString(q[i : i+end+2])
			i += end + 1
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			return q // not worth handling: none of the prepared queries has one
		case c == '$' || c == '?' || c == ':' || c == '@':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if c != '$' || q[i+1:j] != strconv.Itoa(next) {
				return q
			}
			b.WriteByte('?')
			next++
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// applies reports whether the migration file name is for d: every file
// but the other engine's half of a pair (see Migrate).
func (d Dialect) applies(name string) bool {
	for _, other := range []Dialect{SQLite, Postgres} {
		if other != d && strings.HasSuffix(name, "."+other.String()+".sql") {
			return false
		}
	}
	return true
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

// steadyConnector opens the writer's connection, on which no statement is
// interrupted by its context. The driver answers a cancelled context by
// interrupting SQLite, and an INSERT, UPDATE or DELETE interrupted inside a
// transaction rolls the whole transaction back: on the one connection that
// group commit shares, one client that hangs up would undo everyone's
// writes in its batch. database/sql still refuses to start a statement
// whose context is already done, so a caller that has gone is turned away
// before its statement, never in the middle of it. The writer's statements
// are short; none needs cancelling once started.
type steadyConnector struct{ driver.Connector }

func (c steadyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(steadyInner)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("db: the sqlite driver's connection lacks a context method")
	}
	return steadyConn{sc}, nil
}

// steadyInner is what every connection of modernc.org/sqlite implements;
// the wrapper forwards all of it so database/sql keeps its fast paths.
type steadyInner interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type steadyConn struct{ c steadyInner }

func (s steadyConn) Unwrap() driver.Conn { return s.c }
func (s steadyConn) Prepare(query string) (driver.Stmt, error) {
	return s.PrepareContext(context.Background(), query)
}
func (s steadyConn) Close() error { return s.c.Close() }
func (s steadyConn) Begin() (driver.Tx, error) {
	return s.c.BeginTx(context.Background(), driver.TxOptions{})
}
func (s steadyConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return s.c.BeginTx(context.WithoutCancel(ctx), opts)
}
func (s steadyConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := s.c.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil, err
	}
	ss, ok := st.(steadyInnerStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("db: the sqlite driver's statement lacks a context method")
	}
	return steadyStmt{ss}, nil
}
func (s steadyConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(context.WithoutCancel(ctx), query, args)
}
func (s steadyConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(context.WithoutCancel(ctx), query, args)
}
func (s steadyConn) Ping(ctx context.Context) error         { return s.c.Ping(ctx) }
func (s steadyConn) ResetSession(ctx context.Context) error { return s.c.ResetSession(ctx) }
func (s steadyConn) IsValid() bool                          { return s.c.IsValid() }

type steadyInnerStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type steadyStmt struct{ s steadyInnerStmt }

func (s steadyStmt) Close() error  { return s.s.Close() }
func (s steadyStmt) NumInput() int { return s.s.NumInput() }
func (s steadyStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.s.Exec(args)
}
func (s steadyStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.s.Query(args)
}
func (s steadyStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.s.ExecContext(context.WithoutCancel(ctx), args)
}
func (s steadyStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.s.QueryContext(context.WithoutCancel(ctx), args)
}
