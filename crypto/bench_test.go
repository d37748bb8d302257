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
