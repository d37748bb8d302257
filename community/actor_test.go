package community

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/google/uuid"

	"github.com/iotad/iotad/internal/db/dbtest"
)

// addMember joins a new user through an operator invite and gives them role.
func addMember(t testing.TB, c *Community, role Role) Member {
	t.Helper()
	ctx := context.Background()
	secret, _, err := c.CreateOperatorInvite(ctx, InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Join(ctx, secret, uuid.NewString(), key(t))
	if err != nil {
		t.Fatal(err)
	}
	if role != RoleMember {
		if err := c.OperatorSetRole(ctx, m.UserID, role); err != nil {
			t.Fatal(err)
		}
		m.Role = role
	}
	return m
}

// gatedCodec is a custom codec whose write needs manage_channels: it shows
// that Call.SetState re-checks what the codec checked with Allowed.
type gatedCodec struct{}

func (gatedCodec) Call(ctx context.Context, call *Call) (*Result, error) {
	if !call.Allowed(PermManageChannels) {
		return nil, fmt.Errorf("%w: writing needs a higher role", ErrPermission)
	}
	return &Result{Result: "written"}, call.SetState(ctx, "text", "defaced", nil)
}

// TestStaleActorCannotAct is the attack of issue 10 §2 inside the
// community: an admin's socket still carries the role it had when the
// owner demoted, kicked or banned them (the role_changed event has not
// reached it yet, or the change came from the CLI in another process,
// which no event reaches). Every privileged action with that cached role
// must be refused with ErrPermission and change nothing.
func TestStaleActorCannotAct(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		s, c, _ := openOn(t, b)
		ctx := context.Background()
		s.Codecs().Register("gated", gatedCodec{})
		if err := c.CreateDefaultChannels(ctx); err != nil {
			t.Fatal(err)
		}
		owner := addMember(t, c, RoleOwner)
		voiceCh, _ := c.Find("General", "voice")

		removals := map[string]func(admin Member) error{
			"demoted": func(admin Member) error { return c.SetRole(ctx, owner, admin.UserID, RoleMember) },
			"kicked":  func(admin Member) error { return c.Kick(ctx, owner, admin.UserID) },
			"banned":  func(admin Member) error { return c.Ban(ctx, owner, admin.UserID) },
		}
		call := func(m Member, name, function string, payload any) error {
			raw, _ := json.Marshal(payload)
			_, _, err := c.Call(ctx, m, "General", name, "", function, raw, nil)
			return err
		}
		type action struct {
			// posting is an action a demoted admin, now a member, may still do.
			posting bool
			run     func(admin, victim Member, ch string) error
			// unchanged reports what the refused action would have changed.
			unchanged func(victim Member, ch string) error
		}
		victimIs := func(role Role, banned bool) func(Member, string) error {
			return func(v Member, _ string) error {
				m, err := c.Member(ctx, v.UserID)
				if err != nil || m.Role != role || m.Banned != banned {
					return fmt.Errorf("victim is now %+v (%v)", m, err)
				}
				return nil
			}
		}
		channelIs := func(path, name string) func(Member, string) error {
			return func(_ Member, ch string) error {
				if _, err := c.Find(path, name+ch); err != nil {
					return fmt.Errorf("channel %s/%s: %v", path, name+ch, err)
				}
				return nil
			}
		}
		actions := map[string]action{
			"kick": {run: func(a, v Member, _ string) error { return c.Kick(ctx, a, v.UserID) }, unchanged: victimIs(RoleMember, false)},
			"ban":  {run: func(a, v Member, _ string) error { return c.Ban(ctx, a, v.UserID) }, unchanged: victimIs(RoleMember, false)},
			"unban": {
				run: func(a, v Member, _ string) error {
					if err := c.Ban(ctx, owner, v.UserID); err != nil {
						t.Fatal(err)
					}
					return c.Unban(ctx, a, v.UserID)
				},
				unchanged: victimIs(RoleMember, true),
			},
			"set_role": {run: func(a, v Member, _ string) error { return c.SetRole(ctx, a, v.UserID, RoleModerator) }, unchanged: victimIs(RoleMember, false)},
			"create_invite": {run: func(a, _ Member, _ string) error {
				_, _, err := c.CreateInvite(ctx, a, InviteOptions{})
				return err
			}},
			"revoke_invite": {
				run: func(a, v Member, _ string) error {
					_, inv, err := c.CreateInvite(ctx, owner, InviteOptions{UserID: v.UserID})
					if err != nil {
						t.Fatal(err)
					}
					return c.RevokeInvite(ctx, a, inv.ID)
				},
				unchanged: func(v Member, _ string) error {
					var revoked int
					err := s.db.Read.QueryRow(`SELECT count(*) FROM invites WHERE user_id = $1 AND revoked = 1`, v.UserID).Scan(&revoked)
					if err != nil || revoked != 0 {
						return fmt.Errorf("%d invites revoked (%v)", revoked, err)
					}
					return nil
				},
			},
			"create_channel": {
				run: func(a, _ Member, ch string) error { return c.CreateChannel(ctx, a, "", "new"+ch, CodecText, nil) },
				unchanged: func(_ Member, ch string) error {
					if _, err := c.Find("", "new"+ch); err == nil {
						return errors.New("the channel was created")
					}
					return nil
				},
			},
			"rename_channel": {
				run:       func(a, _ Member, ch string) error { return c.RenameChannel(ctx, a, "General", "room"+ch, "renamed"+ch) },
				unchanged: channelIs("General", "room"),
			},
			"move_channel": {
				run:       func(a, _ Member, ch string) error { return c.MoveChannel(ctx, a, "General", "room"+ch, "", nil) },
				unchanged: channelIs("General", "room"),
			},
			"delete_channel": {
				run:       func(a, _ Member, ch string) error { return c.DeleteChannel(ctx, a, "General", "room"+ch) },
				unchanged: channelIs("General", "room"),
			},
			"delete others' message": {
				run: func(a, v Member, _ string) error {
					_, res, err := c.Call(ctx, v, "General", "general", "", "send_message", json.RawMessage(`{"message":"mine"}`), nil)
					if err != nil {
						t.Fatal(err)
					}
					return call(a, "general", "delete_message", map[string]any{"message_id": res.Payload.(map[string]any)["message_id"]})
				},
				unchanged: func(v Member, _ string) error {
					var n int
					s.db.Read.QueryRow(`SELECT count(*) FROM messages WHERE sender_id = $1`, v.UserID).Scan(&n)
					if n != 1 {
						return fmt.Errorf("the victim has %d messages", n)
					}
					return nil
				},
			},
			"send_message": {posting: true, run: func(a, _ Member, _ string) error {
				return call(a, "general", "send_message", map[string]any{"message": "still here"})
			}},
			"custom codec write": {run: func(a, _ Member, ch string) error {
				_, _, err := c.Call(ctx, a, "General", "gated"+ch, "", "write", nil, nil)
				return err
			}},
			"mute_user": {
				run: func(a, v Member, _ string) error {
					c.EnterCall(voiceCh, v.UserID)
					return call(a, "voice", "mute_user", map[string]any{"user_id": v.UserID})
				},
				unchanged: func(v Member, _ string) error {
					if c.serverMuted(voiceCh, v.UserID) {
						return errors.New("the victim is muted")
					}
					return nil
				},
			},
			"disconnect_user": {
				run: func(a, v Member, _ string) error {
					c.EnterCall(voiceCh, v.UserID)
					return call(a, "voice", "disconnect_user", map[string]any{"user_id": v.UserID})
				},
				unchanged: func(v Member, _ string) error {
					if !c.InCall(voiceCh, v.UserID) {
						return errors.New("the victim was disconnected")
					}
					return nil
				},
			},
		}
		n := 0
		for removal, remove := range removals {
			for name, act := range actions {
				if act.posting && removal == "demoted" {
					continue
				}
				t.Run(removal+"/"+name, func(t *testing.T) {
					n++
					ch := fmt.Sprint(n)
					for _, codec := range []string{CodecText, "gated"} {
						prefix := map[string]string{CodecText: "room", "gated": "gated"}[codec]
						if err := c.CreateChannel(ctx, owner, "General", prefix+ch, codec, nil); err != nil {
							t.Fatal(err)
						}
					}
					admin := addMember(t, c, RoleAdmin)
					victim := addMember(t, c, RoleMember)
					if err := remove(admin); err != nil {
						t.Fatal(err)
					}
					// admin is the socket's cached view: still an admin.
					err := act.run(admin, victim, ch)
					if !errors.Is(err, ErrPermission) {
						t.Fatalf("with the cached role: %v, want ErrPermission", err)
					}
					if act.unchanged != nil {
						if err := act.unchanged(victim, ch); err != nil {
							t.Fatal(err)
						}
					}
					var acted int
					s.db.Read.QueryRow(`SELECT count(*) FROM audit_log WHERE actor_id = $1 AND action != 'join'`, admin.UserID).Scan(&acted)
					if acted != 0 {
						t.Fatalf("%d audit rows by the removed admin", acted)
					}
				})
			}
		}
	})
}

// TestMemberNamedOperatorIsNotTheOperator: the operator's powers come
// from OperatorMember, not from the user id "operator", which a client
// may choose.
func TestMemberNamedOperatorIsNotTheOperator(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		_, c, _ := openOn(t, b)
		ctx := context.Background()
		if err := c.CreateDefaultChannels(ctx); err != nil {
			t.Fatal(err)
		}
		secret, _, err := c.CreateOperatorInvite(ctx, InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Join(ctx, secret, Operator, key(t)); err != nil {
			t.Fatal(err)
		}
		forged := Member{UserID: Operator, Role: RoleOwner}
		if err := c.DeleteChannel(ctx, forged, "General", "general"); !errors.Is(err, ErrPermission) {
			t.Fatalf("a member called %q deleted a channel: %v", Operator, err)
		}
		if err := c.RenameChannel(ctx, OperatorMember(), "General", "general", "main"); err != nil {
			t.Fatalf("the operator: %v", err)
		}
	})
}

// TestBanEarlierInTheSameCommitStopsTheWrite: writes read their actor from
// the member cache, which a commit updates only once it is over. A ban and
// the banned member's next message that share one group commit, in that
// order, must still see the ban: the message is refused and not stored.
func TestBanEarlierInTheSameCommitStopsTheWrite(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		s, c, _ := openOn(t, b)
		ctx := context.Background()
		if err := c.CreateDefaultChannels(ctx); err != nil {
			t.Fatal(err)
		}
		m := addMember(t, c, RoleMember)
		post := func(body string) error {
			_, _, err := c.Call(ctx, m, "General", "general", "text", "send_message", json.RawMessage(fmt.Sprintf(`{"message":%q}`, body)), nil)
			return err
		}
		// The member's row is now cached by a write.
		if err := post("before"); err != nil {
			t.Fatal(err)
		}

		// Hold the writer inside a write, queue the ban and then the
		// message behind it, and let all three commit together.
		inside, proceed := make(chan struct{}), make(chan struct{})
		go s.w.do(ctx, func(*sql.Tx) error {
			close(inside)
			<-proceed
			return nil
		}, nil)
		<-inside
		queued := func(n int) {
			for len(s.w.reqs) < n {
				runtime.Gosched()
			}
		}
		banned, posted := make(chan error, 1), make(chan error, 1)
		go func() { banned <- c.Ban(ctx, OperatorMember(), m.UserID) }()
		queued(1)
		go func() { posted <- post("after the ban") }()
		queued(2)
		close(proceed)
		if err := <-banned; err != nil {
			t.Fatal(err)
		}
		if err := <-posted; !errors.Is(err, ErrPermission) {
			t.Fatalf("the banned member's message in the ban's commit: %v, want ErrPermission", err)
		}
		var n int
		if err := s.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE body = $1`, "after the ban").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d messages stored after the ban (%v)", n, err)
		}
	})
}
