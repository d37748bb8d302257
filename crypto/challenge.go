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

// challengeInfo is the HKDF info of the Tensamin client's challenge scheme.
const challengeInfo = "x448-aes-gcm-no-overhead"

// ChallengeTextLen is how many characters a challenge plaintext has.
const ChallengeTextLen = 32

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// ChallengeKey derives the AES-256-GCM key and nonce from an X448 shared
// secret. The nonce is fixed per key pair, which is why the server seals
// every challenge under a fresh ephemeral key.
func ChallengeKey(shared [KeySize]byte) (key [32]byte, nonce [12]byte) {
	okm, err := hkdf.Key(sha256.New, shared[:], nil, challengeInfo, 44)
	if err != nil {
		panic("crypto: hkdf with a fixed length cannot fail: " + err.Error())
	}
	copy(key[:], okm[:32])
	copy(nonce[:], okm[32:])
	return key, nonce
}

func challengeAEAD(priv PrivateKey, pub PublicKey) (cipher.AEAD, []byte, error) {
	shared, err := SharedSecret(priv, pub)
	if err != nil {
		return nil, nil, err
	}
	key, nonce := ChallengeKey(shared)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, nil, fmt.Errorf("crypto: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, fmt.Errorf("crypto: gcm: %w", err)
	}
	return aead, nonce[:], nil
}

// SealChallenge seals plaintext from the server's (ephemeral) key to the
// user's public key: base64(ciphertext‖tag), no nonce on the wire.
func SealChallenge(serverPriv PrivateKey, userPub PublicKey, plaintext []byte) (string, error) {
	aead, nonce, err := challengeAEAD(serverPriv, userPub)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(aead.Seal(nil, nonce, plaintext, nil)), nil
}

// OpenChallenge is the user's side of SealChallenge.
func OpenChallenge(userPriv PrivateKey, serverPub PublicKey, sealed string) ([]byte, error) {
	aead, nonce, err := challengeAEAD(userPriv, serverPub)
	if err != nil {
		return nil, err
	}
	ct, err := decodeBase64(sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadChallenge)
	}
	plain, err := aead.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, ErrBadChallenge
	}
	return plain, nil
}

// NewChallengeText returns 32 uniformly random characters from [A-Za-z0-9].
func NewChallengeText(rand io.Reader) (string, error) {
	out := make([]byte, 0, ChallengeTextLen)
	var buf [64]byte
	for len(out) < ChallengeTextLen {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return "", fmt.Errorf("crypto: challenge: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: bytes above it would favour the first letters.
			if b < 248 && len(out) < ChallengeTextLen {
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out), nil
}

// AnswerEqual compares a challenge answer in constant time.
func AnswerEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
