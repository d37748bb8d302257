// Package dbtest runs store tests once per backend, so that SQLite and
// PostgreSQL cannot drift apart.
//
// PostgreSQL is the server that IOTAD_TEST_PG names (a postgres:// URL;
// scripts/test.sh starts a throwaway cluster and sets it). Each test gets
// a schema of its own there, dropped at the end, so tests are independent
// and may run in parallel. Without IOTAD_TEST_PG the PostgreSQL half is
// skipped, unless IOTAD_PG_REQUIRED=1 (CI), where it fails.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of the admin pool

	"github.com/iotad/iotad/internal/db"
)

// Backend is one engine a test runs against.
type Backend struct {
	// Name is the subtest's name: "sqlite" or "postgres".
	Name string
	// New returns the target (for db.Open) of a fresh, empty database,
	// removed when t ends. Open it as often as the test likes: a restart
	// opens the same target again.
	New func(t testing.TB) string
}

// SQLite is the default backend: a file in the test's temp directory.
var SQLite = Backend{Name: "sqlite", New: func(t testing.TB) string {
	return filepath.Join(t.TempDir(), "iotad.db")
}}

// Postgres is a fresh schema on the IOTAD_TEST_PG server.
var Postgres = Backend{Name: "postgres", New: newSchema}

// Backends lists the backends to run a test against: SQLite always, and
// PostgreSQL (whose New skips or fails when no server is configured).
func Backends() []Backend { return []Backend{SQLite, Postgres} }

// Each runs fn as one subtest per backend.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// Open opens a fresh database of b, closed when t ends.
func (b Backend) Open(t testing.TB) *db.DB {
	t.Helper()
	return OpenTarget(t, b.New(t))
}

// OpenTarget opens target (from New) and closes it when t ends.
func OpenTarget(t testing.TB, target string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), target, db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// FromEnv is the backend IOTAD_TEST_DB names ("postgres" or, by default,
// "sqlite"): for the suites that are too big to run twice in one go
// (api, cmd), scripts/test.sh runs them once more with IOTAD_TEST_DB=postgres.
func FromEnv() Backend {
	if os.Getenv("IOTAD_TEST_DB") == "postgres" {
		return Postgres
	}
	return SQLite
}

var admin struct {
	once sync.Once
	db   *sql.DB
	url  *url.URL
	err  error
}

// newSchema creates an empty schema on the test server and returns a URL
// whose search_path is that schema alone.
func newSchema(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("IOTAD_TEST_PG")
	if dsn == "" {
		if os.Getenv("IOTAD_PG_REQUIRED") == "1" {
			t.Fatal("IOTAD_TEST_PG is not set and IOTAD_PG_REQUIRED=1: the PostgreSQL half of the store tests must run (scripts/test.sh starts a server)")
		}
		t.Skip("IOTAD_TEST_PG is not set: no PostgreSQL to test against (scripts/test.sh starts one)")
	}
	admin.once.Do(func() {
		admin.url, admin.err = url.Parse(dsn)
		if admin.err == nil {
			admin.db, admin.err = sql.Open("pgx", dsn)
		}
		if admin.err == nil {
			admin.err = admin.db.Ping()
		}
	})
	if admin.err != nil {
		t.Fatalf("IOTAD_TEST_PG: %v", admin.err)
	}
	var b [8]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u := *admin.url
	q := u.Query()
	q.Set("search_path", schema)
	// Names the test's connections in pg_stat_activity, for tests that
	// cut them.
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
