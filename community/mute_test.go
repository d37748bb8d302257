package community

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/iotad/iotad/internal/db/dbtest"
)

// TestServerMuteSurvivesRestart: a server mute is stored, so a restart
// (which empties the in-memory voice state) does not lift it, and it is
// applied when the user enters the call again.
func TestServerMuteSurvivesRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		s, c, dir := openOn(t, b)
		ctx := context.Background()
		if err := c.CreateDefaultChannels(ctx); err != nil {
			t.Fatal(err)
		}
		mod := addMember(t, c, RoleModerator)
		loud := addMember(t, c, RoleMember)
		ch, _ := c.Find("General", "voice")
		c.EnterCall(ch, loud.UserID)
		raw, _ := json.Marshal(map[string]any{"user_id": loud.UserID})
		if _, _, err := c.Call(ctx, mod, "General", "voice", "", "mute_user", raw, nil); err != nil {
			t.Fatal(err)
		}
		// A second Service on the same database starts from an empty voice
		// state, as a restarted process does.
		s2, err := Open(ctx, s.db, Options{KeyDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		c2, _ := s2.Get(c.ID)
		ch2, _ := c2.Find("General", "voice")
		told := make(chan Event, 4)
		c2.Subscribe(func(e Event) {
			if e.MuteCall != "" {
				told <- e
			}
		})
		if u := c2.EnterCall(ch2, loud.UserID); !u.ServerMuted {
			t.Fatalf("after a restart: %+v", u)
		}
		select {
		case e := <-told:
			if e.MuteCall != loud.UserID || !e.Muted {
				t.Fatalf("the SFU was told %+v", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the SFU was not told to drop the audio")
		}
		// Deleting the channel takes its mutes with it.
		if err := c2.DeleteChannel(ctx, OperatorMember(), "General", "voice"); err != nil {
			t.Fatal(err)
		}
		var n int
		s2.db.Read.QueryRow(`SELECT count(*) FROM server_mutes`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d mutes outlive their channel", n)
		}
	})
}
