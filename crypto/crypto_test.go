package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type vectors struct {
	UserPrivate        string `json:"user_private"`
	UserPublic         string `json:"user_public"`
	ServerPrivate      string `json:"server_private"`
	ServerPublic       string `json:"server_public"`
	SharedHex          string `json:"x448_shared_hex"`
	HKDFInfo           string `json:"hkdf_info"`
	AESKeyHex          string `json:"aes_key_hex"`
	NonceHex           string `json:"nonce_hex"`
	ChallengePlaintext string `json:"challenge_plaintext"`
	ChallengeSealed    string `json:"challenge_sealed_b64"`
	KeyFileExample     string `json:"key_file_example"`
	PrivateKeyHashHex  string `json:"private_key_hash_hex"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVectors(t *testing.T) {
	v := loadVectors(t)
	userPriv, err := ParsePrivateKey(v.UserPrivate)
	if err != nil {
		t.Fatal(err)
	}
	serverPriv, err := ParsePrivateKey(v.ServerPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if got := userPriv.Public().String(); got != v.UserPublic {
		t.Errorf("user public %s, want %s", got, v.UserPublic)
	}
	if got := serverPriv.Public().String(); got != v.ServerPublic {
		t.Errorf("server public %s, want %s", got, v.ServerPublic)
	}
	s1, err := SharedSecret(serverPriv, userPriv.Public())
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := SharedSecret(userPriv, serverPriv.Public())
	if hex.EncodeToString(s1[:]) != v.SharedHex || s1 != s2 {
		t.Errorf("shared %x / %x, want %s", s1, s2, v.SharedHex)
	}
	if v.HKDFInfo != challengeInfo {
		t.Errorf("hkdf info %q, want %q", challengeInfo, v.HKDFInfo)
	}
	key, nonce := ChallengeKey(s1)
	if hex.EncodeToString(key[:]) != v.AESKeyHex || hex.EncodeToString(nonce[:]) != v.NonceHex {
		t.Errorf("key %x nonce %x", key, nonce)
	}
	sealed, err := SealChallenge(serverPriv, userPriv.Public(), []byte(v.ChallengePlaintext))
	if err != nil || sealed != v.ChallengeSealed {
		t.Errorf("sealed %s (%v), want %s", sealed, err, v.ChallengeSealed)
	}
	plain, err := OpenChallenge(userPriv, serverPriv.Public(), v.ChallengeSealed)
	if err != nil || string(plain) != v.ChallengePlaintext {
		t.Errorf("opened %q (%v)", plain, err)
	}
	id, kfPriv, err := ParseKeyFile([]byte(v.KeyFileExample))
	if err != nil || id != "12345678901234" || kfPriv != userPriv {
		t.Errorf("key file: %q %v", id, err)
	}
	if got := strings.TrimSpace(string(FormatKeyFile(id, kfPriv))); got != v.KeyFileExample {
		t.Errorf("key file %q, want %q", got, v.KeyFileExample)
	}
	if got := PrivateKeyHash(userPriv); got != v.PrivateKeyHashHex {
		t.Errorf("private key hash %s, want %s", got, v.PrivateKeyHashHex)
	}
}

func TestDecodeKey(t *testing.T) {
	_, priv, _ := GenerateKey(rand.Reader)
	raw := priv[:]
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		k, err := DecodeKey(enc.EncodeToString(raw))
		if err != nil || !bytes.Equal(k[:], raw) {
			t.Errorf("%v: %v", enc, err)
		}
	}
	for _, bad := range []string{"", "AAAA", "not base64!!", base64.StdEncoding.EncodeToString(make([]byte, 55)), base64.StdEncoding.EncodeToString(make([]byte, 57)), base64.StdEncoding.EncodeToString(raw) + "AAAA"} {
		if _, err := DecodeKey(bad); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("DecodeKey(%q) = %v", bad, err)
		}
	}
}

func TestLowOrderKeys(t *testing.T) {
	_, priv, _ := GenerateKey(rand.Reader)
	one := PublicKey{0: 1}
	var pMinus1 PublicKey // p - 1 = 2^448 - 2^224 - 2
	for i := range pMinus1 {
		pMinus1[i] = 0xff
	}
	pMinus1[0] = 0xfe
	pMinus1[28] = 0xfe
	for _, k := range []PublicKey{{}, one, pMinus1} {
		if _, err := ParsePublicKey(k.String()); !errors.Is(err, ErrLowOrder) {
			t.Errorf("ParsePublicKey(%s) = %v", k, err)
		}
		if _, err := SharedSecret(priv, k); !errors.Is(err, ErrLowOrder) {
			t.Errorf("SharedSecret(%s) = %v", k, err)
		}
	}
	pub, _, _ := GenerateKey(rand.Reader)
	if _, err := ParsePublicKey(pub.String()); err != nil {
		t.Errorf("good key refused: %v", err)
	}
}

func TestChallengeText(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s, err := NewChallengeText(rand.Reader)
		if err != nil || len(s) != ChallengeTextLen || strings.Trim(s, alphabet) != "" || seen[s] {
			t.Fatalf("challenge %q %v", s, err)
		}
		seen[s] = true
	}
	if !AnswerEqual("abc", "abc") || AnswerEqual("abc", "abd") || AnswerEqual("abc", "abcd") || AnswerEqual("", "a") {
		t.Fatal("AnswerEqual")
	}
}

func TestOpenChallengeFailures(t *testing.T) {
	sPub, sPriv, _ := GenerateKey(rand.Reader)
	uPub, uPriv, _ := GenerateKey(rand.Reader)
	_, other, _ := GenerateKey(rand.Reader)
	sealed, err := SealChallenge(sPriv, uPub, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenChallenge(other, sPub, sealed); !errors.Is(err, ErrBadChallenge) {
		t.Errorf("wrong key: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(sealed)
	raw[0] ^= 1
	if _, err := OpenChallenge(uPriv, sPub, base64.StdEncoding.EncodeToString(raw)); !errors.Is(err, ErrBadChallenge) {
		t.Errorf("tampered: %v", err)
	}
	if _, err := OpenChallenge(uPriv, sPub, "%%%"); !errors.Is(err, ErrBadChallenge) {
		t.Errorf("garbage: %v", err)
	}
}

func TestMemberKeyAndProof(t *testing.T) {
	cPub, cPriv, _ := GenerateKey(rand.Reader)
	uPub, uPriv, _ := GenerateKey(rand.Reader)
	k1, err := MemberKey(cPriv, uPub)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := MemberKeyForUser(uPriv, cPub)
	if k1 != k2 {
		t.Fatal("member keys differ")
	}
	p := Proof(k1, "challenge")
	if !VerifyProof(k2, "challenge", p) || VerifyProof(k2, "other", p) || VerifyProof([32]byte{}, "challenge", p) || VerifyProof(k2, "challenge", "x") {
		t.Fatal("proof")
	}
}

func TestTickets(t *testing.T) {
	secret := []byte("server secret")
	now := time.Now()
	tk, _ := NewTicket(rand.Reader, "call", "user", now.Add(time.Minute))
	s := SignTicket(secret, tk)
	got, err := VerifyTicket(secret, s, now)
	if err != nil || got.CallID != "call" || got.UserID != "user" || got.Nonce != tk.Nonce || got.Expires.UnixMilli() != tk.Expires.UnixMilli() {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := VerifyTicket([]byte("other"), s, now); !errors.Is(err, ErrBadTicket) {
		t.Errorf("other secret: %v", err)
	}
	if _, err := VerifyTicket(secret, s, now.Add(2*time.Minute)); !errors.Is(err, ErrTicketExpired) {
		t.Errorf("expired: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(s)
	raw[2] ^= 1
	if _, err := VerifyTicket(secret, base64.RawURLEncoding.EncodeToString(raw), now); !errors.Is(err, ErrBadTicket) {
		t.Errorf("tampered: %v", err)
	}
	a := Ticket{CallID: "ab", UserID: "c"}
	b := Ticket{CallID: "a", UserID: "bc"}
	if bytes.Equal(a.encode(), b.encode()) {
		t.Error("length prefixing: two tuples encode alike")
	}
	for _, bad := range []string{"", "!!", "AAAA"} {
		if _, err := VerifyTicket(secret, bad, now); !errors.Is(err, ErrBadTicket) {
			t.Errorf("VerifyTicket(%q) = %v", bad, err)
		}
	}
}

func TestParseKeyFile(t *testing.T) {
	_, priv, _ := GenerateKey(rand.Reader)
	good := string(FormatKeyFile("u1", priv))
	for _, ok := range []string{good, strings.TrimSpace(good), "  " + strings.ReplaceAll(good, "\n", "\r\n")} {
		if id, p, err := ParseKeyFile([]byte(ok)); err != nil || id != "u1" || p != priv {
			t.Errorf("ParseKeyFile(%q) = %q %v", ok, id, err)
		}
	}
	for _, bad := range []string{"", "u1", "::" + EncodePrivateKey(priv), "u1::", "u1::AAAA", "u1:" + EncodePrivateKey(priv)} {
		if _, _, err := ParseKeyFile([]byte(bad)); !errors.Is(err, ErrMalformedKeyFile) {
			t.Errorf("ParseKeyFile(%q) = %v", bad, err)
		}
	}
}

func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte("12345678901234::AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09rh6O/2/QQLEhkgJy41PENKUVhfZm10e4I="))
	f.Add([]byte("a::b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, priv, err := ParseKeyFile(data)
		if err != nil {
			return
		}
		id2, priv2, err := ParseKeyFile(FormatKeyFile(id, priv))
		if err != nil || id2 != id || priv2 != priv {
			t.Fatalf("round trip of %q: %q %v", data, id2, err)
		}
	})
}

func FuzzDecodeKey(f *testing.F) {
	f.Add("x19oowNJbjwsbgGoIQRE/UpqCww3pU3AIkovPAS05XdHUw1MmzFThgiTxVqzp3IBZKOJUMtEnf0=")
	f.Add("x19oowNJbjwsbgGoIQRE_UpqCww3pU3AIkovPAS05XdHUw1MmzFThgiTxVqzp3IBZKOJUMtEnf0")
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := ParsePublicKey(s); err == nil {
			if back, err := ParsePublicKey(k.String()); err != nil || back != k {
				t.Fatalf("round trip of %q", s)
			}
		}
	})
}

func FuzzVerifyTicket(f *testing.F) {
	secret := []byte("fuzz secret")
	tk, _ := NewTicket(rand.Reader, "call", "user", time.Unix(2e9, 0))
	f.Add(SignTicket(secret, tk))
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := VerifyTicket(secret, s, time.Unix(1e9, 0))
		if err == nil && SignTicket(secret, got) != s {
			t.Fatalf("a verified ticket does not re-sign to itself: %q", s)
		}
	})
}

func FuzzOpenChallenge(f *testing.F) {
	v := vectors{ChallengeSealed: "lFmbNpWlksQmOtu+rw0/s9qNVoUk+L6Pa+i7gxEExs34uQeUIWBrI/fkevuVIZgh"}
	f.Add(v.ChallengeSealed)
	f.Add("")
	_, priv, _ := GenerateKey(rand.Reader)
	pub, _, _ := GenerateKey(rand.Reader)
	f.Fuzz(func(t *testing.T, s string) {
		OpenChallenge(priv, pub, s)
	})
}

func BenchmarkGenerateKey(b *testing.B) {
	for b.Loop() {
		GenerateKey(rand.Reader)
	}
}

func BenchmarkSealChallenge(b *testing.B) {
	uPub, _, _ := GenerateKey(rand.Reader)
	for b.Loop() {
		_, eph, _ := GenerateKey(rand.Reader)
		SealChallenge(eph, uPub, []byte("AbCdEfGhIjKlMnOpQrStUvWxYz012345"))
	}
}

func BenchmarkVerifyTicket(b *testing.B) {
	secret := []byte("bench")
	tk, _ := NewTicket(rand.Reader, "call", "user", time.Now().Add(time.Hour))
	s := SignTicket(secret, tk)
	now := time.Now()
	for b.Loop() {
		VerifyTicket(secret, s, now)
	}
}
