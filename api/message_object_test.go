package api_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

// TestMessageObject: a message that uses every field of PROTOCOL §5.3's
// message object reads the same in message_live, message_chunk and
// list_pins, but for what §5.3 says each leaves out or adds.
func TestMessageObject(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod, bob := env.join(community.RoleModerator), env.join(community.RoleMember)
	first := sendIn(t, bob, "chat", map[string]any{"message": "first"})
	nextResult(t, bob.c, community.ResultMessageLive)
	up := env.upload(t, mod, "dot.png", testPNG(t, 3, 2))
	id := sendIn(t, mod, "chat", map[string]any{"message": "look, bob", "mentions": []string{bob.ID}, "mention_everyone": true,
		"attachments": []string{up.FileID}, "reply_to": first})
	live := decode[map[string]json.RawMessage](t, client.Message{Data: nextResult(t, bob.c, community.ResultMessageLive).Payload})
	ok(t)(bob.call(t, "text", "General", "chat", "add_reaction", map[string]any{"message_id": id, "emoji": "👍"}))
	ok(t)(mod.call(t, "text", "General", "chat", "pin_message", map[string]any{"message_id": id}))

	chunk := decode[struct {
		Messages []map[string]json.RawMessage `json:"messages"`
	}](t, client.Message{Data: ok(t)(bob.call(t, "text", "General", "chat", "get_messages", map[string]any{"amount": 1})).Payload}).Messages[0]
	pin := decode[struct {
		Pins []map[string]json.RawMessage `json:"pins"`
	}](t, client.Message{Data: ok(t)(bob.call(t, "text", "General", "chat", "list_pins", map[string]any{})).Payload}).Pins[0]

	keys := func(m map[string]json.RawMessage) []string { return slices.Sorted(maps.Keys(m)) }
	want := []string{"attachments", "mention_everyone", "mentions", "message", "message_id", "reactions", "reply", "reply_to", "send_time", "sender_id"}
	if got := keys(chunk); !slices.Equal(got, want) {
		t.Fatalf("chunk fields %v, want %v", got, want)
	}
	if _, has := live["reactions"]; has {
		t.Fatalf("message_live has reactions: %v", live)
	}
	live["reactions"] = chunk["reactions"]
	if !maps.EqualFunc(live, chunk, func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
		t.Fatalf("message_live and the chunk differ:\n%v\n%v", live, chunk)
	}
	if _, has := pin["pinned_by"]; !has {
		t.Fatalf("pin without pinned_by: %v", pin)
	}
	delete(pin, "pinned_by")
	delete(pin, "pinned_at")
	if !maps.EqualFunc(pin, chunk, func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
		t.Fatalf("list_pins and the chunk differ:\n%v\n%v", pin, chunk)
	}
}
