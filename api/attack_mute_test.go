package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

// muteEvents collects the community's MuteCall events: the hook that has
// the SFU drop (or forward again) a user's audio.
func muteEvents(env *testEnv) <-chan community.Event {
	ch := make(chan community.Event, 64)
	env.com.Subscribe(func(e community.Event) {
		if e.MuteCall != "" {
			select {
			case ch <- e:
			default:
			}
		}
	})
	return ch
}

func waitMute(t *testing.T, events <-chan community.Event, userID string, muted bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e.MuteCall == userID && e.Muted == muted {
				return
			}
		case <-deadline:
			t.Fatalf("the SFU was not told muted=%t for %s", muted, userID)
		}
	}
}

// enterCall opens a call socket for m in General/VC-1 (signalling only, no
// media) and returns it with the peers of its identification_response.
func (e *testEnv) enterCall(t *testing.T, m *member) (*client.Client, string) {
	t.Helper()
	tk, _ := e.callTicket(m, "General", "VC-1")
	sock := e.dial("/ws/calls/")
	reply, err := sock.Request(ctxT(t), "identification", map[string]any{"path": "General", "name": "VC-1", "ticket": tk})
	if err != nil {
		t.Fatalf("call login: %v", err)
	}
	return sock, string(reply.Data)
}

// TestServerMutedUserCannotUnmuteByRejoining: a moderator server-mutes a
// member, who then leaves the call and comes back, reconnects their
// community socket and comes back, or comes back over a second call
// socket. Each time they are still server-muted: their voice state says
// so and the SFU is told to drop their audio. Only an unmute lifts it.
func TestServerMutedUserCannotUnmuteByRejoining(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod := env.join(community.RoleModerator)
	loud := env.join(community.RoleMember)
	events := muteEvents(env)
	mutedPeer := `"user_id":"` + loud.ID + `","state":"active","streaming":false,"speaking":false,"server_muted":true`

	sock, _ := env.enterCall(t, loud)
	r := ok(t)(mod.call(t, "voice", "General", "VC-1", "mute_user", map[string]any{"user_id": loud.ID}))
	if !strings.Contains(string(r.Payload), `"server_muted":true`) {
		t.Fatalf("mute: %s", r.Payload)
	}
	waitMute(t, events, loud.ID, true)

	// Leave and rejoin.
	ok(t)(loud.call(t, "voice", "General", "VC-1", "leave", nil))
	waitClosed(t, sock)
	for {
		if got := nextResult(t, mod.c, "user_changed"); strings.Contains(string(got.Payload), `"state":"inactive"`) {
			break
		}
	}
	sock, peers := env.enterCall(t, loud)
	if !strings.Contains(peers, mutedPeer) {
		t.Fatalf("after rejoining: %s", peers)
	}
	waitMute(t, events, loud.ID, true)
	if got := nextResult(t, mod.c, "user_changed"); !strings.Contains(string(got.Payload), `"server_muted":true`) {
		t.Fatalf("others see %s", got.Payload)
	}

	// A second call socket replaces the first: still muted.
	_, peers = env.enterCall(t, loud)
	if !strings.Contains(peers, mutedPeer) {
		t.Fatalf("over a second call socket: %s", peers)
	}
	waitMute(t, events, loud.ID, true)
	waitClosed(t, sock)

	// Reconnect the community socket, then the call.
	loud.c.Close()
	c, err := env.relogin(loud.testUser)
	if err != nil {
		t.Fatal(err)
	}
	loud.c = c
	if _, peers = env.enterCall(t, loud); !strings.Contains(peers, mutedPeer) {
		t.Fatalf("after reconnecting: %s", peers)
	}
	waitMute(t, events, loud.ID, true)

	// The member cannot lift it; the moderator can, even while they are away.
	if _, err := loud.call(t, "voice", "General", "VC-1", "mute_user", map[string]any{"user_id": loud.ID, "muted": false}); errType(err) != "error_permission" {
		t.Fatalf("self-unmute: %v", err)
	}
	ok(t)(loud.call(t, "voice", "General", "VC-1", "leave", nil))
	r = ok(t)(mod.call(t, "voice", "General", "VC-1", "mute_user", map[string]any{"user_id": loud.ID, "muted": false}))
	if strings.Contains(string(r.Payload), `"server_muted":true`) {
		t.Fatalf("unmute: %s", r.Payload)
	}
	waitMute(t, events, loud.ID, false)
	if _, peers = env.enterCall(t, loud); strings.Contains(peers, `"server_muted":true`) {
		t.Fatalf("after the unmute: %s", peers)
	}
}
