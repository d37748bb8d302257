package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/community"
)

type chunkMessage struct {
	ID      string `json:"message_id"`
	Body    string `json:"message"`
	ReplyTo string `json:"reply_to"`
	Reply   *struct {
		MessageID string `json:"message_id"`
		SenderID  string `json:"sender_id"`
		Message   string `json:"message"`
		Deleted   bool   `json:"deleted"`
	} `json:"reply"`
	Reactions []community.Reaction `json:"reactions"`
	PinnedBy  string               `json:"pinned_by"`
}

func chatPage(t *testing.T, m *member) []chunkMessage {
	t.Helper()
	r := ok(t)(m.call(t, "text", "General", "chat", "get_messages", map[string]any{"loaded_messages": 0, "amount": 100}))
	var out struct{ Messages []chunkMessage }
	if err := json.Unmarshal(r.Payload, &out); err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func chatSend(t *testing.T, m *member, payload map[string]any) string {
	t.Helper()
	r := ok(t)(m.call(t, "text", "General", "chat", "send_message", payload))
	var out struct {
		ID string `json:"message_id"`
	}
	json.Unmarshal(r.Payload, &out)
	return out.ID
}

func TestReplies(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	bob := env.join(community.RoleMember)
	long := strings.Repeat("é", 150)
	first := chatSend(t, owner, map[string]any{"message": long})
	nextResult(t, bob.c, "message_live")
	reply := chatSend(t, bob, map[string]any{"message": "yes", "reply_to": first})
	var lm chunkMessage
	live := nextResult(t, owner.c, "message_live") // the owner's own
	for live = nextResult(t, owner.c, "message_live"); ; live = nextResult(t, owner.c, "message_live") {
		if json.Unmarshal(live.Payload, &lm); lm.ID == reply {
			break
		}
	}
	if lm.ReplyTo != first || lm.Reply == nil || lm.Reply.SenderID != owner.ID || lm.Reply.Message != strings.Repeat("é", 100) {
		t.Fatalf("live reply: %s", live.Payload)
	}
	msgs := chatPage(t, owner)
	if len(msgs) != 2 || msgs[0].ReplyTo != "" || msgs[0].Reply != nil || msgs[1].ID != reply || msgs[1].Reply == nil || msgs[1].Reply.Deleted {
		t.Fatalf("page: %+v", msgs)
	}
	ruleID := func() string {
		r := ok(t)(owner.call(t, "text", "", "Rules", "send_message", map[string]any{"message": "r"}))
		var out struct {
			ID string `json:"message_id"`
		}
		json.Unmarshal(r.Payload, &out)
		return out.ID
	}()
	for _, tc := range []struct {
		name    string
		replyTo any
		want    string
	}{
		{"unknown id", uuid.NewString(), api.ErrTypeNotFound},
		{"not an id", "x", api.ErrTypeNotFound},
		{"another channel's message", ruleID, api.ErrTypeNotFound},
		{"a number", 5, api.ErrTypeInvalidData},
		{"an object", map[string]any{}, api.ErrTypeInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bob.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "x", "reply_to": tc.replyTo})
			if errType(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	if n := len(chatPage(t, owner)); n != 2 {
		t.Fatalf("refused replies stored: %d messages", n)
	}
	ok(t)(owner.call(t, "text", "General", "chat", "delete_message", map[string]any{"message_id": first}))
	msgs = chatPage(t, bob)
	if len(msgs) != 1 || msgs[0].Reply == nil || !msgs[0].Reply.Deleted || msgs[0].Reply.MessageID != first || msgs[0].Reply.Message != "" {
		t.Fatalf("reply to a deleted message: %+v", msgs)
	}
}

func TestReactions(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	bob := env.join(community.RoleMember)
	id := chatSend(t, owner, map[string]any{"message": "hi"})
	nextResult(t, bob.c, "message_live")
	react := func(m *member, fn, emoji string) error {
		_, err := m.call(t, "text", "General", "chat", fn, map[string]any{"message_id": id, "emoji": emoji})
		return err
	}
	if err := react(bob, "add_reaction", "👍"); err != nil {
		t.Fatal(err)
	}
	got := nextResult(t, owner.c, "reaction_changed")
	want := fmt.Sprintf(`{"message_id":%q,"emoji":"👍","count":1,"user_id":%q,"added":true}`, id, bob.ID)
	if string(got.Payload) != want {
		t.Fatalf("live: %s, want %s", got.Payload, want)
	}
	// Idempotent: again is success and tells nobody.
	if err := react(bob, "add_reaction", "👍"); err != nil {
		t.Fatal(err)
	}
	quiet(t, owner.c, "reaction_changed")
	if err := react(owner, "add_reaction", "👍"); err != nil {
		t.Fatal(err)
	}
	if m := chatPage(t, owner)[0]; len(m.Reactions) != 1 || m.Reactions[0] != (community.Reaction{Emoji: "👍", Count: 2, Mine: true}) {
		t.Fatalf("owner's page: %+v", m.Reactions)
	}
	if err := react(owner, "remove_reaction", "👍"); err != nil {
		t.Fatal(err)
	}
	if err := react(owner, "remove_reaction", "🎉"); err != nil {
		t.Fatalf("removing one not there: %v", err)
	}
	if m := chatPage(t, owner)[0]; len(m.Reactions) != 1 || m.Reactions[0] != (community.Reaction{Emoji: "👍", Count: 1, Mine: false}) {
		t.Fatalf("owner's page after removing: %+v", m.Reactions)
	}

	for _, tc := range []struct {
		name    string
		payload map[string]any
		want    string
	}{
		{"no message_id", map[string]any{"emoji": "👍"}, api.ErrTypeInvalidData},
		{"unknown message", map[string]any{"message_id": uuid.NewString(), "emoji": "👍"}, api.ErrTypeNotFound},
		{"no emoji", map[string]any{"message_id": id}, api.ErrTypeInvalidData},
		{"empty emoji", map[string]any{"message_id": id, "emoji": ""}, api.ErrTypeInvalidData},
		{"letters", map[string]any{"message_id": id, "emoji": "lol"}, api.ErrTypeInvalidData},
		{"a digit", map[string]any{"message_id": id, "emoji": "1"}, api.ErrTypeInvalidData},
		{"too long", map[string]any{"message_id": id, "emoji": strings.Repeat("👍", 9)}, api.ErrTypeInvalidData},
		{"emoji a number", map[string]any{"message_id": id, "emoji": 5}, api.ErrTypeInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bob.call(t, "text", "General", "chat", "add_reaction", tc.payload)
			if errType(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	// The cap: 20 distinct, the 21st refused, one already there still fine.
	emoji := []rune("😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙🥲😚")
	for _, e := range emoji {
		if err := react(bob, "add_reaction", string(e)); err != nil {
			t.Fatal(err)
		}
	}
	if err := react(owner, "add_reaction", "🙂"); errType(err) != api.ErrTypeInvalidData {
		t.Fatalf("21st distinct reaction: %v", err)
	}
	if err := react(owner, "add_reaction", "😀"); err != nil {
		t.Fatalf("an existing one past the cap: %v", err)
	}
	if n := len(chatPage(t, owner)[0].Reactions); n != community.MaxReactions {
		t.Fatalf("%d distinct reactions", n)
	}
	// Deleting the message deletes its reactions: a new message does not
	// inherit them and the store holds none.
	ok(t)(owner.call(t, "text", "General", "chat", "delete_message", map[string]any{"message_id": id}))
	if n := env.countRows(t, "reactions"); n != 0 {
		t.Fatalf("%d reactions left after the message was deleted", n)
	}
}

func TestPins(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod := env.join(community.RoleModerator)
	bob := env.join(community.RoleMember)
	a := chatSend(t, bob, map[string]any{"message": "a"})
	b := chatSend(t, bob, map[string]any{"message": "b", "reply_to": a})
	pinCall := func(m *member, fn, id string) error {
		_, err := m.call(t, "text", "General", "chat", fn, map[string]any{"message_id": id})
		return err
	}
	if err := pinCall(bob, "pin_message", a); errType(err) != api.ErrTypePermission {
		t.Fatalf("member pins: %v", err)
	}
	if err := pinCall(mod, "pin_message", a); err != nil {
		t.Fatal(err)
	}
	got := nextResult(t, bob.c, "pins_changed")
	if want := fmt.Sprintf(`{"message_id":%q,"pinned":true,"pinned_by":%q}`, a, mod.ID); string(got.Payload) != want {
		t.Fatalf("live: %s", got.Payload)
	}
	if err := pinCall(mod, "pin_message", a); err != nil {
		t.Fatalf("pinning again: %v", err)
	}
	env.clock.Advance(time.Second)
	if err := pinCall(owner, "pin_message", b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		payload map[string]any
		want    string
	}{
		{"no id", map[string]any{}, api.ErrTypeInvalidData},
		{"unknown", map[string]any{"message_id": uuid.NewString()}, api.ErrTypeNotFound},
		{"a number", map[string]any{"message_id": 3}, api.ErrTypeInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mod.call(t, "text", "General", "chat", "pin_message", tc.payload)
			if errType(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	list := func() []chunkMessage {
		r := ok(t)(bob.call(t, "text", "General", "chat", "list_pins", map[string]any{}))
		var out struct{ Pins []chunkMessage }
		json.Unmarshal(r.Payload, &out)
		return out.Pins
	}
	if p := list(); len(p) != 2 || p[0].ID != b || p[0].PinnedBy != owner.ID || p[0].Reply == nil || p[1].ID != a || p[1].PinnedBy != mod.ID {
		t.Fatalf("pins: %+v", p)
	}
	if err := pinCall(mod, "unpin_message", b); err != nil {
		t.Fatal(err)
	}
	ok(t)(bob.call(t, "text", "General", "chat", "delete_message", map[string]any{"message_id": a}))
	if p := list(); len(p) != 0 {
		t.Fatalf("pins after unpin and delete: %+v", p)
	}
	audit := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 100}))
	for _, want := range []string{`"action":"pin_message"`, `"action":"unpin_message"`} {
		if !strings.Contains(string(audit.Payload), want) {
			t.Fatalf("audit log lacks %s: %s", want, audit.Payload)
		}
	}
	// The cap.
	for i := range community.MaxPins {
		if err := pinCall(owner, "pin_message", chatSend(t, bob, map[string]any{"message": fmt.Sprint(i)})); err != nil {
			t.Fatal(err)
		}
	}
	if err := pinCall(owner, "pin_message", chatSend(t, bob, map[string]any{"message": "one more"})); errType(err) != api.ErrTypeInvalidData {
		t.Fatalf("pin past the cap: %v", err)
	}
}

func (e *testEnv) countRows(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.Read.QueryRowContext(ctxT(t), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
