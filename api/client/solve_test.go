package client

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
)

// solveFixture is a genuine version-2 community challenge and what a
// client expects of it.
func solveFixture(tb testing.TB) (icrypto.PrivateKey, Expect, []byte) {
	uPub, uPriv, _ := icrypto.GenerateKey(rand.Reader)
	sPub, sPriv, _ := icrypto.GenerateKey(rand.Reader)
	ePub, ePriv, _ := icrypto.GenerateKey(rand.Reader)
	static, _ := icrypto.SharedSecret(sPriv, uPub)
	l := icrypto.LoginV2{Role: icrypto.RoleCommunity, UserID: "u1", Ephemeral: ePub, Server: sPub}
	sealed, err := icrypto.SealChallengeV2(ePriv, static, uPub, l, []byte("AbCdEfGhIjKlMnOpQrStUvWxYz012345"))
	if err != nil {
		tb.Fatal(err)
	}
	frame, _ := json.Marshal(map[string]any{"challenge": sealed, "public_key": ePub.String(), "server_key": sPub.String(), "login_version": 2})
	return uPriv, Expect{Role: icrypto.RoleCommunity, UserID: "u1", Server: &sPub}, frame
}

func TestSolveRefusals(t *testing.T) {
	priv, want, genuine := solveFixture(t)
	if answer, _, err := Solve(priv, Message{Data: genuine}, want); err != nil || answer != "AbCdEfGhIjKlMnOpQrStUvWxYz012345" {
		t.Fatalf("genuine challenge: %q, %v", answer, err)
	}
	var g map[string]any
	json.Unmarshal(genuine, &g)
	other, _, _ := icrypto.GenerateKey(rand.Reader)
	cases := map[string]func(m map[string]any){
		"other server_key":   func(m map[string]any) { m["server_key"] = other.String() },
		"no server_key":      func(m map[string]any) { delete(m, "server_key") },
		"version 1":          func(m map[string]any) { m["login_version"] = 1 },
		"no version":         func(m map[string]any) { delete(m, "login_version") },
		"version 3":          func(m map[string]any) { m["login_version"] = 3 },
		"version as string":  func(m map[string]any) { m["login_version"] = "2" },
		"low-order E":        func(m map[string]any) { m["public_key"] = icrypto.PublicKey{}.String() },
		"challenge not text": func(m map[string]any) { m["challenge"] = 5 },
		"tampered challenge": func(m map[string]any) { m["challenge"] = "AAAA" + m["challenge"].(string)[4:] },
	}
	for name, change := range cases {
		m := map[string]any{}
		for k, v := range g {
			m[k] = v
		}
		change(m)
		b, _ := json.Marshal(m)
		if _, _, err := Solve(priv, Message{Data: b}, want); !errors.Is(err, ErrServerIdentity) {
			t.Errorf("%s: %v, want ErrServerIdentity", name, err)
		}
	}
	// The right challenge, for another role or user, does not open either.
	for name, w := range map[string]Expect{
		"iota role":  {Role: icrypto.RoleIota, UserID: want.UserID, Server: want.Server},
		"other user": {Role: want.Role, UserID: "u2", Server: want.Server},
	} {
		if _, _, err := Solve(priv, Message{Data: genuine}, w); !errors.Is(err, ErrServerIdentity) {
			t.Errorf("%s: %v, want ErrServerIdentity", name, err)
		}
	}
}

// FuzzSolve: whatever a hostile server sends as a challenge, the client
// either refuses with ErrServerIdentity or has opened the genuine one.
func FuzzSolve(f *testing.F) {
	priv, want, genuine := solveFixture(f)
	f.Add(genuine)
	f.Add([]byte(`{"challenge":"","public_key":"","login_version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		answer, _, err := Solve(priv, Message{Data: data}, want)
		if err != nil {
			if !errors.Is(err, ErrServerIdentity) {
				t.Fatalf("error %v is not ErrServerIdentity", err)
			}
			return
		}
		if answer != "AbCdEfGhIjKlMnOpQrStUvWxYz012345" {
			t.Fatalf("answered %q to %s", answer, data)
		}
	})
}
