package api_test

import (
	"context"
	"testing"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	icrypto "github.com/iotad/iotad/crypto"
)

// pendingLogin identifies as u on a fresh community socket and returns the
// socket and the answer, leaving the challenge open. u logs in once first,
// as a returning member would have, so that the server holds u's row in
// memory: the change the test makes must reach that too.
func pendingLogin(t *testing.T, env *testEnv, u testUser) (*client.Client, string) {
	t.Helper()
	before, err := env.relogin(u)
	if err != nil {
		t.Fatal(err)
	}
	before.Close()
	c := env.dial("/")
	ch, err := c.Request(ctxT(t), "identification", map[string]any{"user_id": u.ID})
	if err != nil {
		t.Fatal(err)
	}
	pin := env.com.Public
	answer, _, err := client.Solve(u.Priv, ch, client.Expect{Role: icrypto.RoleCommunity, UserID: u.ID, Server: &pin})
	if err != nil {
		t.Fatal(err)
	}
	return c, answer
}

// TestBanDuringPendingLogin: a member holds a challenge open while the
// owner bans, kicks or demotes them, then answers. The login must see the
// member as they are when the answer arrives, not as they were.
func TestBanDuringPendingLogin(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	ctx := context.Background()

	t.Run("banned", func(t *testing.T) {
		m := env.join(community.RoleMember)
		c, answer := pendingLogin(t, env, m.testUser)
		ok(t)(owner.root(t, "ban", map[string]any{"user_id": m.ID}))
		_, err := c.Request(ctxT(t), "challenge_response", map[string]string{"challenge": answer})
		if got := errType(err); got != api.ErrTypePermission {
			t.Fatalf("banned member's answer: %s, want %s", got, api.ErrTypePermission)
		}
		if _, err := c.Function(ctxT(t), "text", "", "general", "send_message", map[string]any{"message": "still here"}); errType(err) != api.ErrTypeNotAuthenticated {
			t.Fatalf("banned member could act: %v", err)
		}
	})
	t.Run("kicked", func(t *testing.T) {
		m := env.join(community.RoleMember)
		c, answer := pendingLogin(t, env, m.testUser)
		ok(t)(owner.root(t, "kick", map[string]any{"user_id": m.ID}))
		_, err := c.Request(ctxT(t), "challenge_response", map[string]string{"challenge": answer})
		if got := errType(err); got != api.ErrTypeInvalidUserID {
			t.Fatalf("kicked member's answer: %s, want %s", got, api.ErrTypeInvalidUserID)
		}
	})
	t.Run("demoted", func(t *testing.T) {
		m := env.join(community.RoleAdmin)
		c, answer := pendingLogin(t, env, m.testUser)
		if err := env.com.OperatorSetRole(ctx, m.ID, community.RoleMember); err != nil {
			t.Fatal(err)
		}
		res, err := c.Request(ctxT(t), "challenge_response", map[string]string{"challenge": answer})
		if err != nil {
			t.Fatal(err)
		}
		if l := decode[client.Login](t, res); l.Role != string(community.RoleMember) {
			t.Fatalf("demoted admin logged in as %q", l.Role)
		}
		s := &member{testUser: m.testUser, c: c}
		if _, err := s.root(t, "kick", map[string]any{"user_id": owner.ID}); errType(err) != api.ErrTypePermission {
			t.Fatalf("demoted admin could kick: %v", err)
		}
	})
}

// TestFirstVisitsCannotFillTheSecretCache: identifications with made-up
// user ids and a valid invite (a shared friends' invite is enough) get
// challenges, but leave nothing behind in the server's per-member cache;
// only a completed login does.
func TestFirstVisitsCannotFillTheSecretCache(t *testing.T) {
	env := newEnv(t, nil)
	secret := env.invite(community.InviteOptions{MaxUses: 1000})
	before := env.srv.CachedSecrets()
	c := env.dial("/")
	for range 50 {
		u := newKey(t)
		if _, err := c.Request(ctxT(t), "identification", map[string]any{"user_id": u.ID, "public_key": u.Pub.String(), "invite": secret}); err != nil {
			t.Fatal(err)
		}
	}
	if got := env.srv.CachedSecrets(); got != before {
		t.Fatalf("50 first visits that never answered left %d cached secrets (before: %d)", got, before)
	}
	env.join(community.RoleMember)
	if got := env.srv.CachedSecrets(); got != before+1 {
		t.Fatalf("a completed join cached %d secrets, want %d", got, before+1)
	}
}

// TestJoinDoesOneStaticX448: a first visit computes X448(S, U) for its
// challenge, and the member key of the login it completes and the member's
// later logins reuse it; none computes it again.
func TestJoinDoesOneStaticX448(t *testing.T) {
	env := newEnv(t, nil)
	n := env.srv.CountStaticX448()
	m := env.join(community.RoleMember)
	if got := n.Load(); got != 1 {
		t.Fatalf("a join did %d X448(S, U), want 1", got)
	}
	c, err := env.relogin(m.testUser)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := n.Load(); got != 1 {
		t.Fatalf("a join and a login did %d X448(S, U), want 1", got)
	}
}
