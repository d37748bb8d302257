package crypto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

type loginV2Case struct {
	Role          LoginRole `json:"role"`
	UserID        string    `json:"user_id"`
	Plaintext     string    `json:"plaintext"`
	UserPrivate   string    `json:"user_private"`
	UserPublic    string    `json:"user_public"`
	ServerPrivate string    `json:"server_private"`
	ServerPublic  string    `json:"server_public"`
	EphPrivate    string    `json:"ephemeral_private"`
	EphPublic     string    `json:"ephemeral_public"`
	IKMHex        string    `json:"ikm_hex"`
	SaltHex       string    `json:"salt_hex"`
	Info          string    `json:"info"`
	AESKeyHex     string    `json:"aes_key_hex"`
	NonceHex      string    `json:"nonce_hex"`
	Sealed        string    `json:"challenge_sealed_b64"`
}

// loginV2Cases reads both sets of vectors: the project's own (node's
// OpenSSL, crypto/testdata/login_v2_vectors.mjs) and the shared ones,
// whose keys and plaintext live at the top level of vectors.json.
func loginV2Cases(t *testing.T) []loginV2Case {
	t.Helper()
	var own struct{ Cases []loginV2Case }
	raw, err := os.ReadFile("testdata/login_v2_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &own); err != nil {
		t.Fatal(err)
	}
	v := loadVectors(t)
	var shared struct {
		LoginV2 struct {
			EphPrivate string        `json:"ephemeral_private"`
			EphPublic  string        `json:"ephemeral_public"`
			UserID     string        `json:"user_id"`
			Cases      []loginV2Case `json:"cases"`
		} `json:"login_v2"`
	}
	raw, _ = os.ReadFile("testdata/vectors.json")
	if err := json.Unmarshal(raw, &shared); err != nil {
		t.Fatal(err)
	}
	if len(shared.LoginV2.Cases) != 2 || len(own.Cases) < 5 {
		t.Fatalf("%d shared and %d own cases", len(shared.LoginV2.Cases), len(own.Cases))
	}
	for _, c := range shared.LoginV2.Cases {
		c.UserID, c.Plaintext = shared.LoginV2.UserID, v.ChallengePlaintext
		c.UserPrivate, c.UserPublic, c.ServerPrivate, c.ServerPublic = v.UserPrivate, v.UserPublic, v.ServerPrivate, v.ServerPublic
		c.EphPrivate, c.EphPublic = shared.LoginV2.EphPrivate, shared.LoginV2.EphPublic
		own.Cases = append(own.Cases, c)
	}
	return own.Cases
}

func TestLoginV2Vectors(t *testing.T) {
	for _, c := range loginV2Cases(t) {
		t.Run(string(c.Role)+"/"+c.UserID, func(t *testing.T) {
			userPriv, serverPriv, ephPriv := mustPrivate(t, c.UserPrivate), mustPrivate(t, c.ServerPrivate), mustPrivate(t, c.EphPrivate)
			userPub, serverPub, ephPub := mustPublic(t, c.UserPublic), mustPublic(t, c.ServerPublic), mustPublic(t, c.EphPublic)
			if userPriv.Public() != userPub || serverPriv.Public() != serverPub || ephPriv.Public() != ephPub {
				t.Fatal("a public key differs from its private half")
			}
			l := LoginV2{Role: c.Role, UserID: c.UserID, Ephemeral: ephPub, Server: serverPub}
			eph, _ := SharedSecret(ephPriv, userPub)
			static, _ := SharedSecret(serverPriv, userPub)
			if got := hex.EncodeToString(append(eph[:], static[:]...)); c.IKMHex != "" && got != c.IKMHex {
				t.Fatalf("ikm %s, want %s", got, c.IKMHex)
			}
			key, nonce := LoginV2Key(eph, static, l)
			if hex.EncodeToString(key[:]) != c.AESKeyHex || hex.EncodeToString(nonce[:]) != c.NonceHex {
				t.Fatalf("key/nonce %x %x, want %s %s", key, nonce, c.AESKeyHex, c.NonceHex)
			}
			sealed, err := SealChallengeV2(ephPriv, static, userPub, l, []byte(c.Plaintext))
			if err != nil || sealed != c.Sealed {
				t.Fatalf("sealed %q, %v; want %q", sealed, err, c.Sealed)
			}
			plain, err := OpenChallengeV2(userPriv, l, c.Sealed)
			if err != nil || string(plain) != c.Plaintext {
				t.Fatalf("opened %q, %v", plain, err)
			}
			// A client that kept X448(U, S) opens the same way, and one
			// that kept another server's secret does not.
			plain, err = OpenChallengeV2Static(userPriv, static, l, c.Sealed)
			if err != nil || string(plain) != c.Plaintext {
				t.Fatalf("opened with the kept secret %q, %v", plain, err)
			}
			otherPub, _ := newKeyPair(t)
			otherStatic, _ := SharedSecret(userPriv, otherPub)
			if _, err := OpenChallengeV2Static(userPriv, otherStatic, l, c.Sealed); !errors.Is(err, ErrBadChallenge) {
				t.Fatalf("another server's kept secret: %v, want ErrBadChallenge", err)
			}
		})
	}
}

// TestLoginV2BindsEverything changes one input at a time: another role,
// another server key (a relay), another user id, the version-1 opener, and
// another ephemeral key must each fail to open the challenge.
func TestLoginV2BindsEverything(t *testing.T) {
	c := loginV2Cases(t)[0]
	userPriv := mustPrivate(t, c.UserPrivate)
	good := LoginV2{Role: c.Role, UserID: c.UserID, Ephemeral: mustPublic(t, c.EphPublic), Server: mustPublic(t, c.ServerPublic)}
	otherPub, _ := newKeyPair(t)
	other := good.Role
	if other == RoleIota {
		other = RoleCommunity
	} else {
		other = RoleIota
	}
	cases := map[string]func(l *LoginV2){
		"role":      func(l *LoginV2) { l.Role = other },
		"server":    func(l *LoginV2) { l.Server = otherPub },
		"user id":   func(l *LoginV2) { l.UserID += "x" },
		"ephemeral": func(l *LoginV2) { l.Ephemeral = otherPub },
	}
	for name, change := range cases {
		l := good
		change(&l)
		if _, err := OpenChallengeV2(userPriv, l, c.Sealed); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("%s changed: %v, want ErrBadChallenge", name, err)
		}
	}
	if _, err := OpenChallenge(userPriv, good.Server, c.Sealed); !errors.Is(err, ErrBadChallenge) {
		t.Errorf("opened as version 1: %v", err)
	}
	var zero PublicKey
	l := good
	l.Server = zero
	if _, err := OpenChallengeV2(userPriv, l, c.Sealed); !errors.Is(err, ErrLowOrder) {
		t.Errorf("low-order server key: %v, want ErrLowOrder", err)
	}
	if plain, err := OpenChallengeV2(userPriv, good, c.Sealed); err != nil || !bytes.Equal(plain, []byte(c.Plaintext)) {
		t.Fatalf("unchanged inputs do not open: %v", err)
	}
}
