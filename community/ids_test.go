package community

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotad/iotad/internal/db"
)

// TestClockSteppedBackCannotReorderMessages: iotad runs with its clock an
// hour fast, a message is sent, the clock is corrected and iotad
// restarted. The next message's id must still sort after the first's:
// history is paged by seq now, but on one node the ids keep the order too,
// for clients that sort by id.
func TestClockSteppedBackCannotReorderMessages(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func(now time.Time) (*Service, *db.DB) {
		d, err := db.Open(ctx, filepath.Join(dir, "iotad.db"), db.SyncNormal)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(ctx, d, Options{KeyDir: dir, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return s, d
	}
	send := func(c *Community, m Member) string {
		t.Helper()
		_, res, err := c.Call(ctx, m, "General", "general", "", "send_message", json.RawMessage(`{"message":"hi"}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Payload.(map[string]any)["message_id"].(string)
	}

	s, d := open(time.Now().Add(time.Hour))
	c, err := s.Create(ctx, "Home")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDefaultChannels(ctx); err != nil {
		t.Fatal(err)
	}
	m := joinedMember(t, c, "alice")
	first := send(c, m)
	s.Close()
	d.Close()

	s, d = open(time.Now())
	defer func() { s.Close(); d.Close() }()
	c, err = s.Get(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m, err = c.Member(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if second := send(c, m); strings.Compare(second, first) <= 0 {
		t.Fatalf("after the restart, message %s sorts before %s, sent while the clock was an hour fast", second, first)
	}
}
