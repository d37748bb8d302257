package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotad/iotad/internal/db/dbtest"
)

// TestServeOnPostgres: serve --db keeps the Iota and the communities in
// PostgreSQL, not in the data directory; the client commands work against
// it as on SQLite, and an operator command run where no server runs
// (another data directory, same --db) reaches the same database.
func TestServeOnPostgres(t *testing.T) {
	target := dbtest.Postgres.New(t)
	data := t.TempDir()
	addr := freePort(t)
	startServeWith(t, io.Discard, "--data", data, "--db", target, "--addr", addr, "--log-level", "warn")
	if _, err := os.Stat(filepath.Join(data, "iotad.db")); err == nil {
		t.Fatal("serve --db made a SQLite database in the data directory")
	}
	invites := firstInvites(t, data)
	owner := filepath.Join(data, "owner.tu")
	server := "ws://" + addr
	if _, _, err := runCmd(t, "client", "communities", "add", "--key", owner, "--server", server, "--address", invites[1], "--title", "Home"); err != nil {
		t.Fatal(err)
	}
	list, _, err := runCmd(t, "client", "communities", "list", "--key", owner, "--server", server)
	if err != nil || !strings.Contains(list, "Home") {
		t.Fatalf("list: %q %v", list, err)
	}
	// No server runs on a second data directory: the command opens --db.
	// It needs the keys, which stay in files (docs/SCALING.md): a second
	// node gets a copy of them.
	other := t.TempDir()
	keys, _ := filepath.Glob(filepath.Join(data, "*.key"))
	for _, k := range keys {
		raw, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(other, filepath.Base(k)), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := runCmd(t, "token", "create", "--data", other, "--db", target, "--uses", "2", "--expires", "1h"); err != nil {
		t.Fatal(err)
	}
	toks, _, err := runCmd(t, "token", "list", "--data", data, "--db", target)
	if err != nil || strings.Count(strings.TrimSpace(toks), "\n") != 0 || toks == "" {
		t.Fatalf("the running server's token list: %q %v", toks, err)
	}
}

// TestDBFlagRefusals: --db takes a postgres:// URL only; backup and
// restore refuse it and name pg_dump; iotad config shows it without its
// password.
func TestDBFlagRefusals(t *testing.T) {
	data := t.TempDir()
	if _, _, err := runCmd(t, "user", "list", "--data", data, "--db", filepath.Join(data, "other.db")); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("a --db that is not a URL: %v", err)
	}
	for _, args := range [][]string{
		{"backup", "--data", data, "--db", "postgres://iotad@db.example/iotad", "--out", filepath.Join(data, "b.tar.gz")},
		{"restore", "--data", data, "--db", "postgres://iotad@db.example/iotad", "--in", filepath.Join(data, "b.tar.gz")},
	} {
		if _, _, err := runCmd(t, args...); err == nil || !strings.Contains(err.Error(), "pg_dump") {
			t.Errorf("%s with --db: %v, want a refusal naming pg_dump", args[0], err)
		}
	}
	out, _, err := runCmd(t, "config", "--db", "postgres://iotad:hunter2@db.example/iotad?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "db = postgres://iotad:xxxxx@db.example/iotad?sslmode=require") {
		t.Fatalf("iotad config shows --db as:\n%s", out)
	}
}
