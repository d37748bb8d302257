package crypto

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// vectors is testdata/vectors.json, the project's copy of the shared
// vectors, also read by the web client's tests.
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

func loadVectors(t testing.TB) vectors {
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

func mustPrivate(t testing.TB, s string) PrivateKey {
	t.Helper()
	k, err := ParsePrivateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPublic(t testing.TB, s string) PublicKey {
	t.Helper()
	k, err := ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVectors(t *testing.T) {
	v := loadVectors(t)
	userPriv := mustPrivate(t, v.UserPrivate)
	serverPriv := mustPrivate(t, v.ServerPrivate)

	if got := EncodePrivateKey(userPriv); got != v.UserPrivate {
		t.Errorf("user private re-encodes to %s, want %s", got, v.UserPrivate)
	}
	if got := userPriv.Public().String(); got != v.UserPublic {
		t.Errorf("user public %s, want %s", got, v.UserPublic)
	}
	if got := serverPriv.Public().String(); got != v.ServerPublic {
		t.Errorf("server public %s, want %s", got, v.ServerPublic)
	}
	userPub, serverPub := mustPublic(t, v.UserPublic), mustPublic(t, v.ServerPublic)
	if userPub != userPriv.Public() || serverPub != serverPriv.Public() {
		t.Error("ParsePublicKey does not give back the derived public keys")
	}

	s1, err := SharedSecret(serverPriv, userPub)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := SharedSecret(userPriv, serverPub)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(s1[:]); got != v.SharedHex {
		t.Errorf("shared (server side) %s, want %s", got, v.SharedHex)
	}
	if got := hex.EncodeToString(s2[:]); got != v.SharedHex {
		t.Errorf("shared (user side) %s, want %s", got, v.SharedHex)
	}

	if v.HKDFInfo != challengeInfo {
		t.Errorf("hkdf info %q, want %q", challengeInfo, v.HKDFInfo)
	}
	key, nonce := ChallengeKey(s1)
	if got := hex.EncodeToString(key[:]); got != v.AESKeyHex {
		t.Errorf("aes key %s, want %s", got, v.AESKeyHex)
	}
	if got := hex.EncodeToString(nonce[:]); got != v.NonceHex {
		t.Errorf("nonce %s, want %s", got, v.NonceHex)
	}

	sealed, err := SealChallenge(serverPriv, userPub, []byte(v.ChallengePlaintext))
	if err != nil || sealed != v.ChallengeSealed {
		t.Errorf("sealed %s (%v), want %s", sealed, err, v.ChallengeSealed)
	}
	plain, err := OpenChallenge(userPriv, serverPub, v.ChallengeSealed)
	if err != nil || string(plain) != v.ChallengePlaintext {
		t.Errorf("opened %q (%v), want %q", plain, err, v.ChallengePlaintext)
	}

	id, kfPriv, err := ParseKeyFile([]byte(v.KeyFileExample))
	if err != nil || id != "12345678901234" || kfPriv != userPriv {
		t.Errorf("key file: id %q, same key %v, err %v", id, kfPriv == userPriv, err)
	}
	if got, want := string(FormatKeyFile(id, kfPriv)), v.KeyFileExample+"\n"; got != want {
		t.Errorf("key file %q, want %q", got, want)
	}
	if got := PrivateKeyHash(userPriv); got != v.PrivateKeyHashHex {
		t.Errorf("private key hash %s, want %s", got, v.PrivateKeyHashHex)
	}
}
