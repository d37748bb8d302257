package db

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupSeesCommittedNotPending: a snapshot taken while a second
// connection holds an open write transaction has every committed row and
// none of the uncommitted one, and is a database of its own (no WAL).
func TestBackupSeesCommittedNotPending(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := Open(ctx, filepath.Join(dir, "live.db"), SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Write.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := d.Write.ExecContext(ctx, `INSERT INTO t VALUES ($1)`, i); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := d.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (-1)`); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "snap.db")
	if err := Backup(ctx, d.Path, snap); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	info, err := os.Stat(snap)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot: %v %v", err, info.Mode())
	}
	if _, err := os.Stat(snap + "-wal"); err == nil {
		t.Fatal("the snapshot has a WAL beside it")
	}
	s, err := Open(ctx, snap, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n, neg int
	if err := s.Read.QueryRowContext(ctx, `SELECT count(*), count(CASE WHEN v < 0 THEN 1 END) FROM t`).Scan(&n, &neg); err != nil {
		t.Fatal(err)
	}
	if n != 100 || neg != 0 {
		t.Fatalf("snapshot has %d rows, %d uncommitted", n, neg)
	}
}

func TestBackupRefusesAMissingSourceOrATakenDestination(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := Backup(ctx, filepath.Join(dir, "none.db"), filepath.Join(dir, "out.db")); err == nil {
		t.Fatal("backup of a missing database succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Fatal("backup created the missing database")
	}
	d, err := Open(ctx, filepath.Join(dir, "a.db"), SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	taken := filepath.Join(dir, "taken.db")
	os.WriteFile(taken, []byte("keep"), 0o600)
	if err := Backup(ctx, d.Path, taken); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("backup over a file: %v", err)
	}
}
