package api_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/internal/db"
)

// cliCommunity opens the test community the way `iotad member role` does
// while iotad serve runs: another connection and another Service on the
// same database file, whose changes raise no event in the server.
func (e *testEnv) cliCommunity() *community.Community {
	e.t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, e.target, db.SyncFull)
	if err != nil {
		e.t.Fatal(err)
	}
	svc, err := community.Open(ctx, d, community.Options{KeyDir: e.dir})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { svc.Close(); d.Close() })
	c, err := svc.Get(e.com.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestRemovedAdminCannotActFromOpenSocket: the operator demotes or bans
// an admin with the CLI while iotad serve runs. No role_changed event
// reaches the server, so the admin's open sockets still cache "admin";
// each privileged function they then try is refused with error_permission
// and changes nothing.
func TestRemovedAdminCannotActFromOpenSocket(t *testing.T) {
	for _, removal := range []string{"demoted", "banned"} {
		t.Run(removal, func(t *testing.T) {
			env := newEnv(t, nil)
			owner := env.join(community.RoleOwner)
			setupChannels(t, owner)
			admin := env.join(community.RoleAdmin)
			second, err := env.relogin(admin.testUser)
			if err != nil {
				t.Fatal(err)
			}
			victim := env.join(community.RoleMember)
			cli := env.cliCommunity()
			if removal == "demoted" {
				err = cli.OperatorSetRole(context.Background(), admin.ID, community.RoleMember)
			} else {
				err = cli.Ban(context.Background(), community.OperatorMember(), admin.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			attempts := []struct {
				function string
				payload  map[string]any
			}{
				{"kick", map[string]any{"user_id": victim.ID}},
				{"ban", map[string]any{"user_id": victim.ID}},
				{"set_role", map[string]any{"user_id": victim.ID, "role": "moderator"}},
				{"delete_channel", map[string]any{"path": "General", "name": "chat"}},
				{"create_channel", map[string]any{"name": "Takeover", "codec": "text"}},
				{"create_invite", map[string]any{}},
			}
			for i, a := range attempts {
				sock := admin.c
				if i%2 == 1 {
					sock = second
				}
				msg, err := sock.Function(ctxT(t), "community", "", "", a.function, a.payload)
				if errType(err) != api.ErrTypePermission {
					t.Errorf("%s from the open socket: %v %s", a.function, err, msg.Data)
				}
			}
			m, err := env.com.Member(context.Background(), victim.ID)
			if err != nil || m.Banned || m.Role != community.RoleMember {
				t.Fatalf("the victim is now %+v (%v)", m, err)
			}
			if _, err := env.com.Find("General", "chat"); err != nil {
				t.Fatalf("the channel is gone: %v", err)
			}
			if _, err := env.com.Find("", "Takeover"); err == nil {
				t.Fatal("the channel was created")
			}
			entries := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 100}))
			if !onlyJoins(t, entries.Payload, admin.ID) {
				t.Fatalf("the removed admin acted: %s", entries.Payload)
			}
		})
	}
}

// onlyJoins reports whether every audit entry by actor is their join.
func onlyJoins(t *testing.T, payload json.RawMessage, actor string) bool {
	t.Helper()
	var p struct {
		Entries []struct {
			ActorID string `json:"actor_id"`
			Action  string `json:"action"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Entries {
		if e.ActorID == actor && e.Action != "join" {
			return false
		}
	}
	return true
}

// TestDemotionRacingAKickIsOrdered: the owner demotes an admin on one
// socket while the admin's other socket sends kicks as fast as it can.
// A kick may win only by committing before the demotion: none may be in
// the audit log after it. (The socket's cached role lags the database by
// the batch the demotion commits in; the re-read inside the write closes
// that gap.)
func TestDemotionRacingAKickIsOrdered(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	for round := range 5 {
		admin := env.join(community.RoleAdmin)
		victims := make([]*member, 8)
		for i := range victims {
			victims[i] = env.join(community.RoleMember)
		}
		var wg sync.WaitGroup
		wg.Add(len(victims))
		for _, v := range victims {
			// Sent without waiting, so they queue behind or beside the demotion.
			go func() {
				defer wg.Done()
				admin.c.Function(ctxT(t), "community", "", "", "kick", map[string]any{"user_id": v.ID})
			}()
		}
		ok(t)(owner.root(t, "set_role", map[string]any{"user_id": admin.ID, "role": "member"}))
		wg.Wait()
		r := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 100}))
		var p struct {
			Entries []struct {
				ActorID string `json:"actor_id"`
				Action  string `json:"action"`
				Target  string `json:"target"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatal(err)
		}
		demoted := false
		for _, e := range p.Entries {
			if e.Action == "set_role" && e.Target == admin.ID+" member" {
				demoted = true
			}
			if demoted && e.ActorID == admin.ID && e.Action == "kick" {
				t.Fatalf("round %d: a kick committed after the demotion: %s", round, r.Payload)
			}
		}
		if !demoted {
			t.Fatalf("round %d: no demotion in the audit log", round)
		}
		env.clock.Advance(time.Millisecond)
	}
}
