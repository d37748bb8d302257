package api_test

import (
	"strings"
	"testing"

	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

// typingsBefore counts the typing updates c receives before the next
// message_live: the sender's socket handles its frames in order, so once
// the message arrives every typing sent before it has been passed on or
// dropped.
func typingsBefore(t *testing.T, c *client.Client, from string) int {
	t.Helper()
	n := 0
	for {
		m := next(t, c)
		r, _ := m.Result()
		switch r.Result {
		case "typing":
			if strings.Contains(string(r.Payload), from) {
				n++
			}
		case "message_live":
			return n
		}
	}
}

// TestTypingFloodIsCoalesced: a member sends typing as fast as the socket
// allows; the others are sent at most one typing per user and channel
// every community.TypingInterval, the rest are dropped without a reply.
// Another channel, or the next interval, passes again.
func TestTypingFloodIsCoalesced(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	typist := env.join(community.RoleMember)
	reader := env.join(community.RoleMember)
	flood := func(channel string, n int) {
		t.Helper()
		for range n {
			err := typist.c.Send("function", "", map[string]any{"codec": "text", "path": "General", "name": channel,
				"function": "typing", "payload": map[string]any{}})
			if err != nil {
				t.Fatal(err)
			}
		}
		ok(t)(typist.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "done"}))
	}
	flood("chat", 200)
	if n := typingsBefore(t, reader.c, typist.ID); n != 1 {
		t.Fatalf("200 typing frames became %d updates", n)
	}
	// Still within the interval: nothing more.
	flood("chat", 50)
	if n := typingsBefore(t, reader.c, typist.ID); n != 0 {
		t.Fatalf("%d more typing updates within the interval", n)
	}
	// The interval is per channel.
	ok(t)(owner.root(t, "create_channel", map[string]any{"path": "General", "name": "side", "codec": "text"}))
	flood("side", 50)
	if n := typingsBefore(t, reader.c, typist.ID); n != 1 {
		t.Fatalf("another channel: %d updates", n)
	}
	env.clock.Advance(community.TypingInterval)
	flood("chat", 50)
	if n := typingsBefore(t, reader.c, typist.ID); n != 1 {
		t.Fatalf("the next interval: %d updates", n)
	}
	// No typing got a reply: everything the typist was sent is an update.
	for {
		select {
		case m := <-typist.c.Pushes():
			if m.Type != "update" {
				t.Fatalf("the typist got a %s: %s", m.Type, m.Data)
			}
			if r, _ := m.Result(); r.Result == "typing" {
				t.Fatalf("the typist was sent its own typing: %s", m.Data)
			}
		default:
			return
		}
	}
}
