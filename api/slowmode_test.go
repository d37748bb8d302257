package api_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

func TestSlowMode(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod := env.join(community.RoleModerator)
	alice := env.join(community.RoleMember)
	for _, tc := range []struct {
		name    string
		who     *member
		payload map[string]any
		want    string
	}{
		{"member", alice, map[string]any{"path": "General", "name": "chat", "seconds": 10}, "error_permission"},
		{"no seconds", owner, map[string]any{"path": "General", "name": "chat"}, "error_invalid_data"},
		{"negative", owner, map[string]any{"path": "General", "name": "chat", "seconds": -1}, "error_invalid_data"},
		{"over six hours", owner, map[string]any{"path": "General", "name": "chat", "seconds": 21601}, "error_invalid_data"},
		{"not a number", owner, map[string]any{"path": "General", "name": "chat", "seconds": "10"}, "error_invalid_data"},
		{"voice channel", owner, map[string]any{"path": "General", "name": "VC-1", "seconds": 10}, "error_invalid_data"},
		{"category", owner, map[string]any{"path": "", "name": "General", "seconds": 10}, "error_invalid_data"},
		{"no channel", owner, map[string]any{"path": "General", "name": "nope", "seconds": 10}, "error_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.who.root(t, "set_slow_mode", tc.payload)
			if got := errType(err); got != tc.want {
				t.Fatalf("got %q (%v), want %s", got, err, tc.want)
			}
		})
	}
	ok(t)(owner.root(t, "set_slow_mode", map[string]any{"path": "General", "name": "chat", "seconds": 10}))
	changed := nextResult(t, alice.c, "interactables_changed")
	if !strings.Contains(string(changed.Payload), `"chat":{"codec":"text","data":{"slow_mode":10}}`) {
		t.Fatalf("tree: %s", changed.Payload)
	}
	second, err := env.relogin(alice.testUser)
	if err != nil {
		t.Fatal(err)
	}
	sendIn(t, alice, "chat", map[string]any{"message": "one"})
	// The other socket of the same member waits too.
	_, err = second.Function(ctxT(t), "text", "General", "chat", "send_message", map[string]any{"message": "two"})
	var er *client.ErrorReply
	if !errors.As(err, &er) || er.Type != "error_rate_limited" {
		t.Fatalf("second socket: %v", err)
	}
	wait := decode[struct {
		RetryAfter int64 `json:"retry_after"`
	}](t, er.Msg)
	if wait.RetryAfter < 9000 || wait.RetryAfter > 10000 {
		t.Fatalf("retry_after %d (%s)", wait.RetryAfter, er.Msg.Data)
	}
	// Moderators are exempt, and other channels are not slow.
	sendIn(t, mod, "chat", map[string]any{"message": "m1"})
	sendIn(t, mod, "chat", map[string]any{"message": "m2"})
	ok(t)(alice.call(t, "text", "", "Rules", "send_message", map[string]any{"message": "elsewhere"}))
	env.clock.Advance(10 * time.Second)
	sendIn(t, alice, "chat", map[string]any{"message": "after the wait"})
	// Off again.
	ok(t)(owner.root(t, "set_slow_mode", map[string]any{"path": "General", "name": "chat", "seconds": 0}))
	sendIn(t, alice, "chat", map[string]any{"message": "free"})
	r := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 5}))
	if !strings.Contains(string(r.Payload), `"action":"set_slow_mode","target":"General/chat 10"`) {
		t.Fatalf("audit: %s", r.Payload)
	}
}

func TestTimeout(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod := env.join(community.RoleModerator)
	mod2 := env.join(community.RoleModerator)
	alice := env.join(community.RoleMember)
	bob := env.join(community.RoleMember)
	for _, tc := range []struct {
		name     string
		who      *member
		function string
		payload  map[string]any
		want     string
	}{
		{"member", bob, "timeout", map[string]any{"user_id": alice.ID, "duration": 60}, "error_permission"},
		{"neither", mod, "timeout", map[string]any{"user_id": alice.ID}, "error_invalid_data"},
		{"both", mod, "timeout", map[string]any{"user_id": alice.ID, "duration": 60, "until": env.clock.Now().Add(time.Hour).UnixMilli()}, "error_invalid_data"},
		{"duration 0", mod, "timeout", map[string]any{"user_id": alice.ID, "duration": 0}, "error_invalid_data"},
		{"duration over 28 days", mod, "timeout", map[string]any{"user_id": alice.ID, "duration": 28*86400 + 1}, "error_invalid_data"},
		{"duration not a number", mod, "timeout", map[string]any{"user_id": alice.ID, "duration": "60"}, "error_invalid_data"},
		{"until in the past", mod, "timeout", map[string]any{"user_id": alice.ID, "until": env.clock.Now().Add(-time.Second).UnixMilli()}, "error_invalid_data"},
		{"until too far", mod, "timeout", map[string]any{"user_id": alice.ID, "until": env.clock.Now().Add(29 * 24 * time.Hour).UnixMilli()}, "error_invalid_data"},
		{"no user", mod, "timeout", map[string]any{"duration": 60}, "error_invalid_data"},
		{"not a member", mod, "timeout", map[string]any{"user_id": "nobody", "duration": 60}, "error_not_found"},
		{"equal role", mod, "timeout", map[string]any{"user_id": mod2.ID, "duration": 60}, "error_permission"},
		{"the owner", mod, "timeout", map[string]any{"user_id": owner.ID, "duration": 60}, "error_permission"},
		{"self", mod, "timeout", map[string]any{"user_id": mod.ID, "duration": 60}, "error_permission"},
		{"remove as member", bob, "remove_timeout", map[string]any{"user_id": alice.ID}, "error_permission"},
		{"remove on the owner", mod, "remove_timeout", map[string]any{"user_id": owner.ID}, "error_permission"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.who.root(t, tc.function, tc.payload)
			if got := errType(err); got != tc.want {
				t.Fatalf("got %q (%v), want %s", got, err, tc.want)
			}
		})
	}
	msgID := sendIn(t, alice, "chat", map[string]any{"message": "before"})
	r := ok(t)(mod.root(t, "timeout", map[string]any{"user_id": alice.ID, "duration": 3600}))
	until := decode[struct {
		Until int64 `json:"until"`
	}](t, client.Message{Data: r.Payload}).Until
	if want := env.clock.Now().Add(time.Hour).UnixMilli(); until < want-5000 || until > want {
		t.Fatalf("until %d, want about %d", until, want)
	}
	if got := nextResult(t, bob.c, "member_timed_out"); !strings.Contains(string(got.Payload), alice.ID) {
		t.Fatalf("event: %s", got.Payload)
	}
	for _, tc := range []struct {
		function string
		payload  map[string]any
	}{
		{"send_message", map[string]any{"message": "during"}},
		{"edit_message", map[string]any{"message_id": msgID, "message": "edited"}},
		{"delete_message", map[string]any{"message_id": msgID}},
	} {
		if _, err := alice.call(t, "text", "General", "chat", tc.function, tc.payload); errType(err) != "error_permission" {
			t.Fatalf("%s while timed out: %v", tc.function, err)
		}
	}
	if _, err := alice.call(t, "voice", "General", "VC-1", "join", map[string]any{}); errType(err) != "error_permission" {
		t.Fatalf("voice join while timed out: %v", err)
	}
	// Reading and marking read stay.
	ok(t)(alice.call(t, "text", "General", "chat", "get_messages", map[string]any{"amount": 5}))
	ok(t)(alice.call(t, "text", "General", "chat", "mark_read", map[string]any{"message_id": msgID}))
	members := ok(t)(mod.root(t, "list_members", map[string]any{}))
	if !strings.Contains(string(members.Payload), `"timeout_until":`) {
		t.Fatalf("list_members: %s", members.Payload)
	}
	// The time passes: the timeout lifts by itself.
	env.clock.Advance(time.Hour + time.Second)
	sendIn(t, alice, "chat", map[string]any{"message": "after"})
	members = ok(t)(mod.root(t, "list_members", map[string]any{}))
	if strings.Contains(string(members.Payload), `"timeout_until":`) {
		t.Fatalf("list_members after: %s", members.Payload)
	}
	// And remove_timeout lifts one early.
	ok(t)(mod.root(t, "timeout", map[string]any{"user_id": alice.ID, "until": env.clock.Now().Add(time.Hour).UnixMilli()}))
	if _, err := alice.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "x"}); errType(err) != "error_permission" {
		t.Fatalf("second timeout: %v", err)
	}
	ok(t)(mod.root(t, "remove_timeout", map[string]any{"user_id": alice.ID}))
	sendIn(t, alice, "chat", map[string]any{"message": "lifted"})
	audit := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 10}))
	if !strings.Contains(string(audit.Payload), `"action":"timeout"`) || !strings.Contains(string(audit.Payload), `"action":"remove_timeout"`) {
		t.Fatalf("audit: %s", audit.Payload)
	}
}

// TestTimeoutEndsCall: timing out a member who is in a call ends it: their
// call socket closes and everyone sees them leave. A call ticket they got
// before the timeout does not let them back in during it.
func TestTimeoutEndsCall(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod := env.join(community.RoleModerator)
	alice, bob := env.join(community.RoleMember), env.join(community.RoleMember)
	identify := func(tk string) (*client.Client, error) {
		c := env.dial("/ws/calls/")
		_, err := c.Request(ctxT(t), "identification", map[string]any{"path": "General", "name": "VC-1", "ticket": tk})
		return c, err
	}
	tk, _ := env.callTicket(alice, "General", "VC-1")
	call, err := identify(tk)
	if err != nil {
		t.Fatal(err)
	}
	if got := nextResult(t, bob.c, community.ResultUserChanged); !strings.Contains(string(got.Payload), alice.ID) || !strings.Contains(string(got.Payload), `"active"`) {
		t.Fatalf("alice entering: %s", got.Payload)
	}

	ok(t)(mod.root(t, "timeout", map[string]any{"user_id": alice.ID, "duration": 600}))
	if code := waitClosed(t, call); code != 1000 {
		t.Fatalf("the timed-out member's call socket closed with %d", code)
	}
	for _, who := range []*member{bob, alice} {
		if got := nextResult(t, who.c, community.ResultUserLeft); !strings.Contains(string(got.Payload), alice.ID) {
			t.Fatalf("user_left: %s", got.Payload)
		}
	}
	if r := env.com.Peers(mustFind(t, env.com, "General", "VC-1")); len(r) != 0 {
		t.Fatalf("still in the call: %+v", r)
	}

	// A ticket from before the next timeout.
	ok(t)(mod.root(t, "remove_timeout", map[string]any{"user_id": alice.ID}))
	tk, _ = env.callTicket(alice, "General", "VC-1")
	ok(t)(mod.root(t, "timeout", map[string]any{"user_id": alice.ID, "duration": 600}))
	if _, err := identify(tk); errType(err) != "error_permission" {
		t.Fatalf("a ticket from before the timeout: %v", err)
	}
	if r := env.com.Peers(mustFind(t, env.com, "General", "VC-1")); len(r) != 0 {
		t.Fatalf("in the call on an old ticket: %+v", r)
	}
}
