package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
)

func TestNewSecret(t *testing.T) {
	a, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret(rand.Reader)
	if a == b {
		t.Fatal("two secrets are equal")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(a)
	if err != nil || len(raw) != 16 || len(a) != 22 {
		t.Fatalf("secret %q: want 16 bytes of unpadded base64url (%v)", a, err)
	}
	if got, _ := NewSecret(&countingReader{}); got != "AAECAwQFBgcICQoLDA0ODw" {
		t.Fatalf("NewSecret(0..15) = %q", got)
	}
	if _, err := NewSecret(failingReader{}); !errors.Is(err, errDry) {
		t.Fatalf("dry reader: %v", err)
	}
}

func TestHashSecret(t *testing.T) {
	if HashSecret("abc") != sha256.Sum256([]byte("abc")) {
		t.Fatal("HashSecret is not SHA-256 of the text")
	}
	if HashSecret("abc") == HashSecret("abd") {
		t.Fatal("two secrets hash alike")
	}
}
