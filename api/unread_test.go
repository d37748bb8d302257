package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

// textData is the data object of the text channel at path/name in a tree.
func textData(t testing.TB, tree json.RawMessage, path, name string) map[string]int {
	t.Helper()
	type node struct {
		Codec string          `json:"codec"`
		Data  json.RawMessage `json:"data"`
	}
	level := tree
	if path != "" {
		for _, part := range strings.Split(path, "/") {
			var m map[string]node
			if err := json.Unmarshal(level, &m); err != nil {
				t.Fatal(err)
			}
			level = m[part].Data
		}
	}
	var m map[string]node
	if err := json.Unmarshal(level, &m); err != nil {
		t.Fatal(err)
	}
	var out map[string]int
	if err := json.Unmarshal(m[name].Data, &out); err != nil {
		t.Fatalf("data of %s/%s: %v (%s)", path, name, err, m[name].Data)
	}
	return out
}

func sendIn(t testing.TB, who *member, name string, payload map[string]any) string {
	t.Helper()
	r := ok(t)(who.call(t, "text", "General", name, "send_message", payload))
	return decode[struct {
		MessageID string `json:"message_id"`
	}](t, client.Message{Data: r.Payload}).MessageID
}

func TestMentions(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod := env.join(community.RoleModerator)
	alice := env.join(community.RoleMember)
	bob := env.join(community.RoleMember)
	banned := env.join(community.RoleMember)
	ok(t)(owner.root(t, "ban", map[string]any{"user_id": banned.ID}))

	sendIn(t, alice, "chat", map[string]any{"message": "hi @bob", "mentions": []string{bob.ID, bob.ID}})
	live := decode[community.Message](t, client.Message{Data: nextResult(t, bob.c, "message_live").Payload})
	if len(live.Mentions) != 1 || live.Mentions[0] != bob.ID || live.MentionEveryone {
		t.Fatalf("live mentions: %+v", live)
	}
	sendIn(t, mod, "chat", map[string]any{"message": "@everyone", "mention_everyone": true})
	nextResult(t, bob.c, "message_live")
	r := ok(t)(bob.call(t, "text", "General", "chat", "get_messages", map[string]any{"amount": 10}))
	page := decode[struct {
		Messages []json.RawMessage `json:"messages"`
	}](t, client.Message{Data: r.Payload})
	if len(page.Messages) != 2 || !strings.Contains(string(page.Messages[0]), `"mentions":["`+bob.ID+`"]`) ||
		!strings.Contains(string(page.Messages[1]), `"mention_everyone":true`) || strings.Contains(string(page.Messages[1]), `"mentions"`) {
		t.Fatalf("chunk: %s", r.Payload)
	}

	var many []string
	for i := 0; i < 21; i++ {
		many = append(many, fmt.Sprintf("user-%d", i))
	}
	for _, tc := range []struct {
		name    string
		who     *member
		payload map[string]any
		want    string
	}{
		{"not an array", alice, map[string]any{"message": "x", "mentions": bob.ID}, "error_invalid_data"},
		{"not strings", alice, map[string]any{"message": "x", "mentions": []int{1}}, "error_invalid_data"},
		{"empty id", alice, map[string]any{"message": "x", "mentions": []string{""}}, "error_invalid_data"},
		{"more than 20", alice, map[string]any{"message": "x", "mentions": many}, "error_invalid_data"},
		{"unknown id", alice, map[string]any{"message": "x", "mentions": []string{"nobody"}}, "error_invalid_data"},
		{"banned id", alice, map[string]any{"message": "x", "mentions": []string{banned.ID}}, "error_invalid_data"},
		{"everyone not a bool", mod, map[string]any{"message": "x", "mention_everyone": "yes"}, "error_invalid_data"},
		{"everyone without permission", alice, map[string]any{"message": "x", "mention_everyone": true}, "error_permission"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.who.call(t, "text", "General", "chat", "send_message", tc.payload)
			if got := errType(err); got != tc.want {
				t.Fatalf("got %q (%v), want %s", got, err, tc.want)
			}
		})
	}
	// Nothing of the refused sends was stored.
	r = ok(t)(bob.call(t, "text", "General", "chat", "get_messages", map[string]any{"amount": 10}))
	if n := len(decode[struct {
		Messages []json.RawMessage `json:"messages"`
	}](t, client.Message{Data: r.Payload}).Messages); n != 2 {
		t.Fatalf("%d messages stored", n)
	}
	_, err := alice.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "x", "mentions": []string{"nobody"}})
	if !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("the error does not name the id: %v", err)
	}
}

func TestUnreadAndMarkRead(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	sendIn(t, owner, "chat", map[string]any{"message": "before alice joined"})
	alice := env.join(community.RoleMember)
	bob := env.join(community.RoleMember)
	// A new member has read everything.
	if d := textData(t, alice.login.Interactables, "General", "chat"); d["unread"] != 0 || d["mentions"] != 0 {
		t.Fatalf("new member's counts: %v", d)
	}
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, sendIn(t, bob, "chat", map[string]any{"message": fmt.Sprint(i)}))
	}
	sendIn(t, bob, "chat", map[string]any{"message": "@alice", "mentions": []string{alice.ID}})
	sendIn(t, alice, "chat", map[string]any{"message": "own messages are never unread"})
	// Alice's second device sees the counts at login.
	second, err := env.relogin(alice.testUser)
	if err != nil {
		t.Fatal(err)
	}
	c3 := env.dial("/")
	l3, err := c3.LoginCommunity(ctxT(t), alice.ID, alice.Priv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := textData(t, l3.Interactables, "General", "chat"); d["unread"] != 4 || d["mentions"] != 1 {
		t.Fatalf("counts at login: %v", d)
	}
	if d := textData(t, l3.Interactables, "", "Rules"); d["unread"] != 0 {
		t.Fatalf("Rules: %v", d)
	}

	r := ok(t)(alice.call(t, "text", "General", "chat", "mark_read", map[string]any{"message_id": ids[1]}))
	type readChanged struct {
		MessageID string `json:"message_id"`
		Unread    int    `json:"unread"`
		Mentions  int    `json:"mentions"`
	}
	if got := decode[readChanged](t, client.Message{Data: r.Payload}); r.Result != "read_changed" || got != (readChanged{ids[1], 2, 1}) {
		t.Fatalf("mark_read: %s %+v", r.Result, got)
	}
	if got := decode[readChanged](t, client.Message{Data: nextResult(t, second, "read_changed").Payload}); got != (readChanged{ids[1], 2, 1}) {
		t.Fatalf("other socket: %+v", got)
	}
	quiet(t, bob.c, "read_changed")
	// Back to an older message: success, nothing moves, nobody is told.
	r = ok(t)(alice.call(t, "text", "General", "chat", "mark_read", map[string]any{"message_id": ids[0]}))
	if got := decode[readChanged](t, client.Message{Data: r.Payload}); got != (readChanged{ids[1], 2, 1}) {
		t.Fatalf("older mark_read: %+v", got)
	}
	quiet(t, second, "read_changed")

	otherID := ok(t)(owner.call(t, "text", "", "Rules", "send_message", map[string]any{"message": "in Rules"}))
	other := decode[struct {
		MessageID string `json:"message_id"`
	}](t, client.Message{Data: otherID.Payload}).MessageID
	for _, tc := range []struct {
		name    string
		payload any
		want    string
	}{
		{"no id", map[string]any{}, "error_invalid_data"},
		{"not a string", map[string]any{"message_id": 5}, "error_invalid_data"},
		{"not a uuid", map[string]any{"message_id": "x"}, "error_not_found"},
		{"another channel's", map[string]any{"message_id": other}, "error_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alice.call(t, "text", "General", "chat", "mark_read", tc.payload)
			if got := errType(err); got != tc.want {
				t.Fatalf("got %q (%v), want %s", got, err, tc.want)
			}
		})
	}

	// Reading to the newest clears the channel for every later login.
	newest := sendIn(t, bob, "chat", map[string]any{"message": "last"})
	ok(t)(alice.call(t, "text", "General", "chat", "mark_read", map[string]any{"message_id": newest}))
	c4 := env.dial("/")
	l4, err := c4.LoginCommunity(ctxT(t), alice.ID, alice.Priv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := textData(t, l4.Interactables, "General", "chat"); d["unread"] != 0 || d["mentions"] != 0 {
		t.Fatalf("after reading all: %v", d)
	}
	if d := textData(t, l4.Interactables, "", "Rules"); d["unread"] != 1 {
		t.Fatalf("Rules after a message: %v", d)
	}
}

// BenchmarkCommunityLoginUnread50 is BenchmarkCommunityLogin for a member
// of 50 text channels with 200 unread messages each, a tenth mentioning
// them: the counts at login are 50 index ranges of 200.
func BenchmarkCommunityLoginUnread50(b *testing.B) {
	env := newEnv(b, nil)
	owner := env.join(community.RoleOwner)
	reader := env.join(community.RoleMember)
	for i := range 50 {
		ok(b)(owner.root(b, "create_channel", map[string]any{"path": "", "name": fmt.Sprintf("c%02d", i), "codec": "text"}))
	}
	// Sent without sockets, so that no queue of unread pushes fills up.
	owner.c.Close()
	reader.c.Close()
	sender := community.Member{UserID: owner.ID, Role: community.RoleOwner}
	for i := range 50 {
		for j := range 200 {
			payload := `{"message":"m"}`
			if j%10 == 0 {
				payload = `{"message":"m","mentions":["` + reader.ID + `"]}`
			}
			if _, _, err := env.com.Call(context.Background(), sender, "", fmt.Sprintf("c%02d", i), "text", "send_message", json.RawMessage(payload), nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	opts := &client.Options{MemberKeys: &client.MemberKeyCache{}}
	b.ResetTimer()
	for range b.N {
		c, err := client.Dial(context.Background(), env.url+"/", opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.LoginCommunity(context.Background(), reader.ID, reader.Priv, "", nil); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
