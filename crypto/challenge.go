package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
)

// challengeInfo is the HKDF info of the Tensamin client's challenge scheme;
// it must stay byte for byte what the client uses.
const challengeInfo = "x448-aes-gcm-no-overhead"

// challengeTextLen is how many characters a challenge plaintext has.
const challengeTextLen = 32

// challengeAlphabet is [A-Za-z0-9]; 62 letters.
const challengeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// ChallengeKey derives the AES-256-GCM key and nonce of a challenge from an
// X448 shared secret. The nonce is fixed per key pair, which is why the
// server must seal every challenge under a fresh ephemeral key.
func ChallengeKey(shared [KeySize]byte) (key [32]byte, nonce [12]byte) {
	okm, err := hkdf.Key(sha256.New, shared[:], nil, challengeInfo, len(key)+len(nonce))
	if err != nil {
		// Only a length over 255 hash sizes fails, and 44 is a constant.
		panic("crypto: hkdf: " + err.Error())
	}
	copy(key[:], okm[:len(key)])
	copy(nonce[:], okm[len(key):])
	return key, nonce
}

// challengeAEAD is the cipher and nonce both sides of a challenge derive.
func challengeAEAD(priv PrivateKey, pub PublicKey) (cipher.AEAD, []byte, error) {
	shared, err := SharedSecret(priv, pub)
	if err != nil {
		return nil, nil, err
	}
	key, nonce := ChallengeKey(shared)
	aead, err := newGCM(key)
	return aead, nonce[:], err
}

// newGCM is AES-256-GCM under key, the cipher of both login versions.
func newGCM(key [32]byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("crypto: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("crypto: gcm: %w", err)
	}
	return aead, nil
}

// SealChallenge seals plaintext from the server's ephemeral key to the
// user's public key: standard base64 of ciphertext‖tag, no nonce on the wire
// (both sides derive it), no additional data. A low-order userPub is
// ErrLowOrder.
func SealChallenge(serverPriv PrivateKey, userPub PublicKey, plaintext []byte) (string, error) {
	aead, nonce, err := challengeAEAD(serverPriv, userPub)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(aead.Seal(nil, nonce, plaintext, nil)), nil
}

// OpenChallenge is the user's side of SealChallenge. sealed may be in any
// base64 form DecodeKey accepts. Every failure wraps ErrBadChallenge; a
// low-order serverPub wraps ErrLowOrder too.
func OpenChallenge(userPriv PrivateKey, serverPub PublicKey, sealed string) ([]byte, error) {
	aead, nonce, err := challengeAEAD(userPriv, serverPub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadChallenge, err)
	}
	ct, err := decodeBase64(sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadChallenge, err)
	}
	plain, err := aead.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrBadChallenge)
	}
	return plain, nil
}

// NewChallengeText returns 32 characters drawn uniformly from [A-Za-z0-9].
func NewChallengeText(rand io.Reader) (string, error) {
	out := make([]byte, 0, challengeTextLen)
	var buf [challengeTextLen]byte
	for len(out) < challengeTextLen {
		// Read only what is still missing, so no random byte is wasted.
		chunk := buf[:challengeTextLen-len(out)]
		if _, err := io.ReadFull(rand, chunk); err != nil {
			return "", fmt.Errorf("crypto: challenge text: %w", err)
		}
		for _, b := range chunk {
			// 248 = 4*62: taking b%62 of the bytes above it would favour the
			// first eight letters, so they are thrown away instead.
			if b < 248 {
				out = append(out, challengeAlphabet[b%62])
			}
		}
	}
	return string(out), nil
}

// AnswerEqual compares a challenge answer with the plaintext in constant
// time, so the comparison leaks no prefix length. Different lengths are
// unequal.
func AnswerEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
