package crypto

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestNewChallengeText(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		s, err := NewChallengeText(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 32 || strings.Trim(s, challengeAlphabet) != "" {
			t.Fatalf("challenge %q: want 32 characters of [A-Za-z0-9]", s)
		}
		if seen[s] {
			t.Fatalf("challenge %q came twice", s)
		}
		seen[s] = true
	}
	if _, err := NewChallengeText(failingReader{}); !errors.Is(err, errDry) {
		t.Fatalf("dry reader: %v", err)
	}
}

// TestChallengeTextUniform feeds every byte value equally often: with
// rejection sampling every letter then comes out equally often too, where
// b%62 over all 256 values would favour the first eight.
func TestChallengeTextUniform(t *testing.T) {
	r := &countingReader{}
	counts := map[rune]int{}
	const texts = 31 * 8 // 248 accepted bytes per 256 read; whole cycles
	for range texts {
		s, err := NewChallengeText(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s {
			counts[c]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters, want 62", len(counts))
	}
	for c, n := range counts {
		if n != texts*32/62 {
			t.Errorf("%q came %d times, want %d", c, n, texts*32/62)
		}
	}
}

func TestAnswerEqual(t *testing.T) {
	cases := []struct {
		got, want string
		equal     bool
	}{
		{"abc", "abc", true},
		{"", "", true},
		{"abc", "abd", false},
		{"abc", "abcd", false},
		{"abcd", "abc", false},
		{"", "a", false},
		{"ABC", "abc", false},
	}
	for _, c := range cases {
		if got := AnswerEqual(c.got, c.want); got != c.equal {
			t.Errorf("AnswerEqual(%q, %q) = %v", c.got, c.want, got)
		}
	}
}

func TestChallengeRoundTrip(t *testing.T) {
	sPub, sPriv := newKeyPair(t)
	uPub, uPriv := newKeyPair(t)
	text, err := NewChallengeText(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := SealChallenge(sPriv, uPub, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) != len(text)+16 {
		t.Fatalf("sealed is not standard base64 of ciphertext‖tag: %d bytes, %v", len(raw), err)
	}
	for _, form := range []string{sealed, base64.RawStdEncoding.EncodeToString(raw), base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw)} {
		plain, err := OpenChallenge(uPriv, sPub, form)
		if err != nil || string(plain) != text {
			t.Errorf("open %q: %q %v", form, plain, err)
		}
	}
}

func TestOpenChallengeFailures(t *testing.T) {
	sPub, sPriv := newKeyPair(t)
	uPub, uPriv := newKeyPair(t)
	otherPub, otherPriv := newKeyPair(t)
	sealed, err := SealChallenge(sPriv, uPub, []byte("AbCdEfGhIjKlMnOpQrStUvWxYz012345"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sealed)
	flipped := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	cases := []struct {
		name   string
		priv   PrivateKey
		pub    PublicKey
		sealed string
	}{
		{"wrong user key", otherPriv, sPub, sealed},
		{"wrong server key", uPriv, otherPub, sealed},
		{"ciphertext bit flipped", uPriv, sPub, flipped(0)},
		{"tag bit flipped", uPriv, sPub, flipped(len(raw) - 1)},
		{"truncated", uPriv, sPub, base64.StdEncoding.EncodeToString(raw[:len(raw)-1])},
		{"tag only", uPriv, sPub, base64.StdEncoding.EncodeToString(raw[len(raw)-16:])},
		{"extended", uPriv, sPub, base64.StdEncoding.EncodeToString(append(append([]byte(nil), raw...), 0))},
		{"empty", uPriv, sPub, ""},
		{"not base64", uPriv, sPub, "%%%"},
	}
	for _, c := range cases {
		if _, err := OpenChallenge(c.priv, c.pub, c.sealed); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("%s: %v, want ErrBadChallenge", c.name, err)
		}
	}
	_, err = OpenChallenge(uPriv, PublicKey{}, sealed)
	if !errors.Is(err, ErrBadChallenge) || !errors.Is(err, ErrLowOrder) {
		t.Errorf("low-order server key: %v, want ErrBadChallenge and ErrLowOrder", err)
	}
}
