package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// ErrBackupPostgres refuses a backup of a PostgreSQL database.
var ErrBackupPostgres = errors.New("db: iotad backup copies the SQLite file only; back a PostgreSQL database up with pg_dump (and restore with pg_restore or psql)")

// Backup writes a consistent copy of the database file src to dst, which
// must not exist, with VACUUM INTO: one read transaction, so the copy holds
// exactly the transactions committed before it began, even while another
// process (a running serve) writes to src through its WAL. The copy is
// compacted, carries no WAL, and is not fsynced: the caller archives it and
// makes the archive durable.
//
// src must be a SQLite file: a PostgreSQL database is backed up with the
// server's own tools (pg_dump), which know its consistency rules.
func Backup(ctx context.Context, src, dst string) error {
	if IsPostgres(src) {
		return ErrBackupPostgres
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("db: backup: %s already exists", dst)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	// mode=rw: never create src when it is missing; the reader does not
	// write, but WAL readers need write access to the -shm index.
	q.Set("mode", "rw")
	d, err := sql.Open("sqlite", "file:"+uriPath.Replace(src)+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("db: backup: open %s: %w", src, err)
	}
	defer d.Close()
	// The output takes the process's umask; it holds keys' rows, so it is
	// made 0600 first and VACUUM INTO writes into the empty file.
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	f.Close()
	if _, err := d.ExecContext(ctx, `VACUUM INTO $1`, dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("db: backup %s: %w", src, err)
	}
	return nil
}
