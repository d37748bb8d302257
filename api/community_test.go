package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	icrypto "github.com/iotad/iotad/crypto"
)

// member is a user logged in to the test community.
type member struct {
	testUser
	c     *client.Client
	login client.Login
}

func newKey(t testing.TB) testUser {
	t.Helper()
	pub, priv, err := icrypto.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testUser{ID: uuid.NewString(), Priv: priv, Pub: pub}
}

// invite makes an operator invite for the test community.
func (e *testEnv) invite(opts community.InviteOptions) string {
	e.t.Helper()
	secret, _, err := e.com.CreateOperatorInvite(context.Background(), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// join makes a new user a member with the given role and logs them in.
func (e *testEnv) join(role community.Role) *member {
	e.t.Helper()
	u := newKey(e.t)
	c := e.dial("/")
	pin := e.com.Public
	l, err := c.LoginCommunity(ctxT(e.t), u.ID, u.Priv, e.invite(community.InviteOptions{}), &pin)
	if err != nil {
		e.t.Fatalf("join: %v", err)
	}
	if role != community.RoleMember {
		if err := e.com.OperatorSetRole(context.Background(), u.ID, role); err != nil {
			e.t.Fatal(err)
		}
		// The role_changed update confirms the session knows its new role.
		for {
			m := next(e.t, c)
			if r, _ := m.Result(); r.Result == api.ResultRoleChanged && strings.Contains(string(r.Payload), u.ID) {
				break
			}
		}
	}
	return &member{testUser: u, c: c, login: l}
}

// relogin opens a fresh community socket for an existing member.
func (e *testEnv) relogin(u testUser) (*client.Client, error) {
	c := e.dial("/")
	_, err := c.LoginCommunity(ctxT(e.t), u.ID, u.Priv, "", nil)
	return c, err
}

func (m *member) call(t testing.TB, codec, path, name, function string, payload any) (client.FunctionResult, error) {
	t.Helper()
	msg, err := m.c.Function(ctxT(t), codec, path, name, function, payload)
	if err != nil {
		return client.FunctionResult{}, err
	}
	r, err := msg.Result()
	if err != nil {
		t.Fatal(err)
	}
	return r, nil
}

func (m *member) root(t testing.TB, function string, payload any) (client.FunctionResult, error) {
	return m.call(t, "community", "", "", function, payload)
}

// ok fails the test when a call failed: ok(t)(m.root(t, ...)).
func ok(t testing.TB) func(client.FunctionResult, error) client.FunctionResult {
	return func(r client.FunctionResult, err error) client.FunctionResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// nextResult waits for the next update with the given result, skipping others.
func nextResult(t testing.TB, c *client.Client, result string) client.FunctionResult {
	t.Helper()
	for {
		m := next(t, c)
		if m.Type != "update" {
			continue
		}
		r, err := m.Result()
		if err != nil {
			t.Fatal(err)
		}
		if r.Result == result {
			return r
		}
	}
}

// quiet asserts that c receives nothing with the given result for a moment.
func quiet(t testing.TB, c *client.Client, result string) {
	t.Helper()
	timeout := time.After(150 * time.Millisecond)
	for {
		select {
		case m := <-c.Pushes():
			if r, _ := m.Result(); r.Result == result {
				t.Fatalf("unexpected %s: %s", result, m.Data)
			}
		case <-timeout:
			return
		}
	}
}

// treeKeys lists an interactables object's keys in order, nested with "/".
func treeKeys(t testing.TB, raw json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	var keys []string
	var walk func(prefix string)
	walk = func(prefix string) {
		dec.Token() // {
		for dec.More() {
			tok, _ := dec.Token()
			name := tok.(string)
			keys = append(keys, prefix+name)
			dec.Token() // { of {codec, data}
			var codec string
			for dec.More() {
				field, _ := dec.Token()
				switch field {
				case "codec":
					dec.Decode(&codec)
				case "data":
					if codec == "category" {
						walk(prefix + name + "/")
					} else {
						var skip json.RawMessage
						dec.Decode(&skip)
					}
				}
			}
			dec.Token() // }
		}
		dec.Token() // }
	}
	walk("")
	return keys
}

func setupChannels(t testing.TB, owner *member) {
	t.Helper()
	for _, ch := range []struct{ path, name, codec string }{
		{"", "General", "category"},
		{"General", "chat", "text"},
		{"General", "VC-1", "voice"},
		{"", "Rules", "text"},
	} {
		ok(t)(owner.root(t, "create_channel", map[string]any{"path": ch.path, "name": ch.name, "codec": ch.codec}))
	}
}

// TestTwoUsersEndToEnd is the done-means test: join with an invite,
// log in, see the tree, chat both ways live, a moderator deletes a message,
// the owner kicks a user.
func TestTwoUsersEndToEnd(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice := env.join(community.RoleMember)
	bob := env.join(community.RoleMember)
	mod := env.join(community.RoleModerator)

	if got := strings.Join(treeKeys(t, bob.login.Interactables), ","); got != "General,General/chat,General/VC-1,Rules" {
		t.Fatalf("bob sees %s", got)
	}
	if bob.login.Role != "member" {
		t.Fatalf("role %s", bob.login.Role)
	}

	r := ok(t)(alice.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "hi bob"}))
	sent := decode[struct {
		MessageID string `json:"message_id"`
		SendTime  int64  `json:"send_time"`
	}](t, client.Message{Data: r.Payload})
	if r.Result != "message_received" || sent.MessageID == "" || sent.SendTime == 0 {
		t.Fatalf("send: %+v", r)
	}
	for _, who := range []*member{alice, bob, owner} {
		live := nextResult(t, who.c, "message_live")
		got := decode[community.Message](t, client.Message{Data: live.Payload})
		if got.ID != sent.MessageID || got.Body != "hi bob" || got.SenderID != alice.ID || live.Name != "chat" || live.Path != "General" || live.Codec != "text" {
			t.Fatalf("%s got %+v %+v", who.ID, live, got)
		}
	}
	ok(t)(bob.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "hi alice"}))
	if got := decode[community.Message](t, client.Message{Data: nextResult(t, alice.c, "message_live").Payload}); got.Body != "hi alice" {
		t.Fatalf("alice got %+v", got)
	}

	ok(t)(mod.call(t, "text", "General", "chat", "delete_message", map[string]any{"message_id": sent.MessageID}))
	if got := nextResult(t, bob.c, "message_deleted"); !strings.Contains(string(got.Payload), sent.MessageID) {
		t.Fatalf("bob got %s", got.Payload)
	}
	chunk := ok(t)(bob.call(t, "text", "General", "chat", "get_messages", map[string]any{"loaded_messages": 0, "amount": 50}))
	msgs := decode[struct{ Messages []community.Message }](t, client.Message{Data: chunk.Payload}).Messages
	if len(msgs) != 1 || msgs[0].Body != "hi alice" {
		t.Fatalf("history after delete: %+v", msgs)
	}

	ok(t)(owner.root(t, "kick", map[string]any{"user_id": bob.ID}))
	if code := waitClosed(t, bob.c); code != 4001 {
		t.Fatalf("kicked socket closed with %d", code)
	}
	if _, err := env.relogin(bob.testUser); errType(err) != api.ErrTypeInvalidUserID {
		t.Fatalf("kicked user logs in: %v", err)
	}
	audit := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 100}))
	for _, want := range []string{`"action":"delete_message"`, `"action":"kick"`, `"action":"create_channel"`} {
		if !strings.Contains(string(audit.Payload), want) {
			t.Fatalf("audit log lacks %s: %s", want, audit.Payload)
		}
	}
}

func TestJoinRules(t *testing.T) {
	env := newEnv(t, nil)
	ctx := context.Background()
	owner := env.join(community.RoleOwner)

	tryJoin := func(u testUser, invite string) error {
		c := env.dial("/")
		_, err := c.LoginCommunity(ctxT(t), u.ID, u.Priv, invite, nil)
		return err
	}
	used := env.invite(community.InviteOptions{})
	first := newKey(t)
	if err := tryJoin(first, used); err != nil {
		t.Fatal(err)
	}
	expiring := env.invite(community.InviteOptions{TTL: time.Minute})
	revoked, inv, _ := env.com.CreateOperatorInvite(ctx, community.InviteOptions{})
	ownerMember, _ := env.com.Member(ctx, owner.ID)
	if err := env.com.RevokeInvite(ctx, ownerMember, inv.ID); err != nil {
		t.Fatal(err)
	}
	bound := env.invite(community.InviteOptions{UserID: "someone-else"})

	for _, tc := range []struct {
		name   string
		user   testUser
		invite string
		before func()
		want   string
	}{
		{"second join with a spent invite", newKey(t), used, nil, api.ErrTypeInvalidSecret},
		{"unknown invite", newKey(t), "nope", nil, api.ErrTypeInvalidSecret},
		{"revoked invite", newKey(t), revoked, nil, api.ErrTypeInvalidSecret},
		{"invite for another user", newKey(t), bound, nil, api.ErrTypeInvalidSecret},
		{"expired invite", newKey(t), expiring, func() { env.clock.Advance(2 * time.Minute) }, api.ErrTypeInvalidSecret},
		{"member again with the same key", first, used, nil, ""},
		{"member with another key", testUser{ID: first.ID, Priv: newKey(t).Priv}, env.invite(community.InviteOptions{}), nil, api.ErrTypeInvalidUserID},
		{"no invite", newKey(t), "", nil, api.ErrTypeInvalidUserID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			if err := tryJoin(tc.user, tc.invite); errType(err) != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("bad public key", func(t *testing.T) {
		for _, key := range []string{"AAAA", icrypto.PublicKey{}.String()} { // short; the zero key, low order
			c := env.dial("/")
			_, err := c.Request(ctxT(t), "identification", map[string]any{"user_id": "x", "public_key": key, "invite": env.invite(community.InviteOptions{})})
			if errType(err) != api.ErrTypeInvalidPublicKey {
				t.Fatalf("public_key %q: got %v", key, err)
			}
		}
	})
	t.Run("whole tensamin text as invite", func(t *testing.T) {
		secret := env.invite(community.InviteOptions{})
		if err := tryJoin(newKey(t), api.InviteText("example.org:1984", secret, env.com.Public, false)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failed first visit spends nothing", func(t *testing.T) {
		secret := env.invite(community.InviteOptions{})
		u := newKey(t)
		c := env.dial("/")
		if _, err := c.Request(ctxT(t), "identification", map[string]any{"user_id": u.ID, "public_key": u.Pub.String(), "invite": secret}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Request(ctxT(t), "challenge_response", map[string]any{"challenge": "wrong"}); errType(err) != api.ErrTypeInvalidChallenge {
			t.Fatalf("wrong answer: %v", err)
		}
		if _, err := env.com.Member(ctx, u.ID); err == nil {
			t.Fatal("a failed join made a member")
		}
		if err := tryJoin(u, secret); err != nil {
			t.Fatalf("the invite was spent by a failed join: %v", err)
		}
	})
	t.Run("a community that is not the pinned one gets no answer", func(t *testing.T) {
		u := newKey(t)
		c := env.dial("/")
		other, _, _ := icrypto.GenerateKey(rand.Reader)
		if _, err := c.LoginCommunity(ctxT(t), u.ID, u.Priv, env.invite(community.InviteOptions{}), &other); !errors.Is(err, client.ErrServerIdentity) {
			t.Fatalf("pinned to another key: %v", err)
		}
		if _, err := env.com.Member(ctx, u.ID); err == nil {
			t.Fatal("the refused login made a member")
		}
	})
}

// TestConcurrentJoins races many users for the last use of an invite over
// real sockets: exactly one becomes a member.
func TestConcurrentJoins(t *testing.T) {
	env := newEnv(t, nil)
	secret := env.invite(community.InviteOptions{MaxUses: 1})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	// Every client gets its challenge first, so all answers race.
	clients := make([]*client.Client, n)
	users := make([]testUser, n)
	answers := make([]string, n)
	for i := range clients {
		users[i] = newKey(t)
		clients[i] = env.dial("/")
		ch, err := clients[i].Request(ctxT(t), "identification", map[string]any{"user_id": users[i].ID, "public_key": users[i].Pub.String(), "invite": secret})
		if err != nil {
			t.Fatal(err)
		}
		answers[i], _, _ = client.Solve(users[i].Priv, ch, client.Expect{Role: icrypto.RoleCommunity, UserID: users[i].ID})
	}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = clients[i].Request(ctxT(t), "challenge_response", map[string]string{"challenge": answers[i]})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch errType(err) {
		case "":
			won++
		case api.ErrTypeInvalidSecret:
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d joins won a one-use invite", won)
	}
}

func TestTreeFunctions(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	admin := env.join(community.RoleAdmin)
	plain := env.join(community.RoleMember)
	setupChannels(t, owner)
	tree := func() string {
		return strings.Join(treeKeys(t, env.com.TreeJSON()), ",")
	}
	const start = "General,General/chat,General/VC-1,Rules"
	if tree() != start {
		t.Fatalf("tree %s", tree())
	}
	// Everyone hears about changes, with their view of the tree.
	ok(t)(admin.root(t, "create_channel", map[string]any{"path": "General", "name": "first", "codec": "text", "position": 0}))
	var payload struct{ Interactables json.RawMessage }
	for !strings.Contains(string(payload.Interactables), `"first"`) {
		json.Unmarshal(nextResult(t, plain.c, "interactables_changed").Payload, &payload)
	}
	if keys := strings.Join(treeKeys(t, payload.Interactables), ","); keys != "General,General/first,General/chat,General/VC-1,Rules" {
		t.Fatalf("pushed tree %s", keys)
	}
	ok(t)(admin.root(t, "rename_channel", map[string]any{"path": "General", "name": "first", "new_name": "second"}))
	ok(t)(admin.root(t, "move_channel", map[string]any{"path": "General", "name": "second", "new_path": "", "position": 1}))
	ok(t)(admin.root(t, "create_channel", map[string]any{"path": "", "name": "Sub", "codec": "category"}))
	ok(t)(admin.root(t, "move_channel", map[string]any{"path": "", "name": "General", "new_path": "Sub"}))
	if got := tree(); got != "second,Rules,Sub,Sub/General,Sub/General/chat,Sub/General/VC-1" {
		t.Fatalf("tree %s", got)
	}
	ok(t)(admin.root(t, "delete_channel", map[string]any{"path": "", "name": "second"}))
	ok(t)(admin.root(t, "move_channel", map[string]any{"path": "Sub", "name": "General", "new_path": ""}))
	ok(t)(admin.root(t, "delete_channel", map[string]any{"path": "", "name": "Sub"}))
	if got := tree(); got != "Rules,General,General/chat,General/VC-1" {
		t.Fatalf("tree %s", got)
	}
	before := tree()

	deep := map[string]any{}
	path := ""
	for i := 0; i < 8; i++ {
		ok(t)(admin.root(t, "create_channel", map[string]any{"path": path, "name": fmt.Sprintf("d%d", i), "codec": "category"}))
		path = strings.TrimPrefix(path+"/"+fmt.Sprintf("d%d", i), "/")
	}
	deep = map[string]any{"path": path, "name": "d8", "codec": "category"}
	before = tree()

	for _, tc := range []struct {
		name     string
		who      *member
		function string
		payload  map[string]any
		want     string
	}{
		{"member creates", plain, "create_channel", map[string]any{"path": "", "name": "x", "codec": "text"}, api.ErrTypePermission},
		{"member creates nowhere", plain, "create_channel", map[string]any{"path": "nope", "name": "x", "codec": "text"}, api.ErrTypePermission},
		{"member renames", plain, "rename_channel", map[string]any{"path": "", "name": "Rules", "new_name": "x"}, api.ErrTypePermission},
		{"member moves", plain, "move_channel", map[string]any{"path": "", "name": "Rules", "new_path": "General"}, api.ErrTypePermission},
		{"member deletes", plain, "delete_channel", map[string]any{"path": "", "name": "Rules"}, api.ErrTypePermission},
		{"member lists invites", plain, "list_invites", nil, api.ErrTypePermission},
		{"member bans", plain, "ban", map[string]any{"user_id": admin.ID}, api.ErrTypePermission},
		{"member reads audit", plain, "audit_log", map[string]any{"amount": 5}, api.ErrTypePermission},
		{"member invites", plain, "create_invite", nil, api.ErrTypePermission},
		{"duplicate name", admin, "create_channel", map[string]any{"path": "General", "name": "chat", "codec": "text"}, api.ErrTypeConflict},
		{"duplicate after NFC", admin, "create_channel", map[string]any{"path": "", "name": "Caf\u00e9", "codec": "text"}, ""},
		{"duplicate decomposed", admin, "create_channel", map[string]any{"path": "", "name": "Cafe\u0301", "codec": "text"}, api.ErrTypeConflict},
		{"slash in name", admin, "create_channel", map[string]any{"path": "", "name": "a/b", "codec": "text"}, api.ErrTypeInvalidData},
		{"empty name", admin, "create_channel", map[string]any{"path": "", "name": "", "codec": "text"}, api.ErrTypeInvalidData},
		{"long name", admin, "create_channel", map[string]any{"path": "", "name": strings.Repeat("é", 65), "codec": "text"}, api.ErrTypeInvalidData},
		{"control char", admin, "create_channel", map[string]any{"path": "", "name": "a\x00b", "codec": "text"}, api.ErrTypeInvalidData},
		{"zero-width", admin, "create_channel", map[string]any{"path": "", "name": "a\u200bb", "codec": "text"}, api.ErrTypeInvalidData},
		{"leading space", admin, "create_channel", map[string]any{"path": "", "name": " a", "codec": "text"}, api.ErrTypeInvalidData},
		{"unknown codec", admin, "create_channel", map[string]any{"path": "", "name": "x", "codec": "nope"}, api.ErrTypeInvalidData},
		{"missing parent", admin, "create_channel", map[string]any{"path": "nope", "name": "x", "codec": "text"}, api.ErrTypeNotFound},
		{"parent not a category", admin, "create_channel", map[string]any{"path": "Rules", "name": "x", "codec": "text"}, api.ErrTypeNotFound},
		{"negative position", admin, "create_channel", map[string]any{"path": "", "name": "x", "codec": "text", "position": -1}, api.ErrTypeInvalidData},
		{"name not a string", admin, "create_channel", map[string]any{"path": "", "name": 5, "codec": "text"}, api.ErrTypeInvalidData},
		{"too deep", admin, "create_channel", deep, api.ErrTypeInvalidData},
		{"move into itself", admin, "move_channel", map[string]any{"path": "", "name": "General", "new_path": "General"}, api.ErrTypeInvalidData},
		{"move into child", admin, "move_channel", map[string]any{"path": "", "name": "d0", "new_path": "d0/d1"}, api.ErrTypeInvalidData},
		{"move deep under deep", admin, "move_channel", map[string]any{"path": "", "name": "General", "new_path": path}, api.ErrTypeInvalidData},
		{"move onto a name", admin, "move_channel", map[string]any{"path": "General", "name": "chat", "new_path": ""}, ""},
		{"rename to a taken name", admin, "rename_channel", map[string]any{"path": "", "name": "chat", "new_name": "Rules"}, api.ErrTypeConflict},
		{"rename unknown", admin, "rename_channel", map[string]any{"path": "", "name": "nope", "new_name": "x"}, api.ErrTypeNotFound},
		{"delete non-empty", admin, "delete_channel", map[string]any{"path": "", "name": "General"}, api.ErrTypeConflict},
		{"unknown root function", admin, "fly", nil, api.ErrTypeInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.who.root(t, tc.function, tc.payload)
			if errType(err) != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if tc.want != "" && tree() != before {
				t.Fatalf("a refused %s changed the tree", tc.function)
			}
			before = tree()
		})
	}
	if got := tree(); !strings.HasPrefix(got, "Rules,General,General/VC-1,d0,") || !strings.HasSuffix(got, ",Café,chat") {
		t.Fatalf("tree after table %s", got)
	}
}

func TestTextFunctions(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice := env.join(community.RoleMember)
	bob := env.join(community.RoleMember)
	send := func(who *member, body string) string {
		r := ok(t)(who.call(t, "text", "General", "chat", "send_message", map[string]any{"message": body}))
		return decode[struct {
			MessageID string `json:"message_id"`
		}](t, client.Message{Data: r.Payload}).MessageID
	}
	var ids []string
	for i := 0; i < 25; i++ {
		ids = append(ids, send(alice, fmt.Sprintf("m%d", i)))
	}
	page := func(payload map[string]any) ([]community.Message, bool) {
		r := ok(t)(alice.call(t, "text", "General", "chat", "get_messages", payload))
		out := decode[struct {
			Messages []community.Message `json:"messages"`
			HasMore  bool                `json:"has_more"`
		}](t, client.Message{Data: r.Payload})
		return out.Messages, out.HasMore
	}
	msgs, more := page(map[string]any{"loaded_messages": 0, "amount": 10})
	if len(msgs) != 10 || msgs[9].Body != "m24" || msgs[0].Body != "m15" || !more {
		t.Fatalf("newest page: %d %v %v", len(msgs), msgs[0].Body, more)
	}
	msgs, more = page(map[string]any{"loaded_messages": 20, "amount": 10})
	if len(msgs) != 5 || msgs[0].Body != "m0" || more {
		t.Fatalf("last page: %d %v", len(msgs), more)
	}
	msgs, more = page(map[string]any{"before": ids[10], "amount": 5})
	if len(msgs) != 5 || msgs[0].Body != "m5" || msgs[4].Body != "m9" || !more {
		t.Fatalf("before page: %+v %v", msgs, more)
	}
	if msgs, more = page(map[string]any{"loaded_messages": 1000, "amount": 10}); len(msgs) != 0 || more {
		t.Fatalf("beyond the end: %d %v", len(msgs), more)
	}
	if msgs, _ = page(map[string]any{"amount": 3}); len(msgs) != 3 || msgs[2].Body != "m24" {
		t.Fatalf("no offset: %+v", msgs)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ids not increasing: %s then %s", ids[i-1], ids[i])
		}
	}

	r := ok(t)(alice.call(t, "text", "General", "chat", "edit_message", map[string]any{"message_id": ids[0], "message": "edited"}))
	if r.Result != "message_edited" {
		t.Fatalf("edit: %+v", r)
	}
	if got := nextResult(t, bob.c, "message_edited"); !strings.Contains(string(got.Payload), `"message":"edited"`) {
		t.Fatalf("bob got %s", got.Payload)
	}
	// typing has no reply, so it is sent without waiting for one.
	bob.c.Send("function", "t1", map[string]any{"codec": "text", "path": "General", "name": "chat", "function": "typing", "payload": map[string]any{}})
	if got := nextResult(t, alice.c, "typing"); !strings.Contains(string(got.Payload), bob.ID) {
		t.Fatalf("typing: %s", got.Payload)
	}
	quiet(t, bob.c, "typing")

	long := strings.Repeat("é", 4001)
	for _, tc := range []struct {
		name, codec, path, channel, function string
		payload                              any
		who                                  *member
		want                                 string
	}{
		{"unknown channel", "text", "General", "nope", "send_message", map[string]any{"message": "x"}, alice, api.ErrTypeNotFound},
		{"unknown category", "text", "Nope", "chat", "send_message", map[string]any{"message": "x"}, alice, api.ErrTypeNotFound},
		{"codec mismatch", "voice", "General", "chat", "send_message", map[string]any{"message": "x"}, alice, api.ErrTypeInvalidData},
		{"unknown codec", "poll", "General", "chat", "send_message", map[string]any{"message": "x"}, alice, api.ErrTypeInvalidData},
		{"unknown function", "text", "General", "chat", "fly", nil, alice, api.ErrTypeInvalidData},
		{"message a number", "text", "General", "chat", "send_message", map[string]any{"message": 5}, alice, api.ErrTypeInvalidData},
		{"message missing", "text", "General", "chat", "send_message", nil, alice, api.ErrTypeInvalidData},
		{"empty message", "text", "General", "chat", "send_message", map[string]any{"message": ""}, alice, api.ErrTypeInvalidData},
		{"4001 characters", "text", "General", "chat", "send_message", map[string]any{"message": long}, alice, api.ErrTypeInvalidData},
		{"payload an array", "text", "General", "chat", "send_message", []int{1}, alice, api.ErrTypeInvalidData},
		{"amount 0", "text", "General", "chat", "get_messages", map[string]any{"amount": 0}, alice, api.ErrTypeInvalidData},
		{"amount 101", "text", "General", "chat", "get_messages", map[string]any{"amount": 101}, alice, api.ErrTypeInvalidData},
		{"amount -1", "text", "General", "chat", "get_messages", map[string]any{"amount": -1}, alice, api.ErrTypeInvalidData},
		{"amount a string", "text", "General", "chat", "get_messages", map[string]any{"amount": "5"}, alice, api.ErrTypeInvalidData},
		{"amount fractional", "text", "General", "chat", "get_messages", map[string]any{"amount": 2.5}, alice, api.ErrTypeInvalidData},
		{"amount missing", "text", "General", "chat", "get_messages", map[string]any{"loaded_messages": 0}, alice, api.ErrTypeInvalidData},
		{"loaded_messages negative", "text", "General", "chat", "get_messages", map[string]any{"loaded_messages": -1, "amount": 5}, alice, api.ErrTypeInvalidData},
		{"before and loaded_messages", "text", "General", "chat", "get_messages", map[string]any{"loaded_messages": 0, "before": ids[3], "amount": 5}, alice, api.ErrTypeInvalidData},
		{"unknown before", "text", "General", "chat", "get_messages", map[string]any{"before": uuid.NewString(), "amount": 5}, alice, api.ErrTypeNotFound},
		{"before not a uuid", "text", "General", "chat", "get_messages", map[string]any{"before": "x", "amount": 5}, alice, api.ErrTypeNotFound},
		{"edit someone else's", "text", "General", "chat", "edit_message", map[string]any{"message_id": ids[1], "message": "x"}, bob, api.ErrTypePermission},
		{"edit unknown", "text", "General", "chat", "edit_message", map[string]any{"message_id": uuid.NewString(), "message": "x"}, bob, api.ErrTypeNotFound},
		{"edit to empty", "text", "General", "chat", "edit_message", map[string]any{"message_id": ids[1], "message": ""}, alice, api.ErrTypeInvalidData},
		{"owner edits someone else's", "text", "General", "chat", "edit_message", map[string]any{"message_id": ids[1], "message": "x"}, owner, api.ErrTypePermission},
		{"member deletes someone else's", "text", "General", "chat", "delete_message", map[string]any{"message_id": ids[1]}, bob, api.ErrTypePermission},
		{"delete unknown", "text", "General", "chat", "delete_message", map[string]any{"message_id": uuid.NewString()}, alice, api.ErrTypeNotFound},
		{"function on a category", "category", "", "General", "send_message", map[string]any{"message": "x"}, alice, api.ErrTypeInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.who.call(t, tc.codec, tc.path, tc.channel, tc.function, tc.payload)
			if errType(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	// Nothing the refusals touched changed.
	msgs, _ = page(map[string]any{"loaded_messages": 0, "amount": 100})
	if len(msgs) != 25 || msgs[0].Body != "edited" || msgs[1].Body != "m1" || msgs[0].EditedAt == nil {
		t.Fatalf("history after bad input: %d messages, first %+v", len(msgs), msgs[0])
	}
	// Deleting your own works; the seed's form without codec works too.
	m, err := alice.c.Request(ctxT(t), "function", map[string]any{"name": "chat", "path": "General", "function": "delete_message", "payload": map[string]any{"message_id": ids[2]}})
	if err != nil || !strings.Contains(string(m.Data), `"codec":"text"`) {
		t.Fatalf("delete own without codec: %s %v", m.Data, err)
	}
}

func TestInvalidUTF8Message(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	frame := []byte(`{"type":"function","id":"u","data":{"codec":"text","path":"General","name":"chat","function":"send_message","payload":{"message":"a` + "\xff" + `"}}}`)
	owner.c.SendRaw(websocket.TextMessage, frame)
	if code := waitClosed(t, owner.c); code != api.CloseInvalidData {
		t.Fatalf("close code %d", code)
	}
	again, err := env.relogin(owner.testUser)
	if err != nil {
		t.Fatal(err)
	}
	m, err := again.Function(ctxT(t), "text", "General", "chat", "get_messages", map[string]any{"amount": 10})
	if err != nil || strings.Contains(string(m.Data), `"message_id"`) {
		t.Fatalf("a message was stored: %s %v", m.Data, err)
	}
}

func TestFunctionBeforeLogin(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial("/")
	if _, err := c.Function(ctxT(t), "text", "General", "chat", "send_message", map[string]any{"message": "x"}); errType(err) != api.ErrTypeNotAuthenticated {
		t.Fatalf("got %v", err)
	}
}

func TestModeration(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	admin := env.join(community.RoleAdmin)
	mod := env.join(community.RoleModerator)
	mod2 := env.join(community.RoleModerator)
	plain := env.join(community.RoleMember)
	target := env.join(community.RoleMember)

	for _, tc := range []struct {
		name     string
		who      *member
		function string
		payload  map[string]any
		want     string
	}{
		{"moderator kicks a moderator", mod, "kick", map[string]any{"user_id": mod2.ID}, api.ErrTypePermission},
		{"admin kicks the owner", admin, "kick", map[string]any{"user_id": owner.ID}, api.ErrTypePermission},
		{"admin bans the owner", admin, "ban", map[string]any{"user_id": owner.ID}, api.ErrTypePermission},
		{"moderator bans", mod, "ban", map[string]any{"user_id": plain.ID}, api.ErrTypePermission},
		{"admin makes an admin", admin, "set_role", map[string]any{"user_id": plain.ID, "role": "admin"}, api.ErrTypePermission},
		{"owner makes an owner", owner, "set_role", map[string]any{"user_id": plain.ID, "role": "owner"}, api.ErrTypePermission},
		{"unknown role", owner, "set_role", map[string]any{"user_id": plain.ID, "role": "king"}, api.ErrTypeInvalidData},
		{"unknown user", owner, "kick", map[string]any{"user_id": "nobody"}, api.ErrTypeNotFound},
		{"user_id missing", owner, "kick", nil, api.ErrTypeInvalidData},
		{"user_id a number", owner, "ban", map[string]any{"user_id": 7}, api.ErrTypeInvalidData},
		{"kick yourself", admin, "kick", map[string]any{"user_id": admin.ID}, api.ErrTypePermission},
		{"admin promotes to moderator", admin, "set_role", map[string]any{"user_id": plain.ID, "role": "moderator"}, ""},
		{"owner makes an admin", owner, "set_role", map[string]any{"user_id": mod2.ID, "role": "admin"}, ""},
		{"audit amount 0", owner, "audit_log", map[string]any{"amount": 0}, api.ErrTypeInvalidData},
		{"audit amount missing", owner, "audit_log", nil, api.ErrTypeInvalidData},
		{"revoke unknown invite", owner, "revoke_invite", map[string]any{"invite_id": "nope"}, api.ErrTypeNotFound},
		{"invite bad uses", mod, "create_invite", map[string]any{"max_uses": 0}, api.ErrTypeInvalidData},
		{"invite bad expiry", mod, "create_invite", map[string]any{"expires_in": -5}, api.ErrTypeInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.who.root(t, tc.function, tc.payload); errType(err) != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// The promoted member's session knows its new role at once.
	nextResult(t, plain.c, api.ResultRoleChanged)
	if _, err := plain.root(t, "kick", map[string]any{"user_id": target.ID}); err != nil {
		t.Fatalf("new moderator kicks: %v", err)
	}
	waitClosed(t, target.c)

	// Invites: create (as a moderator), list and revoke (as an admin).
	r := ok(t)(mod.root(t, "create_invite", map[string]any{"max_uses": 3, "expires_in": 3600}))
	inv := decode[struct {
		InviteID  string `json:"invite_id"`
		Invite    string `json:"invite"`
		MaxUses   int    `json:"max_uses"`
		ExpiresAt int64  `json:"expires_at"`
	}](t, client.Message{Data: r.Payload})
	if !strings.HasPrefix(inv.Invite, "tensamin://") || !strings.Contains(inv.Invite, "key=") || inv.MaxUses != 3 {
		t.Fatalf("invite %+v", inv)
	}
	list := ok(t)(admin.root(t, "list_invites", nil))
	if !strings.Contains(string(list.Payload), inv.InviteID) || !strings.Contains(string(list.Payload), `"created_by":"`+mod.ID) {
		t.Fatalf("list %s", list.Payload)
	}
	ok(t)(admin.root(t, "revoke_invite", map[string]any{"invite_id": inv.InviteID}))
	c := env.dial("/")
	u := newKey(t)
	if _, err := c.LoginCommunity(ctxT(t), u.ID, u.Priv, inv.Invite, nil); errType(err) != api.ErrTypeInvalidSecret {
		t.Fatalf("revoked invite: %v", err)
	}

	// Ban, a fresh invite does not help, unban restores the role.
	ok(t)(owner.root(t, "ban", map[string]any{"user_id": mod.ID}))
	if code := waitClosed(t, mod.c); code != 4003 {
		t.Fatalf("banned socket closed with %d", code)
	}
	fresh := env.invite(community.InviteOptions{})
	c = env.dial("/")
	if _, err := c.LoginCommunity(ctxT(t), mod.ID, mod.Priv, fresh, nil); errType(err) != api.ErrTypePermission {
		t.Fatalf("banned user with a fresh invite: %v", err)
	}
	members := ok(t)(owner.root(t, "list_members", nil))
	if !strings.Contains(string(members.Payload), `"banned":true`) || !strings.Contains(string(members.Payload), `"online":true`) {
		t.Fatalf("members %s", members.Payload)
	}
	ok(t)(owner.root(t, "unban", map[string]any{"user_id": mod.ID}))
	c = env.dial("/")
	l, err := c.LoginCommunity(ctxT(t), mod.ID, mod.Priv, "", nil)
	if err != nil || l.Role != "moderator" {
		t.Fatalf("unbanned login: %+v %v", l, err)
	}
	audit := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 3}))
	page := decode[struct {
		Entries []struct {
			EntryID int64  `json:"entry_id"`
			Action  string `json:"action"`
		} `json:"entries"`
		HasMore bool `json:"has_more"`
	}](t, client.Message{Data: audit.Payload})
	if len(page.Entries) != 3 || page.Entries[2].Action != "unban" || page.Entries[0].Action != "ban" || !page.HasMore {
		t.Fatalf("audit page %+v", page)
	}
	older := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 1, "before": page.Entries[0].EntryID}))
	if !strings.Contains(string(older.Payload), `"revoke_invite"`) {
		t.Fatalf("older audit %s", older.Payload)
	}
}

func TestCustomCodec(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	reader := env.join(community.RoleMember)
	ok(t)(owner.root(t, "create_channel", map[string]any{"path": "", "name": "Notes", "codec": "notes"}))
	if !strings.Contains(string(env.com.TreeJSON()), `"Notes":{"codec":"notes","data":{}}`) {
		t.Fatalf("tree %s", env.com.TreeJSON())
	}
	ok(t)(owner.call(t, "notes", "", "Notes", "write", map[string]any{"text": "remember the milk"}))
	if got := nextResult(t, reader.c, "note_changed"); !strings.Contains(string(got.Payload), "milk") {
		t.Fatalf("reader got %s", got.Payload)
	}
	r := ok(t)(reader.call(t, "notes", "", "Notes", "read", nil))
	if !strings.Contains(string(r.Payload), "remember the milk") {
		t.Fatalf("read %s", r.Payload)
	}
	if _, err := reader.call(t, "notes", "", "Notes", "burn", nil); errType(err) != api.ErrTypeInvalidData {
		t.Fatalf("unknown function: %v", err)
	}
	if _, err := reader.call(t, "notes", "", "Notes", "write", map[string]any{"text": 5}); errType(err) != api.ErrTypeInvalidData {
		t.Fatalf("bad payload: %v", err)
	}
}

func TestVoicePresence(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice := env.join(community.RoleMember)
	bob := env.join(community.RoleMember)
	ok(t)(owner.root(t, "create_channel", map[string]any{"path": "General", "name": "VC-2", "codec": "voice"}))

	ticket := func(who *member, name string) string {
		r := ok(t)(who.call(t, "voice", "General", name, "join", nil))
		var p struct {
			CallID     string            `json:"call_id"`
			Ticket     string            `json:"ticket"`
			ICEServers []json.RawMessage `json:"ice_servers"`
		}
		json.Unmarshal(r.Payload, &p)
		if r.Result != "call_ticket" || p.Ticket == "" || p.CallID == "" || p.ICEServers == nil {
			t.Fatalf("join: %s", r.Payload)
		}
		return p.Ticket
	}
	if _, err := alice.call(t, "voice", "General", "VC-1", "set_state", map[string]any{"state": "muted"}); errType(err) != api.ErrTypeNoCallID {
		t.Fatalf("set_state before the call socket: %v", err)
	}
	tk := ticket(alice, "VC-1")
	call := env.dial("/ws/calls/")
	m, err := call.Request(ctxT(t), "identification", map[string]any{"path": "General", "name": "VC-1", "ticket": tk})
	if err != nil || !strings.Contains(string(m.Data), `"peers":[{"user_id":"`+alice.ID+`","state":"active"`) {
		t.Fatalf("call login: %s %v", m.Data, err)
	}
	got := nextResult(t, bob.c, "user_changed")
	if !strings.Contains(string(got.Payload), `"state":"active"`) || got.Name != "VC-1" {
		t.Fatalf("bob got %+v", got)
	}
	if !strings.Contains(string(env.com.TreeJSON()), `"active_users":{"`+alice.ID+`":{"state":"active","streaming":false}}`) {
		t.Fatalf("tree %s", env.com.TreeJSON())
	}
	ok(t)(alice.call(t, "voice", "General", "VC-1", "set_state", map[string]any{"state": "muted", "streaming": true}))
	if got := nextResult(t, bob.c, "user_changed"); !strings.Contains(string(got.Payload), `"state":"muted","streaming":true`) {
		t.Fatalf("bob got %s", got.Payload)
	}

	for _, tc := range []struct {
		name    string
		payload map[string]any
	}{
		{"reused ticket", map[string]any{"path": "General", "name": "VC-1", "ticket": tk}},
		{"forged ticket", map[string]any{"path": "General", "name": "VC-1", "ticket": tk[:len(tk)-2] + "AA"}},
		{"other channel", map[string]any{"path": "General", "name": "VC-2", "ticket": ticket(bob, "VC-1")}},
		{"not a voice channel", map[string]any{"path": "General", "name": "chat", "ticket": ticket(bob, "VC-1")}},
		{"garbage", map[string]any{"path": "General", "name": "VC-1", "ticket": "!!"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := env.dial("/ws/calls/")
			if _, err := c.Request(ctxT(t), "identification", tc.payload); errType(err) != api.ErrTypeInvalidCallID {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("expired ticket", func(t *testing.T) {
		tk := ticket(bob, "VC-1")
		env.clock.Advance(61 * time.Second)
		defer env.clock.Advance(-61 * time.Second)
		c := env.dial("/ws/calls/")
		if _, err := c.Request(ctxT(t), "identification", map[string]any{"path": "General", "name": "VC-1", "ticket": tk}); errType(err) != api.ErrTypeInvalidCallID {
			t.Fatalf("got %v", err)
		}
	})
	for _, bad := range []map[string]any{{"state": "inactive"}, {"state": "loud"}, {"state": 1}, {"streaming": true}} {
		if _, err := alice.call(t, "voice", "General", "VC-1", "set_state", bad); errType(err) != api.ErrTypeInvalidData {
			t.Fatalf("set_state %v: %v", bad, err)
		}
	}

	// Closing the call socket: inactive, then user_left.
	call.Close()
	if got := nextResult(t, bob.c, "user_changed"); !strings.Contains(string(got.Payload), `"state":"inactive"`) {
		t.Fatalf("bob got %s", got.Payload)
	}
	nextResult(t, bob.c, "user_left")
	if strings.Contains(string(env.com.TreeJSON()), alice.ID) {
		t.Fatalf("alice still in the tree: %s", env.com.TreeJSON())
	}

	// leave closes the call socket.
	call = env.dial("/ws/calls/")
	if _, err := call.Request(ctxT(t), "identification", map[string]any{"path": "General", "name": "VC-1", "ticket": ticket(alice, "VC-1")}); err != nil {
		t.Fatal(err)
	}
	if r := ok(t)(alice.call(t, "voice", "General", "VC-1", "leave", nil)); r.Result != "left" {
		t.Fatalf("leave: %+v", r)
	}
	waitClosed(t, call)
	if _, err := alice.call(t, "voice", "General", "VC-1", "leave", nil); errType(err) != api.ErrTypeNoCallID {
		t.Fatalf("leave twice: %v", err)
	}
}
