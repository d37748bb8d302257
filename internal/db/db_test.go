package db

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
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
	const q = `SELECT v FROM kv WHERE k = ?`
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
