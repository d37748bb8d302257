package seal

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
)

// The user private key of crypto/testdata/vectors.json, and what Python's
// hashlib, hmac and cryptography (AESGCM) make of it, computed apart from
// this package.
const (
	vectorPrivate     = "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2/QQLEhkgJy41PENKUVhfZm10e4I="
	vectorListKey     = "30fad6e6807c3d2b98eee66c7ffcbf43e720160639fde3f8da94ac1f8d844a6d"
	vectorSettingsKey = "fa3a4b9e33c272f7c276944e0d38e41887dde97ab6995d41f55ca28649589e88"
	// Seal(nonce 0..11, ListKey, "community_address", vectorAddress).
	vectorAddress = "tensamin://example.org:1984/?invite=abc"
	vectorSealed  = "AAECAwQFBgcICQoLanQ2vW5mOqsSERA+TmlXpeYAKi2dDf/sZH23UExn1y2wiGlAonKb6ofj9IP/5XxAiamzTEtUng=="
)

// countingReader yields 0, 1, 2, …: a fixed nonce for vector tests.
type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

type failingReader struct{}

var errDry = errors.New("no randomness")

func (failingReader) Read([]byte) (int, error) { return 0, errDry }

func newKey(t testing.TB) icrypto.PrivateKey {
	t.Helper()
	_, priv, err := icrypto.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestVectors(t *testing.T) {
	priv, err := icrypto.ParsePrivateKey(vectorPrivate)
	if err != nil {
		t.Fatal(err)
	}
	list, settings := ListKey(priv), SettingsKey(priv)
	if got := hex.EncodeToString(list[:]); got != vectorListKey {
		t.Errorf("list key %s, want %s", got, vectorListKey)
	}
	if got := hex.EncodeToString(settings[:]); got != vectorSettingsKey {
		t.Errorf("settings key %s, want %s", got, vectorSettingsKey)
	}
	sealed, err := Seal(&countingReader{}, list, "community_address", vectorAddress)
	if err != nil || sealed != vectorSealed {
		t.Errorf("sealed %s (%v), want %s", sealed, err, vectorSealed)
	}
	if got, err := Open(list, "community_address", vectorSealed); err != nil || got != vectorAddress {
		t.Errorf("opened %q (%v)", got, err)
	}
}

// TestSealVectors opens the fixture the page's tests open too
// (crypto/testdata/seal_vectors.json), so Go and the browser agree on the
// sealing format.
func TestSealVectors(t *testing.T) {
	raw, err := os.ReadFile("../testdata/seal_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	priv, err := icrypto.ParsePrivateKey(v["private_key"])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(ListKey(priv), v["address_field"], v["address_sealed"]); err != nil || got != v["address"] {
		t.Errorf("address: %q %v", got, err)
	}
	if got, err := Open(SettingsKey(priv), v["settings_field"], v["settings_sealed"]); err != nil || got != v["settings"] {
		t.Errorf("settings: %q %v", got, err)
	}
}

func TestSealRoundTrip(t *testing.T) {
	key := ListKey(newKey(t))
	for _, plain := range []string{"", "tensamin://x:1984/", "ünïcode ✓", string(make([]byte, 4096))} {
		s, err := Seal(rand.Reader, key, "community_address", plain)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != nonceSize+len(plain)+tagSize {
			t.Fatalf("sealed is not standard base64 of nonce‖ciphertext‖tag: %d bytes, %v", len(raw), err)
		}
		if got, err := Open(key, "community_address", s); err != nil || got != plain {
			t.Errorf("round trip of %q: %q %v", plain, got, err)
		}
	}
	if _, err := Seal(failingReader{}, key, "f", "p"); !errors.Is(err, errDry) {
		t.Errorf("dry reader: %v", err)
	}
}

func TestSealsDiffer(t *testing.T) {
	key := ListKey(newKey(t))
	a, _ := Seal(rand.Reader, key, "community_address", "tensamin://x:1984/")
	b, _ := Seal(rand.Reader, key, "community_address", "tensamin://x:1984/")
	if a == b {
		t.Fatal("two seals of one plaintext are equal: the nonce is not random")
	}
}

func TestKeysDiffer(t *testing.T) {
	priv, other := newKey(t), newKey(t)
	if ListKey(priv) == SettingsKey(priv) {
		t.Error("list and settings keys are equal")
	}
	if ListKey(priv) == ListKey(other) {
		t.Error("two users have one list key")
	}
	if ListKey(priv) != ListKey(priv) {
		t.Error("ListKey is not deterministic")
	}
}

func TestOpenFailures(t *testing.T) {
	priv, other := newKey(t), newKey(t)
	key := ListKey(priv)
	const field = "community_address"
	s, err := Seal(rand.Reader, key, field, "tensamin://x:1984/")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(s)
	enc := base64.StdEncoding.EncodeToString
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return enc(b)
	}
	cases := []struct {
		name, field, sealed string
		key                 [32]byte
	}{
		{"wrong field", "community_title", s, key},
		{"empty field", "", s, key},
		{"wrong user's key", field, s, ListKey(other)},
		{"settings key", field, s, SettingsKey(priv)},
		{"zero key", field, s, [32]byte{}},
		{"truncated by a byte", field, enc(raw[:len(raw)-1]), key},
		{"nonce and tag only", field, enc(raw[:nonceSize+tagSize]), key},
		{"shorter than nonce and tag", field, enc(raw[:nonceSize+tagSize-1]), key},
		{"nonce only", field, enc(raw[:nonceSize]), key},
		{"truncated text", field, s[:20], key},
		{"empty", field, "", key},
		{"not base64", field, "%%%", key},
		{"nonce bit flipped", field, flip(0), key},
		{"ciphertext bit flipped", field, flip(nonceSize), key},
		{"tag bit flipped", field, flip(len(raw) - 1), key},
	}
	for _, c := range cases {
		if got, err := Open(c.key, c.field, c.sealed); !errors.Is(err, ErrOpen) || got != "" {
			t.Errorf("%s: %q %v, want ErrOpen", c.name, got, err)
		}
	}
}

func FuzzSealOpen(f *testing.F) {
	f.Add("community_address", "tensamin://x:1984/", "")
	f.Add("position", "", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("community_address", vectorAddress, vectorSealed)
	priv, err := icrypto.ParsePrivateKey(vectorPrivate)
	if err != nil {
		f.Fatal(err)
	}
	key := ListKey(priv)
	f.Fuzz(func(t *testing.T, field, plain, sealed string) {
		s, err := Seal(rand.Reader, key, field, plain)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Open(key, field, s); err != nil || got != plain {
			t.Fatalf("round trip %q: %q %v", plain, got, err)
		}
		if _, err := Open(key, field, sealed); err != nil && !errors.Is(err, ErrOpen) {
			t.Fatalf("error %v does not wrap ErrOpen", err)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	key := ListKey(newKey(b))
	for b.Loop() {
		if _, err := Seal(rand.Reader, key, "community_address", vectorAddress); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	key := ListKey(newKey(b))
	s, err := Seal(rand.Reader, key, "community_address", vectorAddress)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Open(key, "community_address", s); err != nil {
			b.Fatal(err)
		}
	}
}
