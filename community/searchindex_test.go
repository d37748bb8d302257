package community

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/iotad/iotad/internal/db"
)

func pendingRids(t *testing.T, s *Service) int {
	t.Helper()
	var n int
	if err := s.db.Read.QueryRow(`SELECT count(*) FROM search_pending`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// ftsIntact runs FTS5's integrity check against the external content: an
// edit or deletion that touched the index for a rid it never held, or
// missed one it did, fails it.
func ftsIntact(t *testing.T, s *Service) {
	t.Helper()
	err := s.w.do(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)`)
		return err
	}, nil)
	if err != nil {
		t.Fatalf("FTS index does not match the messages: %v", err)
	}
}

func call(t *testing.T, c *Community, m Member, name, function string, payload map[string]string) {
	t.Helper()
	raw, _ := json.Marshal(payload)
	if _, _, err := c.Call(context.Background(), m, "", name, "text", function, raw, nil); err != nil {
		t.Fatalf("%s: %v", function, err)
	}
}

// TestSearchIndexLater: on SQLite a message is indexed after its commit,
// in a batch; edits and deletions of messages pending and indexed, and a
// rid handed out again after the newest message is deleted, leave the index
// matching the messages, and a search finds exactly what was acknowledged.
func TestSearchIndexLater(t *testing.T) {
	s, c, _ := openTest(t, db.SyncNormal)
	ctx := context.Background()
	owner := addMember(t, c, RoleOwner)
	if err := c.CreateChannel(ctx, owner, "", "a", CodecText, nil); err != nil {
		t.Fatal(err)
	}
	indexedEdit := send(t, c, owner, "", "a", "alpha first")
	indexedGone := send(t, c, owner, "", "a", "alpha doomed")
	if n := pendingRids(t, s); n != 2 {
		t.Fatalf("%d rids pending after two sends, want 2", n)
	}
	if err := s.search.catchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n := pendingRids(t, s); n != 0 {
		t.Fatalf("%d rids pending after catching up", n)
	}
	pendingEdit := send(t, c, owner, "", "a", "alpha pending")
	pendingGone := send(t, c, owner, "", "a", "alpha never")
	call(t, c, owner, "a", "edit_message", map[string]string{"message_id": indexedEdit, "message": "beta first"})
	call(t, c, owner, "a", "edit_message", map[string]string{"message_id": pendingEdit, "message": "beta pending"})
	call(t, c, owner, "a", "delete_message", map[string]string{"message_id": indexedGone})
	call(t, c, owner, "a", "delete_message", map[string]string{"message_id": pendingGone})
	ftsIntact(t, s)

	hits, _ := search(t, c, owner, map[string]any{"query": "alpha"})
	if len(hits) != 0 {
		t.Fatalf("alpha found %q after every alpha was edited or deleted", bodies(hits))
	}
	hits, _ = search(t, c, owner, map[string]any{"query": "beta"})
	if got, want := bodies(hits), []string{"beta first", "beta pending"}; !slices.Equal(got, want) {
		t.Fatalf("beta: %q, want %q", got, want)
	}
	ftsIntact(t, s)

	// The newest message's rid is handed out again once it is deleted:
	// the message after it must still be indexed, and under its own words.
	newest := send(t, c, owner, "", "a", "gamma newest")
	search(t, c, owner, map[string]any{"query": "gamma"})
	call(t, c, owner, "a", "delete_message", map[string]string{"message_id": newest})
	send(t, c, owner, "", "a", "delta reused")
	hits, _ = search(t, c, owner, map[string]any{"query": "delta"})
	if got := bodies(hits); !slices.Equal(got, []string{"delta reused"}) {
		t.Fatalf("delta: %q", got)
	}
	if hits, _ = search(t, c, owner, map[string]any{"query": "gamma"}); len(hits) != 0 {
		t.Fatalf("gamma found %q after its deletion", bodies(hits))
	}
	ftsIntact(t, s)
}

// TestSearchIndexBatchStartsWhenFull: indexAt messages start a batch at
// once, without waiting for indexDelay or a search.
func TestSearchIndexBatchStartsWhenFull(t *testing.T) {
	s, c, _ := openTest(t, db.SyncNormal)
	ctx := context.Background()
	owner := addMember(t, c, RoleOwner)
	if err := c.CreateChannel(ctx, owner, "", "a", CodecText, nil); err != nil {
		t.Fatal(err)
	}
	for range indexAt {
		send(t, c, owner, "", "a", "many")
	}
	// The timer of the first message was stopped by the indexAt-th, which
	// started the batch this waits for.
	s.search.running.Wait()
	if n := pendingRids(t, s); n != 0 {
		t.Fatalf("%d rids still pending after %d messages", n, indexAt)
	}
	ftsIntact(t, s)
}

// TestSearchIndexAfterRestart: messages still pending when the server
// stopped are found after it starts again.
func TestSearchIndexAfterRestart(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "iotad.db")
	ctx := context.Background()
	d, err := db.Open(ctx, target, db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, d, Options{KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(ctx, "Test")
	if err != nil {
		t.Fatal(err)
	}
	owner := addMember(t, c, RoleOwner)
	if err := c.CreateChannel(ctx, owner, "", "a", CodecText, nil); err != nil {
		t.Fatal(err)
	}
	send(t, c, owner, "", "a", "left pending")
	s.Close()
	d.Close()

	d, err = db.Open(ctx, target, db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, d, Options{KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); d.Close() })
	if n := pendingRids(t, s); n != 1 {
		t.Fatalf("%d rids pending after the restart, want 1", n)
	}
	hits, _ := search(t, s.All()[0], owner, map[string]any{"query": "pending"})
	if got := bodies(hits); !slices.Equal(got, []string{"left pending"}) {
		t.Fatalf("after restart: %q", got)
	}
}
