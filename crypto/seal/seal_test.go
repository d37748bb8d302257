package seal

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
)

func TestSealOpen(t *testing.T) {
	_, priv, _ := icrypto.GenerateKey(rand.Reader)
	_, other, _ := icrypto.GenerateKey(rand.Reader)
	key := ListKey(priv)
	a, err := Seal(rand.Reader, key, "community_address", "tensamin://x:1984/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Seal(rand.Reader, key, "community_address", "tensamin://x:1984/")
	if a == b {
		t.Fatal("two seals of one plaintext are equal")
	}
	if got, err := Open(key, "community_address", a); err != nil || got != "tensamin://x:1984/" {
		t.Fatalf("open: %q %v", got, err)
	}
	for name, open := range map[string]func() (string, error){
		"wrong field":  func() (string, error) { return Open(key, "community_title", a) },
		"wrong key":    func() (string, error) { return Open(ListKey(other), "community_address", a) },
		"settings key": func() (string, error) { return Open(SettingsKey(priv), "community_address", a) },
		"truncated":    func() (string, error) { return Open(key, "community_address", a[:20]) },
		"not base64":   func() (string, error) { return Open(key, "community_address", "%%%") },
		"empty":        func() (string, error) { return Open(key, "community_address", "") },
		"flipped bit":  func() (string, error) { return Open(key, "community_address", flip(a)) },
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if ListKey(priv) == SettingsKey(priv) {
		t.Fatal("list and settings keys are equal")
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return string(b)
}

func FuzzSealOpen(f *testing.F) {
	f.Add("community_address", "tensamin://x:1984/", "")
	f.Add("position", "", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	_, priv, _ := icrypto.GenerateKey(rand.Reader)
	key := ListKey(priv)
	f.Fuzz(func(t *testing.T, field, plain, garbage string) {
		s, err := Seal(rand.Reader, key, field, plain)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Open(key, field, s); err != nil || got != plain {
			t.Fatalf("round trip %q: %q %v", plain, got, err)
		}
		Open(key, field, garbage)
	})
}

// TestSealVectors opens the fixture the page's tests open too, so Go and
// the browser agree on the sealing format.
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
		t.Fatalf("address: %q %v", got, err)
	}
	if got, err := Open(SettingsKey(priv), v["settings_field"], v["settings_sealed"]); err != nil || got != v["settings"] {
		t.Fatalf("settings: %q %v", got, err)
	}
}
