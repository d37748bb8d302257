package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

type searchReply struct {
	Messages []struct {
		MessageID string `json:"message_id"`
		Message   string `json:"message"`
		SenderID  string `json:"sender_id"`
		SendTime  int64  `json:"send_time"`
		EditedAt  *int64 `json:"edited_at"`
		Path      string `json:"path"`
		Name      string `json:"name"`
	} `json:"messages"`
	HasMore bool `json:"has_more"`
}

// TestSearchOverTheSocket: one member posts, another finds it by a word
// with the root function search, over a real socket; every bad field gets
// its one error type.
func TestSearchOverTheSocket(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice, bob := env.join(community.RoleMember), env.join(community.RoleMember)
	sent := ok(t)(alice.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "Meet at the lighthouse"}))
	ok(t)(alice.call(t, "text", "", "Rules", "send_message", map[string]any{"message": "no lighthouse talk"}))
	var id struct {
		MessageID string `json:"message_id"`
	}
	json.Unmarshal(sent.Payload, &id)

	r := ok(t)(bob.root(t, "search", map[string]any{"query": "LIGHTHOUSE meet"}))
	got := decode[searchReply](t, client.Message{Data: r.Payload})
	if r.Result != "search" || r.Codec != "community" || len(got.Messages) != 1 || got.HasMore {
		t.Fatalf("reply %+v: %s", r, r.Payload)
	}
	if h := got.Messages[0]; h.MessageID != id.MessageID || h.Message != "Meet at the lighthouse" || h.SenderID != alice.ID ||
		h.Path != "General" || h.Name != "chat" || h.SendTime == 0 || h.EditedAt != nil {
		t.Fatalf("hit %+v", h)
	}
	r = ok(t)(bob.root(t, "search", map[string]any{"query": "lighthouse", "amount": 1}))
	got = decode[searchReply](t, client.Message{Data: r.Payload})
	if len(got.Messages) != 1 || got.Messages[0].Name != "Rules" || !got.HasMore {
		t.Fatalf("page 1: %s", r.Payload)
	}
	r = ok(t)(bob.root(t, "search", map[string]any{"query": "lighthouse", "before": got.Messages[0].MessageID}))
	got = decode[searchReply](t, client.Message{Data: r.Payload})
	if len(got.Messages) != 1 || got.Messages[0].MessageID != id.MessageID || got.HasMore {
		t.Fatalf("page 2: %s", r.Payload)
	}

	for _, tc := range []struct {
		name    string
		payload any
		want    string
	}{
		{"no payload", nil, api.ErrTypeInvalidData},
		{"empty query", map[string]any{"query": ""}, api.ErrTypeInvalidData},
		{"query too long", map[string]any{"query": strings.Repeat("x", 201)}, api.ErrTypeInvalidData},
		{"punctuation only", map[string]any{"query": "?!..."}, api.ErrTypeInvalidData},
		{"query a number", map[string]any{"query": 3}, api.ErrTypeInvalidData},
		{"amount 0", map[string]any{"query": "x", "amount": 0}, api.ErrTypeInvalidData},
		{"amount 51", map[string]any{"query": "x", "amount": 51}, api.ErrTypeInvalidData},
		{"amount x", map[string]any{"query": "x", "amount": "x"}, api.ErrTypeInvalidData},
		{"author empty", map[string]any{"query": "x", "author_id": ""}, api.ErrTypeInvalidData},
		{"author a number", map[string]any{"query": "x", "author_id": 5}, api.ErrTypeInvalidData},
		{"before not a uuid", map[string]any{"query": "x", "before": "yesterday"}, api.ErrTypeNotFound},
		{"before unknown", map[string]any{"query": "x", "before": uuid.NewString()}, api.ErrTypeNotFound},
		{"before a number", map[string]any{"query": "x", "before": 5}, api.ErrTypeInvalidData},
		{"unknown channel", map[string]any{"query": "x", "path": "General", "name": "nope"}, api.ErrTypeNotFound},
		{"voice channel", map[string]any{"query": "x", "path": "General", "name": "VC-1"}, api.ErrTypeInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bob.root(t, "search", tc.payload)
			if errType(err) != tc.want {
				t.Fatalf("%v: %v, want %s", tc.payload, err, tc.want)
			}
		})
	}
}
