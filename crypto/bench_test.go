package crypto

import (
	"crypto/rand"
	"testing"
	"time"
)

func BenchmarkGenerateKey(b *testing.B) {
	for b.Loop() {
		if _, _, err := GenerateKey(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealChallenge is one challenge as the server makes it, without
// the ephemeral key generation (see BenchmarkGenerateKey).
func BenchmarkSealChallenge(b *testing.B) {
	uPub, _ := newKeyPair(b)
	_, eph := newKeyPair(b)
	plain := []byte("AbCdEfGhIjKlMnOpQrStUvWxYz012345")
	for b.Loop() {
		if _, err := SealChallenge(eph, uPub, plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSharedSecret(b *testing.B) {
	pub, _ := newKeyPair(b)
	_, priv := newKeyPair(b)
	for b.Loop() {
		if _, err := SharedSecret(priv, pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTicket(b *testing.B) {
	secret := []byte("bench secret")
	now := time.Now()
	tk, err := NewTicket(rand.Reader, "01890a5d-ac96-774b-bcce-b302099a8057", "01890a5d-ac96-774b-bcce-b302099a8058", now.Add(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	s := SignTicket(secret, tk)
	for b.Loop() {
		if _, err := VerifyTicket(secret, s, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealChallengeV2 is one version-2 challenge as the server makes
// it for a returning member: X448(S,U) is cached, so one X448 and the
// key schedule, without the ephemeral key generation.
func BenchmarkSealChallengeV2(b *testing.B) {
	uPub, _ := newKeyPair(b)
	sPub, sPriv := newKeyPair(b)
	ePub, ePriv := newKeyPair(b)
	static, _ := SharedSecret(sPriv, uPub)
	l := LoginV2{Role: RoleCommunity, UserID: "5f0c8a3e-1d2b-4c6a-9e7f-0a1b2c3d4e5f", Ephemeral: ePub, Server: sPub}
	plain := []byte("AbCdEfGhIjKlMnOpQrStUvWxYz012345")
	for b.Loop() {
		if _, err := SealChallengeV2(ePriv, static, uPub, l, plain); err != nil {
			b.Fatal(err)
		}
	}
}
