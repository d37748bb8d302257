package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

// setPerms runs set_channel_permissions as who.
func setPerms(t testing.TB, who *member, path, name, overrides string) {
	t.Helper()
	ok(t)(who.root(t, "set_channel_permissions", map[string]any{"path": path, "name": name, "overrides": json.RawMessage(overrides)}))
}

// nextTree waits for the next interactables_changed and returns its tree.
func nextTree(t testing.TB, m *member) string {
	t.Helper()
	r := nextResult(t, m.c, api.ResultInteractablesChanged)
	var p struct {
		Interactables json.RawMessage `json:"interactables"`
	}
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return string(p.Interactables)
}

var barriers int

// barrier sends a message in Rules (a channel everyone sees) and returns
// every update each of to got until it: updates reach a socket in commit
// order, so whatever an earlier write sent them has arrived by then.
func barrier(t testing.TB, from *member, to ...*member) [][]client.FunctionResult {
	t.Helper()
	barriers++
	text := fmt.Sprintf("barrier %d", barriers)
	ok(t)(from.call(t, "text", "", "Rules", "send_message", map[string]any{"message": text}))
	out := make([][]client.FunctionResult, len(to))
	for i, m := range to {
		for {
			msg := next(t, m.c)
			if msg.Type != "update" {
				continue
			}
			r, err := msg.Result()
			if err != nil {
				t.Fatal(err)
			}
			if r.Name == "Rules" && r.Result == community.ResultMessageLive && strings.Contains(string(r.Payload), text) {
				break
			}
			out[i] = append(out[i], r)
		}
	}
	return out
}

// noneAbout fails when an update names one of the channels or holds
// secret.
func noneAbout(t testing.TB, got []client.FunctionResult, secret string, names ...string) {
	t.Helper()
	for _, r := range got {
		for _, n := range names {
			if r.Name == n {
				t.Fatalf("update %s of hidden channel %s reached the member: %s", r.Result, n, r.Payload)
			}
		}
		if secret != "" && strings.Contains(string(r.Payload), secret) {
			t.Fatalf("update %s holds the secret: %s", r.Result, r.Payload)
		}
	}
}

// TestPrivateChannelLeaksNothing: once a channel is private to members, no
// update of anything done in it reaches a member (messages, edits,
// deletions, reactions, pins, typing, voice presence, a custom codec's),
// while those who may view it get every one; a mention of the member is
// dropped. Each path has its own step, so the test fails on any one.
func TestPrivateChannelLeaksNothing(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	ok(t)(owner.root(t, "create_channel", map[string]any{"path": "", "name": "Notes", "codec": "notes"}))
	admin := env.join(community.RoleAdmin)
	mod := env.join(community.RoleModerator)
	alice := env.join(community.RoleMember)

	for _, ch := range []struct{ path, name string }{{"General", "chat"}, {"General", "VC-1"}, {"", "Notes"}} {
		setPerms(t, admin, ch.path, ch.name, `{"member":{"view":false}}`)
	}
	// Each of the three trees, as the last change left it.
	var tree string
	for range 3 {
		tree = nextTree(t, alice)
	}
	if strings.Contains(tree, "chat") || strings.Contains(tree, "VC-1") || strings.Contains(tree, "Notes") || !strings.Contains(tree, "Rules") {
		t.Fatalf("alice's tree %s", tree)
	}
	for range 3 {
		tree = nextTree(t, mod)
	}
	if !strings.Contains(tree, `"chat":{"codec":"text","data":{},"private":true}`) || strings.Contains(tree, "overrides") {
		t.Fatalf("the moderator's tree %s", tree)
	}
	for range 3 {
		tree = nextTree(t, admin)
	}
	if !strings.Contains(tree, `"chat":{"codec":"text","data":{},"private":true,"overrides":{"member":{"view":false}}}`) {
		t.Fatalf("the admin's tree %s", tree)
	}
	if got := strings.Join(treeKeys(t, loginTree(t, env, alice.testUser)), ","); got != "General,Rules" {
		t.Fatalf("alice logs in to %s", got)
	}

	var id string
	vc, err := env.com.Find("General", "VC-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name   string
		do     func()
		result string // what admin, who may view, gets
	}{
		{"message", func() {
			r := ok(t)(mod.call(t, "text", "General", "chat", "send_message",
				map[string]any{"message": "secret plans", "mentions": []string{alice.ID, admin.ID}, "mention_everyone": true}))
			id = decode[struct {
				ID string `json:"message_id"`
			}](t, client.Message{Data: r.Payload}).ID
		}, community.ResultMessageLive},
		{"edit", func() {
			ok(t)(mod.call(t, "text", "General", "chat", "edit_message", map[string]any{"message_id": id, "message": "secret plans, edited"}))
		}, community.ResultMessageEdited},
		{"reaction", func() {
			ok(t)(mod.call(t, "text", "General", "chat", "add_reaction", map[string]any{"message_id": id, "emoji": "👍"}))
		}, community.ResultReactionChanged},
		{"pin", func() {
			ok(t)(mod.call(t, "text", "General", "chat", "pin_message", map[string]any{"message_id": id}))
		}, community.ResultPinsChanged},
		{"typing", func() {
			// typing has no reply
			if err := mod.c.Send("function", "", map[string]any{"codec": "text", "path": "General", "name": "chat",
				"function": "typing", "payload": map[string]any{}}); err != nil {
				t.Fatal(err)
			}
		}, community.ResultTyping},
		{"delete", func() {
			ok(t)(mod.call(t, "text", "General", "chat", "delete_message", map[string]any{"message_id": id}))
		}, community.ResultMessageDeleted},
		{"voice presence", func() { env.com.EnterCall(vc, mod.ID) }, community.ResultUserChanged},
		{"voice leave", func() { env.com.LeaveCall(vc, mod.ID) }, community.ResultUserLeft},
		{"custom codec", func() {
			ok(t)(mod.call(t, "notes", "", "Notes", "write", map[string]any{"text": "secret note"}))
		}, "note_changed"},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.do()
			r := nextResult(t, admin.c, step.result)
			if step.result == community.ResultMessageLive {
				live := decode[community.Message](t, client.Message{Data: r.Payload})
				if len(live.Mentions) != 1 || live.Mentions[0] != admin.ID || !live.MentionEveryone {
					t.Fatalf("mentions of the live message: %+v", live)
				}
			}
			got := barrier(t, owner, alice)
			noneAbout(t, got[0], "secret", "chat", "VC-1", "Notes")
		})
	}

	// Search finds nothing there for alice, everything for the admin.
	ok(t)(mod.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "hidden words", "mentions": []string{alice.ID}}))
	for _, tc := range []struct {
		who  *member
		want int
	}{{alice, 0}, {admin, 1}} {
		r := ok(t)(tc.who.root(t, "search", map[string]any{"query": "hidden words"}))
		if n := strings.Count(string(r.Payload), `"message_id"`); n != tc.want {
			t.Fatalf("search found %d: %s", n, r.Payload)
		}
	}
	// The dropped mention is no count either, once alice may view again.
	setPerms(t, admin, "General", "chat", `{}`)
	if tree := nextTree(t, alice); !strings.Contains(tree, `"chat"`) {
		t.Fatalf("alice does not get chat back: %s", tree)
	}
	if d := textData(t, loginTree(t, env, alice.testUser), "General", "chat"); d["mentions"] != 0 || d["unread"] != 1 {
		t.Fatalf("alice's counts in chat: %v", d)
	}
	r := ok(t)(alice.call(t, "text", "General", "chat", "get_messages", map[string]any{"amount": 10}))
	if strings.Contains(string(r.Payload), alice.ID) {
		t.Fatalf("the mention of alice was kept: %s", r.Payload)
	}
	// And live messages reach her again.
	sendIn(t, mod, "chat", map[string]any{"message": "welcome back"})
	if r := nextResult(t, alice.c, community.ResultMessageLive); r.Name != "chat" {
		t.Fatalf("got %s in %s", r.Result, r.Name)
	}
}

// loginTree logs u in on a fresh socket and returns the tree of the
// identification response.
func loginTree(t testing.TB, env *testEnv, u testUser) json.RawMessage {
	t.Helper()
	c := env.dial("/")
	l, err := c.LoginCommunity(ctxT(t), u.ID, u.Priv, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return l.Interactables
}

// TestHiddenChannelIsNotFound: every call naming a channel the member
// may not view answers word for word as it does once the channel is
// really gone.
func TestHiddenChannelIsNotFound(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	for _, ch := range []struct{ path, name, codec string }{
		{"", "Secret", "category"}, {"Secret", "plans", "text"}, {"Secret", "room", "voice"},
	} {
		ok(t)(owner.root(t, "create_channel", map[string]any{"path": ch.path, "name": ch.name, "codec": ch.codec}))
	}
	alice := env.join(community.RoleMember)
	id := sendIn(t, owner, "chat", map[string]any{"message": "hi"})
	ok(t)(owner.call(t, "text", "Secret", "plans", "send_message", map[string]any{"message": "hi"}))
	setPerms(t, owner, "General", "chat", `{"member":{"view":false}}`)
	setPerms(t, owner, "General", "VC-1", `{"member":{"view":false}}`)
	setPerms(t, owner, "", "Secret", `{"member":{"view":false}}`)

	type call struct{ codec, path, name, function, payload string }
	var calls []call
	for _, ch := range []struct{ path, name string }{{"General", "chat"}, {"Secret", "plans"}} {
		for _, f := range []struct{ function, payload string }{
			{"send_message", `{"message":"x"}`},
			{"get_messages", `{"amount":10}`},
			{"get_messages", `{"before":"` + id + `","amount":10}`},
			{"edit_message", `{"message_id":"` + id + `","message":"x"}`},
			{"delete_message", `{"message_id":"` + id + `"}`},
			{"typing", `{}`},
			{"mark_read", `{"message_id":"` + id + `"}`},
			{"add_reaction", `{"message_id":"` + id + `","emoji":"👍"}`},
			{"remove_reaction", `{"message_id":"` + id + `","emoji":"👍"}`},
			{"pin_message", `{"message_id":"` + id + `"}`},
			{"unpin_message", `{"message_id":"` + id + `"}`},
			{"list_pins", `{}`},
			{"upload", `{"name":"a.png","size":10,"type":"image/png"}`},
			{"no_such_function", `{}`},
		} {
			for _, codec := range []string{"text", "", "voice"} {
				calls = append(calls, call{codec, ch.path, ch.name, f.function, f.payload})
			}
		}
	}
	for _, ch := range []struct{ path, name string }{{"General", "VC-1"}, {"Secret", "room"}} {
		for _, f := range []string{"join", "leave", "set_state"} {
			calls = append(calls, call{"voice", ch.path, ch.name, f, `{"state":"muted"}`}, call{"", ch.path, ch.name, f, `{}`})
		}
	}
	searches := []string{
		`{"query":"hi","path":"General","name":"chat"}`,
		`{"query":"hi","path":"General","name":"VC-1"}`,
		`{"query":"hi","path":"Secret","name":"plans"}`,
		`{"query":"hi","path":"Secret","name":"room"}`,
		`{"query":"hi","before":"` + id + `"}`,
	}
	answers := func() []string {
		var out []string
		for _, c := range calls {
			_, err := alice.call(t, c.codec, c.path, c.name, c.function, json.RawMessage(c.payload))
			out = append(out, fmt.Sprintf("%+v: %s", c, errDetail(err)))
		}
		for _, s := range searches {
			_, err := alice.root(t, "search", json.RawMessage(s))
			out = append(out, "search "+s+": "+errDetail(err))
		}
		return out
	}
	hidden := answers()
	for _, ch := range []struct{ path, name string }{{"General", "chat"}, {"General", "VC-1"}, {"Secret", "plans"}, {"Secret", "room"}, {"", "Secret"}} {
		ok(t)(owner.root(t, "delete_channel", map[string]any{"path": ch.path, "name": ch.name}))
	}
	gone := answers()
	for i := range hidden {
		if hidden[i] != gone[i] {
			t.Errorf("hidden: %s\n   gone: %s", hidden[i], gone[i])
		}
		if !strings.Contains(hidden[i], "error_not_found") {
			t.Errorf("not error_not_found: %s", hidden[i])
		}
	}
}

// errDetail is a failed call's wire error type and detail.
func errDetail(err error) string {
	var er *client.ErrorReply
	if err == nil {
		return "ok"
	}
	if !errors.As(err, &er) {
		return "go error: " + err.Error()
	}
	return er.Type + " " + er.Detail
}

// TestPostAndConnectOverrides: post denied refuses writes with
// error_permission (reading stays), connect denied refuses join, a
// category's overrides are its children's defaults and the nearest wins;
// a member in a call they may no longer connect to is taken out.
func TestPostAndConnectOverrides(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod := env.join(community.RoleModerator)
	alice := env.join(community.RoleMember)
	id := sendIn(t, mod, "chat", map[string]any{"message": "hi"})

	setPerms(t, owner, "", "General", `{"member":{"post":false}}`)
	for _, tc := range []struct {
		function, payload string
	}{
		{"send_message", `{"message":"x"}`},
		{"typing", `{}`},
		{"add_reaction", `{"message_id":"` + id + `","emoji":"👍"}`},
		{"remove_reaction", `{"message_id":"` + id + `","emoji":"👍"}`},
		{"upload", `{"name":"a.png","size":10,"type":"image/png"}`},
	} {
		if _, err := alice.call(t, "text", "General", "chat", tc.function, json.RawMessage(tc.payload)); errType(err) != "error_permission" {
			t.Errorf("%s: %v", tc.function, err)
		}
	}
	ok(t)(alice.call(t, "text", "General", "chat", "get_messages", map[string]any{"amount": 10}))
	ok(t)(alice.call(t, "text", "General", "chat", "mark_read", map[string]any{"message_id": id}))
	ok(t)(alice.call(t, "text", "", "Rules", "send_message", map[string]any{"message": "outside General"}))
	sendIn(t, mod, "chat", map[string]any{"message": "moderators still post"})
	setPerms(t, owner, "General", "chat", `{"member":{"post":true}}`)
	sendIn(t, alice, "chat", map[string]any{"message": "the channel's allow beats the category's deny"})

	ticket := joinVoice(t, alice).Ticket
	vc, _ := env.com.Find("General", "VC-1")
	env.com.EnterCall(vc, alice.ID)
	setPerms(t, owner, "General", "VC-1", `{"member":{"connect":false}}`)
	waitLeft(t, mod.c, alice.ID)
	if env.com.InCall(vc, alice.ID) {
		t.Fatal("alice is still in a call she may not connect to")
	}
	if _, err := redeem(t, env.url+"/ws/calls/", ticket); errType(err) != "error_invalid_call_id" {
		t.Fatalf("a ticket from before the override: %v", err)
	}
	if _, err := alice.call(t, "voice", "General", "VC-1", "join", nil); errType(err) != "error_permission" {
		t.Fatalf("join: %v", err)
	}
	ok(t)(mod.call(t, "voice", "General", "VC-1", "join", nil))
}

// TestSetChannelPermissionsRefusals: who may set overrides, and every bad
// payload's error type; a good one is in the audit log.
func TestSetChannelPermissionsRefusals(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	admin := env.join(community.RoleAdmin)
	mod := env.join(community.RoleModerator)
	alice := env.join(community.RoleMember)
	for _, tc := range []struct {
		who     *member
		payload string
		want    string
	}{
		{alice, `{"path":"General","name":"chat","overrides":{"member":{"view":false}}}`, "error_permission"},
		{alice, `{"name":5}`, "error_permission"},
		{mod, `{"path":"General","name":"chat","overrides":{}}`, "error_permission"},
		{admin, `{"path":"General","overrides":{}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":5,"overrides":{}}`, "error_invalid_data"},
		{admin, `{"path":5,"name":"chat","overrides":{}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat"}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":null}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":[]}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":"private"}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":{"guest":{"view":false}}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":{"owner":{"view":false}}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":{"admin":{"view":false}}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":{"member":{"view":"no"}}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":{"member":{"view":0}}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":{"member":{"read":false}}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":{"member":false}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"chat","overrides":{"member":{"connect":false}}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"VC-1","overrides":{"member":{"post":false}}}`, "error_invalid_data"},
		{admin, `{"path":"General","name":"nosuch","overrides":{}}`, "error_not_found"},
		{admin, `{"path":"Nowhere","name":"chat","overrides":{}}`, "error_not_found"},
		{admin, `[1]`, "error_invalid_data"},
	} {
		if _, err := tc.who.root(t, "set_channel_permissions", json.RawMessage(tc.payload)); errType(err) != tc.want {
			t.Errorf("%s: got %v, want %s", tc.payload, err, tc.want)
		}
	}
	setPerms(t, admin, "General", "chat", `{"member":{"view":false},"moderator":{"post":false}}`)
	setPerms(t, admin, "", "General", `{"moderator":{"connect":true,"post":null}}`)
	r := ok(t)(owner.root(t, "audit_log", map[string]any{"amount": 2}))
	for _, want := range []string{
		`"action":"set_channel_permissions","target":"General/chat moderator:post=deny member:view=deny"`,
		`"action":"set_channel_permissions","target":"General moderator:connect=allow"`,
	} {
		if !strings.Contains(string(r.Payload), want) {
			t.Fatalf("audit log %s lacks %s", r.Payload, want)
		}
	}
}

// TestRoleChangeRedrawsPrivateTree: a member promoted past an override
// gets the tree with the channel, and loses it again when demoted.
func TestRoleChangeRedrawsPrivateTree(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice := env.join(community.RoleMember)
	setPerms(t, owner, "General", "chat", `{"member":{"view":false}}`)
	if tree := nextTree(t, alice); strings.Contains(tree, "chat") {
		t.Fatalf("alice sees %s", tree)
	}
	ok(t)(owner.root(t, "set_role", map[string]any{"user_id": alice.ID, "role": "moderator"}))
	if tree := nextTree(t, alice); !strings.Contains(tree, `"chat"`) {
		t.Fatalf("the moderator does not see chat: %s", tree)
	}
	sendIn(t, owner, "chat", map[string]any{"message": "for moderators"})
	nextResult(t, alice.c, community.ResultMessageLive)
	ok(t)(owner.root(t, "set_role", map[string]any{"user_id": alice.ID, "role": "member"}))
	if tree := nextTree(t, alice); strings.Contains(tree, "chat") {
		t.Fatalf("the member still sees chat: %s", tree)
	}
	sendIn(t, owner, "chat", map[string]any{"message": "secret again"})
	noneAbout(t, barrier(t, owner, alice)[0], "secret", "chat")

	// A call in a channel the new role may not view ends with the change.
	setPerms(t, owner, "General", "VC-1", `{"member":{"view":false}}`)
	ok(t)(owner.root(t, "set_role", map[string]any{"user_id": alice.ID, "role": "moderator"}))
	waitRole(t, alice, community.RoleModerator)
	vc, _ := env.com.Find("General", "VC-1")
	env.com.EnterCall(vc, alice.ID)
	ok(t)(owner.root(t, "set_role", map[string]any{"user_id": alice.ID, "role": "member"}))
	waitLeft(t, owner.c, alice.ID)
	if env.com.InCall(vc, alice.ID) {
		t.Fatal("the demoted member is still in the hidden call")
	}
}

// TestClusterPrivateChannel: an override set on one node hides the
// channel from a member on another, tree and messages both.
func TestClusterPrivateChannel(t *testing.T) {
	cl := newCluster(t, 2)
	owner := cl.nodes[0].join(community.RoleOwner)
	setupChannels(t, owner)
	alice := cl.nodes[1].join(community.RoleMember)
	mod := cl.nodes[1].join(community.RoleModerator)
	setPerms(t, owner, "General", "chat", `{"member":{"view":false}}`)
	if tree := nextTree(t, alice); strings.Contains(tree, "chat") {
		t.Fatalf("alice on node 1 sees %s", tree)
	}
	if tree := nextTree(t, mod); !strings.Contains(tree, `"chat"`) {
		t.Fatalf("the moderator on node 1 does not see chat: %s", tree)
	}
	sendIn(t, owner, "chat", map[string]any{"message": "secret across nodes"})
	nextResult(t, mod.c, community.ResultMessageLive)
	noneAbout(t, barrier(t, owner, alice)[0], "secret", "chat")
	if _, err := alice.call(t, "text", "General", "chat", "get_messages", map[string]any{"amount": 1}); errType(err) != "error_not_found" {
		t.Fatalf("get_messages on node 1: %v", err)
	}
}

// waitLeft reads c's updates until the user_left of userID.
func waitLeft(t *testing.T, c *client.Client, userID string) {
	t.Helper()
	for {
		if r := nextResult(t, c, community.ResultUserLeft); strings.Contains(string(r.Payload), userID) {
			return
		}
	}
}
