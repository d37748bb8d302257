package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	pub, priv := newKeyPair(t)
	if pub != priv.Public() {
		t.Fatal("GenerateKey's public key is not priv.Public()")
	}
	pub2, priv2 := newKeyPair(t)
	if priv == priv2 || pub == pub2 {
		t.Fatal("two generated keys are equal")
	}
	// The private key is the random bytes as read: clamping is X448's job.
	pub3, priv3, err := GenerateKey(&countingReader{})
	if err != nil || priv3[0] != 0 || priv3[55] != 55 || pub3 != priv3.Public() {
		t.Fatalf("GenerateKey(counting): %x %v", priv3, err)
	}
	if _, _, err := GenerateKey(failingReader{}); !errors.Is(err, errDry) {
		t.Fatalf("GenerateKey with a dry reader: %v", err)
	}
}

func TestDecodeKey(t *testing.T) {
	_, priv := newKeyPair(t)
	// 0xfb 0xff in the key puts '+' and '/' (or '-' and '_') in its text,
	// so the standard and URL-safe alphabets are really told apart.
	priv[0], priv[1], priv[2] = 0xfb, 0xff, 0xbf
	raw := priv[:]
	good := map[string]string{
		"standard padded":    base64.StdEncoding.EncodeToString(raw),
		"standard unpadded":  base64.RawStdEncoding.EncodeToString(raw),
		"URL-safe padded":    base64.URLEncoding.EncodeToString(raw),
		"URL-safe unpadded":  base64.RawURLEncoding.EncodeToString(raw),
		"surrounding spaces": " \t" + base64.StdEncoding.EncodeToString(raw) + "\r\n",
	}
	if !strings.ContainsAny(good["standard padded"], "+/") || !strings.ContainsAny(good["URL-safe padded"], "-_") {
		t.Fatal("test key does not exercise both alphabets")
	}
	for name, s := range good {
		k, err := DecodeKey(s)
		if err != nil || !bytes.Equal(k[:], raw) {
			t.Errorf("%s: %q: %v", name, s, err)
		}
	}

	std := base64.StdEncoding.EncodeToString(raw)
	// The last character before "=" carries 2 unused bits; setting them is
	// a second text for the same key, refused.
	nonCanonical := std[:len(std)-2] + string(base64Next(std[len(std)-2])) + "="
	mixed := strings.Replace(base64.URLEncoding.EncodeToString(raw), "-", "+", 1)
	bad := map[string]string{
		"empty":             "",
		"short":             "AAAA",
		"garbage":           "not base64!!",
		"55 bytes":          base64.StdEncoding.EncodeToString(make([]byte, 55)),
		"57 bytes":          base64.StdEncoding.EncodeToString(make([]byte, 57)),
		"trailing group":    std + "AAAA",
		"double padding":    std + "=",
		"mixed alphabets":   mixed,
		"inner line break":  std[:20] + "\n" + std[20:],
		"inner space":       std[:20] + " " + std[20:],
		"non-canonical":     nonCanonical,
		"hex":               strings.Repeat("ab", KeySize),
		"padding in middle": std[:8] + "=" + std[9:],
	}
	for name, s := range bad {
		_, err := DecodeKey(s)
		if !errors.Is(err, ErrMalformedKey) {
			t.Errorf("%s: DecodeKey(%q) = %v, want ErrMalformedKey", name, s, err)
			continue
		}
		if len(s) > 8 && strings.Contains(err.Error(), s) {
			t.Errorf("%s: the error repeats the input, which may be a private key: %v", name, err)
		}
	}
}

// base64Next is the character after c in the standard alphabet, so that
// replacing c by it changes only the lowest bit.
func base64Next(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	return alphabet[(strings.IndexByte(alphabet, c)+1)%64]
}

func TestParsePrivateKey(t *testing.T) {
	_, priv := newKeyPair(t)
	got, err := ParsePrivateKey(EncodePrivateKey(priv))
	if err != nil || got != priv {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := ParsePrivateKey("AAAA"); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("short key: %v", err)
	}
}

// u encodes n as an X448 u-coordinate: 56 bytes little-endian.
func u(n *big.Int) PublicKey {
	var k PublicKey
	b := n.FillBytes(make([]byte, KeySize))
	for i := range b {
		k[i] = b[KeySize-1-i]
	}
	return k
}

func TestLowOrderKeys(t *testing.T) {
	one := big.NewInt(1)
	// p = 2^448 - 2^224 - 1
	p := new(big.Int).Sub(new(big.Int).Lsh(one, 448), new(big.Int).Lsh(one, 224))
	p.Sub(p, one)
	// The points of order 1, 2 and 4 are u = 0, 1 and p-1; p and p+1 are
	// the non-canonical encodings of 0 and 1, which circl reduces mod p.
	lowOrder := map[string]PublicKey{
		"u = 0":   u(big.NewInt(0)),
		"u = 1":   u(one),
		"u = p-1": u(new(big.Int).Sub(p, one)),
		"u = p":   u(p),
		"u = p+1": u(new(big.Int).Add(p, one)),
	}
	_, priv := newKeyPair(t)
	for name, k := range lowOrder {
		if _, err := ParsePublicKey(k.String()); !errors.Is(err, ErrLowOrder) {
			t.Errorf("%s: ParsePublicKey = %v, want ErrLowOrder", name, err)
		}
		if _, err := SharedSecret(priv, k); !errors.Is(err, ErrLowOrder) {
			t.Errorf("%s: SharedSecret = %v, want ErrLowOrder", name, err)
		}
		if _, err := MemberKey(priv, k); !errors.Is(err, ErrLowOrder) {
			t.Errorf("%s: MemberKey = %v, want ErrLowOrder", name, err)
		}
		if _, err := SealChallenge(priv, k, []byte("x")); !errors.Is(err, ErrLowOrder) {
			t.Errorf("%s: SealChallenge = %v, want ErrLowOrder", name, err)
		}
	}
	// All 0xff is 2^448-1, which reduces to 2^224: not low order, so X448
	// gives a non-zero secret and the key is accepted like any other.
	notLowOrder := map[string]PublicKey{
		"all 0xff": u(new(big.Int).Sub(new(big.Int).Lsh(one, 448), one)),
		"u = 2":    u(big.NewInt(2)),
		"u = 5":    u(big.NewInt(5)),
	}
	pub, _ := newKeyPair(t)
	notLowOrder["generated"] = pub
	for name, k := range notLowOrder {
		if _, err := ParsePublicKey(k.String()); err != nil {
			t.Errorf("%s: ParsePublicKey = %v", name, err)
		}
		if _, err := SharedSecret(priv, k); err != nil {
			t.Errorf("%s: SharedSecret = %v", name, err)
		}
	}
}

func TestSharedSecretAgrees(t *testing.T) {
	aPub, aPriv := newKeyPair(t)
	bPub, bPriv := newKeyPair(t)
	s1, err1 := SharedSecret(aPriv, bPub)
	s2, err2 := SharedSecret(bPriv, aPub)
	if err1 != nil || err2 != nil || s1 != s2 {
		t.Fatalf("shared secrets differ: %v %v", err1, err2)
	}
}
