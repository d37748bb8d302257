package crypto

import (
	"encoding/hex"
	"testing"
)

// Computed apart from this package, with Python's hashlib and hmac, from
// the shared secret in testdata/vectors.json.
const (
	vectorMemberKeyHex = "e33527f2bbba2bb1ae147c969e52be7fa25453ff738eb9a5783d32d25a9d94cb"
	vectorProof        = "MCZgD1fj/NRsPhQ+YS0JwsSE4lpyjyUS0wy3khJbZ9U="
)

func TestMemberKeyVector(t *testing.T) {
	v := loadVectors(t)
	server, user := mustPrivate(t, v.ServerPrivate), mustPrivate(t, v.UserPrivate)
	k1, err := MemberKey(server, user.Public())
	if err != nil {
		t.Fatal(err)
	}
	k2, err := MemberKeyForUser(user, server.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k1[:]); got != vectorMemberKeyHex || k1 != k2 {
		t.Errorf("member key %s / %x, want %s", got, k2, vectorMemberKeyHex)
	}
	if got := Proof(k1, v.ChallengePlaintext); got != vectorProof {
		t.Errorf("proof %s, want %s", got, vectorProof)
	}
}

func TestMemberKeyAndProof(t *testing.T) {
	cPub, cPriv := newKeyPair(t)
	uPub, uPriv := newKeyPair(t)
	_, otherPriv := newKeyPair(t)
	k1, err := MemberKey(cPriv, uPub)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := MemberKeyForUser(uPriv, cPub)
	if err != nil || k1 != k2 {
		t.Fatalf("MemberKey != MemberKeyForUser (%v)", err)
	}
	k3, _ := MemberKeyForUser(otherPriv, cPub)
	if k3 == k1 {
		t.Fatal("two members share a member key")
	}

	p := Proof(k1, "challenge")
	cases := []struct {
		name      string
		key       [32]byte
		text, prf string
		ok        bool
	}{
		{"genuine", k2, "challenge", p, true},
		{"other text", k2, "challengf", p, false},
		{"other member's key", k3, "challenge", p, false},
		{"zero key", [32]byte{}, "challenge", p, false},
		{"not base64", k2, "challenge", "x", false},
		{"empty", k2, "challenge", "", false},
		{"truncated", k2, "challenge", p[:len(p)-4], false},
	}
	for _, c := range cases {
		if got := VerifyProof(c.key, c.text, c.prf); got != c.ok {
			t.Errorf("%s: VerifyProof = %v", c.name, got)
		}
	}
}
