package crypto

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

const memberInfo = "iotad member v1"

// MemberKey is the secret a community shares with one member (the seed's
// "shared secret for each user"): both sides compute it, nobody stores it.
func MemberKey(communityPriv PrivateKey, userPub PublicKey) ([32]byte, error) {
	return memberKey(communityPriv, userPub)
}

// MemberKeyForUser is the member's side of MemberKey; the values are equal.
func MemberKeyForUser(userPriv PrivateKey, communityPub PublicKey) ([32]byte, error) {
	return memberKey(userPriv, communityPub)
}

func memberKey(priv PrivateKey, pub PublicKey) ([32]byte, error) {
	var k [32]byte
	shared, err := SharedSecret(priv, pub)
	if err != nil {
		return k, err
	}
	okm, err := hkdf.Key(sha256.New, shared[:], nil, memberInfo, 32)
	if err != nil {
		return k, fmt.Errorf("crypto: member key: %w", err)
	}
	copy(k[:], okm)
	return k, nil
}

// Proof shows a member that the community holds the key they pinned: an
// HMAC of the login challenge under the member key.
func Proof(memberKey [32]byte, challengePlaintext string) string {
	m := hmac.New(sha256.New, memberKey[:])
	m.Write([]byte(challengePlaintext))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifyProof checks a proof in constant time.
func VerifyProof(memberKey [32]byte, challengePlaintext, proof string) bool {
	got, err := decodeBase64(proof)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, memberKey[:])
	m.Write([]byte(challengePlaintext))
	return hmac.Equal(got, m.Sum(nil))
}

// NewSecret returns 128 random bits as unpadded base64url: invite secrets
// and registration tokens.
func NewSecret(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("crypto: secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashSecret is what is stored instead of a secret.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// FormatKeyFile renders a Tensamin .tu key file: <user_id>::<base64 key>.
func FormatKeyFile(userID string, priv PrivateKey) []byte {
	return []byte(userID + "::" + EncodePrivateKey(priv) + "\n")
}

// ParseKeyFile reads a .tu key file.
func ParseKeyFile(data []byte) (userID string, priv PrivateKey, err error) {
	id, key, ok := strings.Cut(strings.TrimSpace(string(data)), "::")
	id = strings.TrimSpace(id)
	if !ok || id == "" || strings.ContainsAny(id, "\r\n") {
		return "", PrivateKey{}, ErrMalformedKeyFile
	}
	priv, err = ParsePrivateKey(key)
	if err != nil {
		return "", PrivateKey{}, fmt.Errorf("%w: %v", ErrMalformedKeyFile, err)
	}
	return id, priv, nil
}

// PrivateKeyHash is Tensamin's private_key_hash: lowercase hex SHA-256 of
// the key's standard base64 text.
func PrivateKeyHash(priv PrivateKey) string {
	sum := sha256.Sum256([]byte(EncodePrivateKey(priv)))
	return hex.EncodeToString(sum[:])
}
