package api_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

func TestIotaListRoundTrip(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	c := env.iota(u)
	ctx := ctxT(t)

	id1, v1, err := c.AddCommunity(ctx, u.Priv, client.Community{Address: "tensamin://a.example:1984/?invite=x", Title: "A", Position: "0"})
	if err != nil {
		t.Fatal(err)
	}
	id2, v2, err := c.AddCommunity(ctx, u.Priv, client.Community{Address: "tensamin://b.example:1984/", Title: "B", Position: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if v1 != 1 || v2 != 2 {
		t.Fatalf("versions %d, %d; want 1, 2", v1, v2)
	}
	// Replacing keeps the entry's id and place.
	if id, _, err := c.AddCommunity(ctx, u.Priv, client.Community{EntryID: id1, Address: "tensamin://a.example:1984/", Title: "A2", Position: "0"}); err != nil || id != id1 {
		t.Fatalf("replace: id %q err %v", id, err)
	}
	list, version, err := c.Communities(ctx, u.Priv)
	if err != nil {
		t.Fatal(err)
	}
	if version != 3 || len(list) != 2 || list[0].EntryID != id1 || list[0].Title != "A2" || list[1].EntryID != id2 || list[1].Address != "tensamin://b.example:1984/" {
		t.Fatalf("list = %+v version %d", list, version)
	}
	// The seed's spelling of the request works too.
	m, err := c.Request(ctx, "get_community", nil)
	if err != nil || m.Type != "get_communities" {
		t.Fatalf("get_community: %v %v", m.Type, err)
	}
	if v, err := c.RemoveCommunity(ctx, id1); err != nil || v != 4 {
		t.Fatalf("remove: %d %v", v, err)
	}
	// Remove by the sealed address as stored.
	all, err := c.Request(ctx, "get_communities", nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := decode[struct {
		Communities []struct {
			Address string `json:"community_address"`
		} `json:"communities"`
	}](t, all)
	if _, err := c.Request(ctx, "remove_community", map[string]string{"community_address": stored.Communities[0].Address}); err != nil {
		t.Fatal(err)
	}
	if list, _, _ := c.Communities(ctx, u.Priv); len(list) != 0 {
		t.Fatalf("list after removals: %+v", list)
	}
}

func TestIotaLiveSync(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	phone, laptop := env.iota(u), env.iota(u)
	other := env.iota(env.newUser())
	ctx := ctxT(t)

	_, version, err := phone.AddCommunity(ctx, u.Priv, client.Community{Address: "x", Title: "y", Position: "z"})
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, laptop)
	got := decode[struct {
		Result  string `json:"result"`
		Version int64  `json:"version"`
	}](t, m)
	if m.Type != "update" || got.Result != "communities_changed" || got.Version != version || m.ID == "" {
		t.Fatalf("laptop got %s %s", m.Type, m.Data)
	}
	if _, err := phone.Request(ctx, "settings_save", map[string]any{"settings_name": "theme", "payload": "sealed"}); err != nil {
		t.Fatal(err)
	}
	if m := next(t, laptop); !strings.Contains(string(m.Data), "settings_changed") {
		t.Fatalf("laptop got %s", m.Data)
	}
	// The device that made the change and other users hear nothing.
	select {
	case m := <-phone.Pushes():
		t.Fatalf("phone got its own change: %s", m.Data)
	case m := <-other.Pushes():
		t.Fatalf("another user got the change: %s", m.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestIotaSettings(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	c := env.iota(u)
	ctx := ctxT(t)
	if _, err := c.Request(ctx, "settings_save", map[string]any{"settings_name": "a", "payload": "sealed-a"}); err != nil {
		t.Fatal(err)
	}
	// Tensamin's web client sends an object; it comes back as its JSON text.
	if _, err := c.Request(ctx, "settings_save", map[string]any{"settings_name": "b", "payload": map[string]any{"x": 1}}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Request(ctx, "settings_load", map[string]any{"settings_name": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := decode[struct{ Payload string }](t, m); got.Payload != `{"x":1}` {
		t.Fatalf("payload %q", got.Payload)
	}
	m, err = c.Request(ctx, "settings_list", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := decode[struct{ Settings []string }](t, m); strings.Join(got.Settings, ",") != "a,b" {
		t.Fatalf("list %v", got.Settings)
	}
	if _, err := c.Request(ctx, "settings_load", map[string]any{"settings_name": "nope"}); errType(err) != api.ErrTypeNotFound {
		t.Fatalf("load unknown: %v", err)
	}
}

func TestIotaPing(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial("/ws/iota")
	m, err := c.Request(ctxT(t), "ping", map[string]any{"last_ping": 12345})
	if err != nil || m.Type != "pong" || string(m.Data) != `{"last_ping":12345}` {
		t.Fatalf("pong before login: %s %s %v", m.Type, m.Data, err)
	}
}

func TestRegister(t *testing.T) {
	env := newEnv(t, nil)
	ctx := ctxT(t)
	secret, _, err := env.store.CreateToken(ctx, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := icrypto.GenerateKey(rand.Reader)
	c := env.dial("/ws/iota")
	m, err := c.Request(ctx, "register", map[string]any{"public_key": pub.String(), "token": secret})
	if err != nil || m.Type != "register_response" {
		t.Fatalf("register: %s %v", m.Type, err)
	}
	id := decode[struct {
		UserID string `json:"user_id"`
	}](t, m).UserID
	if _, err := c.Login(ctx, priv, map[string]any{"user_id": id}); err != nil {
		t.Fatalf("login as the registered user: %v", err)
	}
	// The token had one use.
	pub2, _, _ := icrypto.GenerateKey(rand.Reader)
	if _, err := c.Request(ctx, "register", map[string]any{"public_key": pub2.String(), "token": secret}); errType(err) != api.ErrTypeInvalidSecret {
		t.Fatalf("spent token: %v", err)
	}
}

func TestRegisterBadInput(t *testing.T) {
	env := newEnv(t, nil)
	ctx := context.Background()
	good, _, _ := env.store.CreateToken(ctx, 5, time.Hour)
	expired, _, _ := env.store.CreateToken(ctx, 5, time.Nanosecond)
	revoked, tok, _ := env.store.CreateToken(ctx, 5, time.Hour)
	env.store.RevokeToken(ctx, tok.ID)
	pub, _, _ := icrypto.GenerateKey(rand.Reader)
	lowOrder := make([]byte, 56)
	lowOrder[0] = 1
	for _, tc := range []struct {
		name string
		data map[string]any
		want string
	}{
		{"unknown token", map[string]any{"public_key": pub.String(), "token": "nope"}, api.ErrTypeInvalidSecret},
		{"expired token", map[string]any{"public_key": pub.String(), "token": expired}, api.ErrTypeInvalidSecret},
		{"revoked token", map[string]any{"public_key": pub.String(), "token": revoked}, api.ErrTypeInvalidSecret},
		{"malformed key", map[string]any{"public_key": "not base64!", "token": good}, api.ErrTypeInvalidPublicKey},
		{"short key", map[string]any{"public_key": "AAAA", "token": good}, api.ErrTypeInvalidPublicKey},
		{"zero key", map[string]any{"public_key": icrypto.PublicKey{}.String(), "token": good}, api.ErrTypeInvalidPublicKey},
		{"u=1 key", map[string]any{"public_key": icrypto.PublicKey(lowOrder).String(), "token": good}, api.ErrTypeInvalidPublicKey},
		{"key not a string", map[string]any{"public_key": 5, "token": good}, api.ErrTypeInvalidData},
		{"token missing", map[string]any{"public_key": pub.String()}, api.ErrTypeInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := env.dial("/ws/iota")
			if _, err := c.Request(ctxT(t), "register", tc.data); errType(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	// The good token was never spent by the refusals.
	toks, _ := env.store.Tokens(ctx)
	for _, tk := range toks {
		if tk.Uses != 0 {
			t.Fatalf("token %s has %d uses after refused registrations", tk.ID, tk.Uses)
		}
	}
}

// TestIotaBadFrames sends malformed frames to a logged-in socket: each gets
// exactly one error of the right type, and the list does not change.
func TestIotaBadFrames(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	c := env.iota(u)
	ctx := ctxT(t)
	entryID, _, err := c.AddCommunity(ctx, u.Priv, client.Community{Address: "addr", Title: "t", Position: "p"})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 4097)
	for _, tc := range []struct {
		name   string
		frame  string
		want   string
		wantID string // "" = the error has no id
	}{
		{"not JSON", `{"type": "ping"`, api.ErrTypeProtocol, ""},
		{"array", `[1,2]`, api.ErrTypeProtocol, ""},
		{"string", `"ping"`, api.ErrTypeProtocol, ""},
		{"unknown type", `{"type":"fly","id":"u1","data":{}}`, api.ErrTypeProtocol, "u1"},
		{"missing type", `{"id":"m1","data":{}}`, api.ErrTypeProtocol, "m1"},
		{"type not a string", `{"type":5,"id":"m2"}`, api.ErrTypeProtocol, "m2"},
		{"id not a string", `{"type":"ping","id":5,"data":{}}`, api.ErrTypeProtocol, ""},
		{"id too long", `{"type":"ping","id":"` + strings.Repeat("i", 129) + `","data":{}}`, api.ErrTypeProtocol, ""},
		{"too deep", `{"type":"ping","id":"d1","data":{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}`, api.ErrTypeProtocol, ""},
		{"data not an object", `{"type":"get_communities","id":"d2","data":[]}`, api.ErrTypeInvalidData, "d2"},
		{"address a number", `{"type":"add_community","id":"f1","data":{"community_address":1,"community_title":"t","position":"p"}}`, api.ErrTypeInvalidData, "f1"},
		{"title missing", `{"type":"add_community","id":"f2","data":{"community_address":"a","position":"p"}}`, api.ErrTypeInvalidData, "f2"},
		{"position null", `{"type":"add_community","id":"f3","data":{"community_address":"a","community_title":"t","position":null}}`, api.ErrTypeInvalidData, "f3"},
		{"empty address", `{"type":"add_community","id":"f4","data":{"community_address":"","community_title":"t","position":"p"}}`, api.ErrTypeInvalidData, "f4"},
		{"oversize title", `{"type":"add_community","id":"f5","data":{"community_address":"a","community_title":"` + big + `","position":"p"}}`, api.ErrTypeInvalidData, "f5"},
		{"entry_id a number", `{"type":"add_community","id":"f6","data":{"entry_id":3,"community_address":"a","community_title":"t","position":"p"}}`, api.ErrTypeInvalidData, "f6"},
		{"unknown entry to replace", `{"type":"add_community","id":"f7","data":{"entry_id":"nope","community_address":"a","community_title":"t","position":"p"}}`, api.ErrTypeNotFound, "f7"},
		{"version a string", `{"type":"add_community","id":"v1","data":{"community_address":"a","community_title":"t","position":"p","expected_version":"1"}}`, api.ErrTypeInvalidData, "v1"},
		{"version negative", `{"type":"add_community","id":"v2","data":{"community_address":"a","community_title":"t","position":"p","expected_version":-1}}`, api.ErrTypeInvalidData, "v2"},
		{"version fractional", `{"type":"add_community","id":"v3","data":{"community_address":"a","community_title":"t","position":"p","expected_version":1.5}}`, api.ErrTypeInvalidData, "v3"},
		{"stale version", `{"type":"add_community","id":"v4","data":{"community_address":"a","community_title":"t","position":"p","expected_version":0}}`, api.ErrTypeConflict, "v4"},
		{"remove unknown", `{"type":"remove_community","id":"r1","data":{"entry_id":"nope"}}`, api.ErrTypeNotFound, "r1"},
		{"remove nothing named", `{"type":"remove_community","id":"r2","data":{}}`, api.ErrTypeInvalidData, "r2"},
		{"remove id a number", `{"type":"remove_community","id":"r3","data":{"entry_id":1}}`, api.ErrTypeInvalidData, "r3"},
		{"remove stale", `{"type":"remove_community","id":"r4","data":{"entry_id":"` + entryID + `","expected_version":7}}`, api.ErrTypeConflict, "r4"},
		{"settings payload a number", `{"type":"settings_save","id":"s1","data":{"settings_name":"a","payload":5}}`, api.ErrTypeInvalidData, "s1"},
		{"settings name a number", `{"type":"settings_save","id":"s2","data":{"settings_name":5,"payload":"x"}}`, api.ErrTypeInvalidData, "s2"},
		{"settings too big", `{"type":"settings_save","id":"s3","data":{"settings_name":"a","payload":"` + strings.Repeat("x", 49<<10) + `"}}`, api.ErrTypeInvalidData, "s3"},
		{"settings load name missing", `{"type":"settings_load","id":"s4","data":{}}`, api.ErrTypeInvalidData, "s4"},
		{"second identification", `{"type":"identification","id":"i1","data":{"user_id":"` + u.ID + `"}}`, api.ErrTypeProtocol, "i1"},
		{"challenge_response after login", `{"type":"challenge_response","id":"c1","data":{"challenge":"x"}}`, api.ErrTypeInvalidChallenge, "c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.SendRaw(websocket.TextMessage, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			m := next(t, c)
			if m.Type != tc.want || m.ID != tc.wantID {
				t.Fatalf("got %s id %q (%s); want %s id %q", m.Type, m.ID, m.Data, tc.want, tc.wantID)
			}
			d := decode[struct {
				Error  string
				Detail string
			}](t, m)
			if "error_"+d.Error != tc.want || d.Detail == "" {
				t.Fatalf("data %s", m.Data)
			}
		})
	}
	if m, _ := c.Request(ctx, "get_communities", nil); !strings.Contains(string(m.Data), `"version":1`) {
		t.Fatalf("bad input changed the list: %s", m.Data)
	}
	list, _, err := c.Communities(ctx, u.Priv)
	if err != nil || len(list) != 1 || list[0].Address != "addr" {
		t.Fatalf("list after bad input: %+v %v", list, err)
	}
}

func TestConflictCarriesVersion(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	c := env.iota(u)
	ctx := ctxT(t)
	c.AddCommunity(ctx, u.Priv, client.Community{Address: "a", Title: "b", Position: "c"})
	_, err := c.Request(ctx, "add_community", map[string]any{"community_address": "a", "community_title": "t", "position": "p", "expected_version": 0})
	if errType(err) != api.ErrTypeConflict {
		t.Fatalf("got %v", err)
	}
	er := err.(*client.ErrorReply)
	if got := decode[struct{ Version int64 }](t, er.Msg); got.Version != 1 {
		t.Fatalf("conflict data %s", er.Msg.Data)
	}
	if _, err := c.Request(ctx, "add_community", map[string]any{"community_address": "a", "community_title": "t", "position": "p", "expected_version": 1}); err != nil {
		t.Fatalf("matching version refused: %v", err)
	}
}

func TestLoginStates(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	ctx := ctxT(t)

	t.Run("requests before login", func(t *testing.T) {
		c := env.dial("/ws/iota")
		for _, typ := range []string{"add_community", "get_communities", "remove_community", "settings_save", "settings_load", "settings_list", "delete_user"} {
			if _, err := c.Request(ctx, typ, nil); errType(err) != api.ErrTypeNotAuthenticated {
				t.Fatalf("%s before login: %v", typ, err)
			}
		}
	})
	t.Run("challenge_response with nothing pending", func(t *testing.T) {
		c := env.dial("/ws/iota")
		if _, err := c.Request(ctx, "challenge_response", map[string]string{"challenge": "x"}); errType(err) != api.ErrTypeInvalidChallenge {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		c := env.dial("/ws/iota")
		if _, err := c.Request(ctx, "identification", map[string]any{"user_id": "00000000-0000-4000-8000-000000000000"}); errType(err) != api.ErrTypeInvalidUserID {
			t.Fatalf("got %v", err)
		}
		if _, err := c.Request(ctx, "identification", map[string]any{"user_id": 12345}); errType(err) != api.ErrTypeInvalidUserID {
			t.Fatalf("number id: %v", err)
		}
		if _, err := c.Request(ctx, "identification", map[string]any{"user_id": true}); errType(err) != api.ErrTypeInvalidData {
			t.Fatalf("bool id: %v", err)
		}
		if _, err := c.Request(ctx, "identification", map[string]any{}); errType(err) != api.ErrTypeInvalidData {
			t.Fatalf("missing id: %v", err)
		}
	})
	t.Run("answer twice", func(t *testing.T) {
		c := env.dial("/ws/iota")
		ch, err := c.Request(ctx, "identification", map[string]any{"user_id": u.ID})
		if err != nil {
			t.Fatal(err)
		}
		answer, _, _ := client.Solve(u.Priv, ch, client.Expect{Role: icrypto.RoleIota, UserID: u.ID})
		if _, err := c.Request(ctx, "challenge_response", map[string]string{"challenge": answer}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Request(ctx, "challenge_response", map[string]string{"challenge": answer}); errType(err) != api.ErrTypeInvalidChallenge {
			t.Fatalf("second answer: %v", err)
		}
		// Still logged in as before.
		if _, err := c.Request(ctx, "get_communities", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second identification replaces the challenge", func(t *testing.T) {
		c := env.dial("/ws/iota")
		first, _ := c.Request(ctx, "identification", map[string]any{"user_id": u.ID})
		second, _ := c.Request(ctx, "identification", map[string]any{"user_id": u.ID})
		old, _, _ := client.Solve(u.Priv, first, client.Expect{Role: icrypto.RoleIota, UserID: u.ID})
		if _, err := c.Request(ctx, "challenge_response", map[string]string{"challenge": old}); errType(err) != api.ErrTypeInvalidChallenge {
			t.Fatalf("old challenge: %v", err)
		}
		if code := waitClosed(t, c); code != api.ClosePolicy {
			t.Fatalf("close code %d", code)
		}
		_ = second
	})
	t.Run("expired", func(t *testing.T) {
		c := env.dial("/ws/iota")
		ch, _ := c.Request(ctx, "identification", map[string]any{"user_id": u.ID})
		answer, _, _ := client.Solve(u.Priv, ch, client.Expect{Role: icrypto.RoleIota, UserID: u.ID})
		env.clock.Advance(31 * time.Second)
		defer env.clock.Advance(-31 * time.Second)
		if _, err := c.Request(ctx, "challenge_response", map[string]string{"challenge": answer}); errType(err) != api.ErrTypeInvalidChallenge {
			t.Fatalf("expired: %v", err)
		}
	})
	t.Run("wrong answer closes", func(t *testing.T) {
		c := env.dial("/ws/iota")
		c.Request(ctx, "identification", map[string]any{"user_id": u.ID})
		if _, err := c.Request(ctx, "challenge_response", map[string]string{"challenge": "wrong"}); errType(err) != api.ErrTypeInvalidChallenge {
			t.Fatalf("wrong: %v", err)
		}
		if code := waitClosed(t, c); code != api.ClosePolicy {
			t.Fatalf("close code %d", code)
		}
	})
	t.Run("answer of wrong type keeps the challenge", func(t *testing.T) {
		c := env.dial("/ws/iota")
		ch, _ := c.Request(ctx, "identification", map[string]any{"user_id": u.ID})
		if _, err := c.Request(ctx, "challenge_response", map[string]any{"challenge": 5}); errType(err) != api.ErrTypeInvalidData {
			t.Fatalf("number answer: %v", err)
		}
		answer, _, _ := client.Solve(u.Priv, ch, client.Expect{Role: icrypto.RoleIota, UserID: u.ID})
		if _, err := c.Request(ctx, "challenge_response", map[string]string{"challenge": answer}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("identification_response", func(t *testing.T) {
		c := env.dial("/ws/iota")
		m, err := c.Login(ctx, u.Priv, map[string]any{"user_id": u.ID})
		if err != nil {
			t.Fatal(err)
		}
		got := decode[struct {
			Accepted bool   `json:"accepted"`
			UserID   string `json:"user_id"`
		}](t, m)
		if m.Type != "identification_response" || !got.Accepted || got.UserID != u.ID {
			t.Fatalf("%s %s", m.Type, m.Data)
		}
	})
}

func TestLoginTimeout(t *testing.T) {
	env := newEnv(t, func(c *api.Config) { c.Socket.LoginTimeout = 200 * time.Millisecond })
	c := env.dial("/ws/iota")
	if code := waitClosed(t, c); code != api.ClosePolicy {
		t.Fatalf("close code %d", code)
	}
	// A logged-in socket outlives the timer.
	u := env.newUser()
	lc := env.iota(u)
	select {
	case <-lc.Done():
		t.Fatalf("logged-in socket closed: %v", lc.Err())
	case <-time.After(400 * time.Millisecond):
	}
}

func TestFrameRules(t *testing.T) {
	env := newEnv(t, nil)
	t.Run("over the read limit", func(t *testing.T) {
		c := env.dial("/ws/iota")
		c.SendRaw(websocket.TextMessage, []byte(`{"type":"ping","data":{"x":"`+strings.Repeat("x", 65<<10)+`"}}`))
		if code := waitClosed(t, c); code != api.CloseTooBig {
			t.Fatalf("close code %d", code)
		}
	})
	t.Run("binary frame", func(t *testing.T) {
		c := env.dial("/ws/iota")
		c.SendRaw(websocket.BinaryMessage, []byte(`{"type":"ping"}`))
		if code := waitClosed(t, c); code != api.CloseUnsupported {
			t.Fatalf("close code %d", code)
		}
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		c := env.dial("/ws/iota")
		c.SendRaw(websocket.TextMessage, []byte("{\"type\":\"ping\",\"id\":\"\xff\"}"))
		if code := waitClosed(t, c); code != api.CloseInvalidData {
			t.Fatalf("close code %d", code)
		}
	})
	t.Run("no id no reply", func(t *testing.T) {
		c := env.dial("/ws/iota")
		c.Send("ping", "", map[string]any{"last_ping": 1})
		m, err := c.Request(ctxT(t), "ping", map[string]any{"last_ping": 2})
		if err != nil || string(m.Data) != `{"last_ping":2}` {
			t.Fatalf("%s %v", m.Data, err)
		}
		select {
		case m := <-c.Pushes():
			t.Fatalf("reply to a request without id: %s", m.Data)
		default:
		}
	})
}

func TestBurstIsRateLimited(t *testing.T) {
	env := newEnv(t, func(c *api.Config) {
		def := api.DefaultSocketConfig()
		c.Socket.RequestRate, c.Socket.RequestBurst = def.RequestRate, def.RequestBurst
	})
	u := env.newUser()
	flood := env.iota(u)
	bystander := env.iota(env.newUser())
	frame := []byte(`{"type":"ping","id":"p","data":{}}`)
	start := time.Now()
	for i := 0; i < 1000; i++ {
		if err := flood.SendRaw(websocket.TextMessage, frame); err != nil {
			break // the server closed us mid-burst
		}
	}
	pongs, limited := 0, 0
	for m := range flood.Pushes() {
		switch m.Type {
		case "pong":
			pongs++
		case api.ErrTypeRateLimited:
			limited++
		default:
			t.Fatalf("unexpected %s", m.Type)
		}
	}
	if code := flood.CloseCode(); code != api.ClosePolicy {
		t.Fatalf("flooding socket closed with %d, want 1008", code)
	}
	// The bucket holds 40 (two went to the login) and refills at 20 a
	// second for as long as the burst takes to process.
	most := 40 + int(20*time.Since(start).Seconds()) + 1
	if pongs < 35 || pongs > most || limited != 100 {
		t.Fatalf("pongs %d, rate-limited %d", pongs, limited)
	}
	if _, err := bystander.Request(ctxT(t), "get_communities", nil); err != nil {
		t.Fatalf("bystander: %v", err)
	}
}

func TestDeleteUser(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	c, other := env.iota(u), env.iota(u)
	ctx := ctxT(t)
	c.AddCommunity(ctx, u.Priv, client.Community{Address: "a", Title: "b", Position: "c"})
	next(t, other) // communities_changed
	if _, err := c.Request(ctx, "delete_user", nil); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	waitClosed(t, other)
	if _, err := env.store.User(ctx, u.ID); err == nil {
		t.Fatal("user still stored")
	}
	var n int
	env.db.Read.QueryRow(`SELECT count(*) FROM entries`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d entries left", n)
	}
	again := env.dial("/ws/iota")
	if _, err := again.Request(ctx, "identification", map[string]any{"user_id": u.ID}); errType(err) != api.ErrTypeInvalidUserID {
		t.Fatalf("deleted user logs in: %v", err)
	}
}

func TestConnectionCap(t *testing.T) {
	env := newEnv(t, func(c *api.Config) { c.MaxConnections = 2 })
	env.dial("/ws/iota")
	env.dial("/ws/iota")
	_, resp, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("third socket: %v %v", resp, err)
	}
}

func TestOriginCheck(t *testing.T) {
	env := newEnv(t, nil)
	h := map[string][]string{"Origin": {"https://evil.example"}}
	if _, resp, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", h); err == nil || resp.StatusCode != 403 {
		t.Fatalf("foreign origin: %v", err)
	}
	h = map[string][]string{"Origin": {env.http}}
	c, _, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", h)
	if err != nil {
		t.Fatalf("own origin: %v", err)
	}
	c.Close()
}

// TestShutdownClosesSockets: a shutdown tells every socket 1001.
func TestShutdownClosesSockets(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	a, b := env.iota(u), env.dial("/ws/iota")
	env.shutdown()
	for _, c := range []*client.Client{a, b} {
		if code := waitClosed(t, c); code != api.CloseGoingAway {
			t.Fatalf("close code %d, want 1001", code)
		}
	}
}

// TestSilentPeerIsDropped: a client that answers no ping is dropped after
// two ping intervals; one that does stays.
func TestSilentPeerIsDropped(t *testing.T) {
	// Generous margins: under -race on a loaded 2-core machine a pong can
	// take a while even from a client that reads all the time.
	env := newEnv(t, func(c *api.Config) { c.Socket.PingInterval = 500 * time.Millisecond })
	u := env.newUser()
	alive := env.iota(u) // the client answers pings while it reads
	silent, _, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Not reading means not answering pings; after 2 intervals and a
	// grace second the server cuts the connection.
	time.Sleep(3 * time.Second)
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := silent.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("the silent socket is still open")
			}
			break
		}
	}
	if _, err := alive.Request(ctxT(t), "get_communities", nil); err != nil {
		t.Fatalf("the answering socket was dropped: %v", err)
	}
}
