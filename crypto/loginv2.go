package crypto

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// Login version 2 (PROTOCOL §3) binds a challenge to the server's pinned
// static identity key S and to the kind of socket, so that a challenge one
// server relays from another does not open:
//
//	ikm   = X448(E, U) ‖ X448(S, U)            112 bytes
//	salt  = E_pub ‖ S_pub                       112 bytes
//	info  = "iotad login v2 " + role            role: "iota" or "community"
//	okm   = HKDF-SHA256(ikm, salt, info, 44)    key = okm[0:32], nonce = okm[32:44]
//	sealed = base64(AES-256-GCM(key, nonce, plaintext, AAD = user id as UTF-8))
const loginV2InfoPrefix = "iotad login v2 "

// LoginRole names the socket a version-2 challenge is for; it is part of
// the HKDF info, so a challenge sealed for one role never opens as another.
type LoginRole string

// The two roles of PROTOCOL §3.
const (
	RoleIota      LoginRole = "iota"
	RoleCommunity LoginRole = "community"
)

// LoginV2 is what a version-2 challenge is bound to, besides the keys.
type LoginV2 struct {
	Role LoginRole
	// UserID is the user id as the client sent it, the AAD.
	UserID string
	// Ephemeral is E_pub, fresh for every challenge.
	Ephemeral PublicKey
	// Server is S_pub, the identity the client pinned.
	Server PublicKey
}

// LoginV2Key derives the AES-256-GCM key and nonce of a version-2
// challenge from its two X448 outputs. The nonce is fixed per (E, S, U),
// and E is fresh for every challenge, as in version 1.
func LoginV2Key(ephemeralShared, staticShared [KeySize]byte, l LoginV2) (key [32]byte, nonce [12]byte) {
	var ikm [2 * KeySize]byte
	copy(ikm[:], ephemeralShared[:])
	copy(ikm[KeySize:], staticShared[:])
	var salt [2 * KeySize]byte
	copy(salt[:], l.Ephemeral[:])
	copy(salt[KeySize:], l.Server[:])
	okm, err := hkdf.Key(sha256.New, ikm[:], salt[:], loginV2InfoPrefix+string(l.Role), len(key)+len(nonce))
	if err != nil {
		// Only a length over 255 hash sizes fails, and 44 is a constant.
		panic("crypto: hkdf: " + err.Error())
	}
	copy(key[:], okm[:len(key)])
	copy(nonce[:], okm[len(key):])
	return key, nonce
}

func loginV2AEAD(ephemeralShared, staticShared [KeySize]byte, l LoginV2) (cipher.AEAD, []byte, error) {
	key, nonce := LoginV2Key(ephemeralShared, staticShared, l)
	aead, err := newGCM(key)
	return aead, nonce[:], err
}

// SealChallengeV2 is the server's side. ephemeralPriv is E (whose public
// half must be l.Ephemeral); staticShared is X448(S_priv, U_pub), which the
// caller may have cached per user since it depends on no per-login value.
// A low-order userPub is ErrLowOrder.
func SealChallengeV2(ephemeralPriv PrivateKey, staticShared [KeySize]byte, userPub PublicKey, l LoginV2, plaintext []byte) (string, error) {
	ephShared, err := SharedSecret(ephemeralPriv, userPub)
	if err != nil {
		return "", err
	}
	aead, nonce, err := loginV2AEAD(ephShared, staticShared, l)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(aead.Seal(nil, nonce, plaintext, []byte(l.UserID))), nil
}

// OpenChallengeV2 is the user's side. l.Server must be the key the client
// pinned, never one a frame offered. Every failure wraps ErrBadChallenge;
// a low-order key wraps ErrLowOrder too.
func OpenChallengeV2(userPriv PrivateKey, l LoginV2, sealed string) ([]byte, error) {
	staticShared, err := SharedSecret(userPriv, l.Server)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadChallenge, err)
	}
	return OpenChallengeV2Static(userPriv, staticShared, l, sealed)
}

// OpenChallengeV2Static is OpenChallengeV2 for a client that kept
// X448(U, S) from an earlier login to the same pinned server (the member
// key's input too): one X448 per login instead of two.
func OpenChallengeV2Static(userPriv PrivateKey, staticShared [KeySize]byte, l LoginV2, sealed string) ([]byte, error) {
	ephShared, err := SharedSecret(userPriv, l.Ephemeral)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadChallenge, err)
	}
	aead, nonce, err := loginV2AEAD(ephShared, staticShared, l)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadChallenge, err)
	}
	ct, err := decodeBase64(sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadChallenge, err)
	}
	plain, err := aead.Open(nil, nonce, ct, []byte(l.UserID))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrBadChallenge)
	}
	return plain, nil
}
