package api_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	icrypto "github.com/iotad/iotad/crypto"
)

// relay is a malicious server. Whoever logs in to it has their
// identification replayed to a real iotad socket (upstream) as the same
// user; the real server's challenge is passed back, altered by tamper, and
// an answer, if the victim gives one, goes upstream. It is how community C
// would log in to community A, or to the user's Iota, as its visitor.
type relay struct {
	url      string // ws://… of the relay
	key      icrypto.PublicKey
	answered atomic.Bool // the victim sent a challenge_response
	accepted atomic.Bool // upstream logged the attacker in
}

type frame struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Data json.RawMessage `json:"data"`
}

func startRelay(t *testing.T, upstream string, tamper func(ch map[string]any, relayKey icrypto.PublicKey)) *relay {
	t.Helper()
	pub, _, err := icrypto.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{key: pub}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		victim, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer victim.Close()
		victim.SetReadDeadline(time.Now().Add(5 * time.Second))
		var ident frame
		if victim.ReadJSON(&ident) != nil || ident.Type != "identification" {
			return
		}
		var who struct {
			UserID json.RawMessage `json:"user_id"`
		}
		json.Unmarshal(ident.Data, &who)
		real, _, err := websocket.DefaultDialer.Dial(upstream, nil)
		if err != nil {
			return
		}
		defer real.Close()
		real.SetReadDeadline(time.Now().Add(5 * time.Second))
		// A returning member's identification: the victim's id alone.
		if real.WriteJSON(frame{Type: "identification", ID: "up-1", Data: json.RawMessage(`{"user_id":` + string(who.UserID) + `}`)}) != nil {
			return
		}
		var ch frame
		if real.ReadJSON(&ch) != nil || ch.Type != "challenge" {
			return
		}
		data := map[string]any{}
		json.Unmarshal(ch.Data, &data)
		tamper(data, pub)
		out, _ := json.Marshal(data)
		if victim.WriteJSON(frame{Type: "challenge", ID: ident.ID, Data: out}) != nil {
			return
		}
		var answer frame
		if victim.ReadJSON(&answer) != nil || answer.Type != "challenge_response" {
			return
		}
		r.answered.Store(true)
		answer.ID = "up-2"
		real.WriteJSON(answer)
		var res frame
		if real.ReadJSON(&res) == nil && res.Type == "identification_response" {
			r.accepted.Store(true)
		}
	}))
	t.Cleanup(srv.Close)
	r.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return r
}

// Ways a relay may pass a real challenge on.
var relayTampers = map[string]func(ch map[string]any, relayKey icrypto.PublicKey){
	"as sent":                        func(map[string]any, icrypto.PublicKey) {},
	"naming the relay's key":         func(ch map[string]any, k icrypto.PublicKey) { ch["server_key"] = k.String() },
	"without server_key":             func(ch map[string]any, _ icrypto.PublicKey) { delete(ch, "server_key") },
	"downgraded to version 1":        func(ch map[string]any, _ icrypto.PublicKey) { ch["login_version"] = 1 },
	"downgraded, no version at all":  func(ch map[string]any, _ icrypto.PublicKey) { delete(ch, "login_version"); delete(ch, "server_key") },
	"relay's key and version string": func(ch map[string]any, k icrypto.PublicKey) { ch["server_key"] = k.String(); ch["login_version"] = "2" },
}

// TestRelayedChallengeIsRefused: a member of community A visits community
// C, which relays A's challenge, or the member's Iota's, to log in there as
// them. The client refuses before answering, whichever way the challenge
// is dressed, and neither A nor the Iota ever lets the attacker in.
func TestRelayedChallengeIsRefused(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	// u is an Iota user and a member of A, with the same key, and has
	// pinned the Iota's key on a first, honest login.
	pinA := env.com.Public
	if _, err := env.dial("/").LoginCommunity(ctxT(t), u.ID, u.Priv, env.invite(community.InviteOptions{}), &pinA); err != nil {
		t.Fatal(err)
	}
	honest := env.iota(u)
	iotaKey := honest.ServerKey()

	for _, target := range []struct{ name, path string }{{"community A", "/"}, {"the Iota", "/ws/iota"}} {
		for how, tamper := range relayTampers {
			t.Run(target.name+"/"+how, func(t *testing.T) {
				r := startRelay(t, env.url+target.path, tamper)
				ctx := ctxT(t)
				// The victim joins C from C's invite, which pins C's key.
				c, err := client.Dial(ctx, r.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				pinC := r.key
				_, err = c.LoginCommunity(ctx, u.ID, u.Priv, "", &pinC)
				if !errors.Is(err, client.ErrServerIdentity) {
					t.Fatalf("login through the relay: %v, want ErrServerIdentity", err)
				}
				if r.answered.Load() || r.accepted.Load() {
					t.Fatalf("the victim answered (%v); upstream accepted the attacker (%v)", r.answered.Load(), r.accepted.Load())
				}
			})
		}
	}

	// A fake Iota relays community A's challenge to the user's Iota client,
	// which pinned its real Iota's key.
	for how, tamper := range relayTampers {
		t.Run("fake Iota relays A/"+how, func(t *testing.T) {
			r := startRelay(t, env.url+"/", tamper)
			ctx := ctxT(t)
			c, err := client.Dial(ctx, r.url, &client.Options{ServerKey: &iotaKey})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Login(ctx, u.Priv, map[string]any{"user_id": u.ID}); !errors.Is(err, client.ErrServerIdentity) {
				t.Fatalf("Iota login through the relay: %v, want ErrServerIdentity", err)
			}
			if r.answered.Load() || r.accepted.Load() {
				t.Fatalf("the victim answered (%v); A accepted the attacker (%v)", r.answered.Load(), r.accepted.Load())
			}
		})
	}
}

// TestRelayWorksAgainstVersionOne is the attack the test above defends
// against, carried out on a --legacy-login server by a version-1 client:
// it succeeds, which shows that the relay is a real one and that what
// stops it above is login version 2.
func TestRelayWorksAgainstVersionOne(t *testing.T) {
	env := newEnv(t, func(c *api.Config) { c.LegacyLogin = true })
	u := newKey(t)
	pinA := env.com.Public
	if _, err := env.dial("/").LoginCommunity(ctxT(t), u.ID, u.Priv, env.invite(community.InviteOptions{}), &pinA); err != nil {
		t.Fatal(err)
	}
	r := startRelayV1(t, env.url+"/")
	ctx := ctxT(t)
	c, err := client.Dial(ctx, r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Request(ctx, "identification", map[string]any{"user_id": u.ID, "login_version": 1})
	if err != nil {
		t.Fatal(err)
	}
	answer, err := client.SolveV1(u.Priv, ch)
	if err != nil {
		t.Fatal(err)
	}
	// The relay passes A's reply on, so the victim sees it as a push.
	c.Send("challenge_response", "x", map[string]string{"challenge": answer})
	if m := next(t, c); m.Type != api.TypeIdentificationResponse || !r.accepted.Load() {
		t.Fatalf("the version-1 relay did not get in (%s): the harness proves nothing", m.Type)
	}
}

// startRelayV1 is startRelay asking upstream for version 1, as an
// attacker would from a server that still allows it.
func startRelayV1(t *testing.T, upstream string) *relay {
	t.Helper()
	r := &relay{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		victim, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer victim.Close()
		real, _, err := websocket.DefaultDialer.Dial(upstream, nil)
		if err != nil {
			return
		}
		defer real.Close()
		// Pass frames both ways until upstream says who logged in.
		go func() {
			for {
				var f frame
				if victim.ReadJSON(&f) != nil {
					return
				}
				real.WriteJSON(f)
			}
		}()
		for {
			var f frame
			if real.ReadJSON(&f) != nil {
				return
			}
			if f.Type == "identification_response" {
				r.accepted.Store(true)
			}
			victim.WriteJSON(f)
		}
	}))
	t.Cleanup(srv.Close)
	r.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return r
}

// TestLoginVersionOneIsOffByDefault: a client asking for the relayable
// version gets error_protocol unless the operator turned it on.
func TestLoginVersionOneIsOffByDefault(t *testing.T) {
	env := newEnv(t, nil)
	u := env.newUser()
	cases := []struct {
		version any
		want    string
	}{
		{1, api.ErrTypeProtocol}, {3, api.ErrTypeProtocol}, {0, api.ErrTypeProtocol}, {-1, api.ErrTypeProtocol},
		{"2", api.ErrTypeInvalidData}, {2.5, api.ErrTypeInvalidData}, {true, api.ErrTypeInvalidData},
		{map[string]any{}, api.ErrTypeInvalidData},
	}
	for _, path := range []string{"/", "/ws/iota"} {
		for _, tc := range cases {
			c := env.dial(path)
			_, err := c.Request(ctxT(t), "identification", map[string]any{"user_id": u.ID, "login_version": tc.version})
			if got := errType(err); got != tc.want {
				t.Errorf("%s login_version %v: %s, want %s", path, tc.version, got, tc.want)
			}
		}
	}
	// An explicit 2, or null, is the default.
	for _, v := range []any{2, nil} {
		c := env.dial("/ws/iota")
		ch, err := c.Request(ctxT(t), "identification", map[string]any{"user_id": u.ID, "login_version": v})
		if err != nil {
			t.Fatalf("login_version %v: %v", v, err)
		}
		var d struct {
			ServerKey    string `json:"server_key"`
			LoginVersion int    `json:"login_version"`
		}
		json.Unmarshal(ch.Data, &d)
		if d.LoginVersion != 2 || d.ServerKey == "" {
			t.Fatalf("challenge %s", ch.Data)
		}
	}
}

// TestChallengeNamesTheCommunityKey: the challenge frame carries the key
// a client pins from the invite, and version 2.
func TestChallengeNamesTheCommunityKey(t *testing.T) {
	env := newEnv(t, nil)
	m := env.join(community.RoleMember)
	c := env.dial("/")
	ch, err := c.Request(ctxT(t), "identification", map[string]any{"user_id": m.ID})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		ServerKey    string `json:"server_key"`
		LoginVersion int    `json:"login_version"`
	}
	json.Unmarshal(ch.Data, &d)
	if d.ServerKey != env.com.Public.String() || d.LoginVersion != 2 {
		t.Fatalf("challenge %s", ch.Data)
	}
}

// TestClientLegacyLogin: a client asked for version 1 logs in to a
// --legacy-login community, still checks the key it pinned and the proof,
// and gets nowhere with a server that does not allow version 1.
func TestClientLegacyLogin(t *testing.T) {
	legacy := newEnv(t, func(c *api.Config) { c.LegacyLogin = true })
	other := newKey(t).Pub
	for _, tc := range []struct {
		name string
		env  *testEnv
		pin  *icrypto.PublicKey
		ok   bool
		want error // when not ok, if the client is what refuses
	}{
		{"pinned", legacy, &legacy.com.Public, true, nil},
		{"unpinned", legacy, nil, true, nil},
		{"pinned to another key", legacy, &other, false, client.ErrBadProof},
		{"a server without version 1", newEnv(t, nil), nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			c, err := client.Dial(ctx, tc.env.url+"/", &client.Options{LegacyLogin: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			u := newKey(t)
			_, err = c.LoginCommunity(ctx, u.ID, u.Priv, tc.env.invite(community.InviteOptions{}), tc.pin)
			if (err == nil) != tc.ok || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("LoginCommunity: %v, want success %v (%v)", err, tc.ok, tc.want)
			}
		})
	}
}
