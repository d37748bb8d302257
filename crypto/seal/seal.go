// Package seal is the clients' sealing of Iota data (PROTOCOL §3): the
// fields of a user's community list and their settings, sealed under keys
// derived from the user's private key, so that their Iota stores only
// ciphertext it cannot open.
//
// This is the opening half. The server's iota package must never import it;
// a test in iota checks that.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	icrypto "github.com/iotad/iotad/crypto"
)

// ErrOpen is wrapped by every failure to open a sealed field: damaged or
// truncated data, the wrong key or the wrong field name. They are not told
// apart, since AES-GCM cannot tell them apart either.
var ErrOpen = errors.New("seal: cannot open")

const (
	nonceSize = 12
	tagSize   = 16
)

// ListKey is the key that seals the fields of a user's community list.
func ListKey(priv icrypto.PrivateKey) [32]byte { return derive(priv, "iotad community list v1") }

// SettingsKey is the key that seals a user's settings payloads. It differs
// from ListKey so that a settings blob cannot be passed off as a list entry.
func SettingsKey(priv icrypto.PrivateKey) [32]byte { return derive(priv, "iotad settings v1") }

// derive is HKDF-SHA256 over the raw private key, salt empty.
func derive(priv icrypto.PrivateKey, info string) [32]byte {
	okm, err := hkdf.Key(sha256.New, priv[:], nil, info, 32)
	if err != nil {
		// Only a length over 255 hash sizes fails, and 32 is a constant.
		panic("seal: hkdf: " + err.Error())
	}
	return [32]byte(okm)
}

// newAEAD cannot fail for a 32-byte key and the standard GCM parameters, so
// a failure is a broken build and panics rather than burdening every caller.
func newAEAD(key [32]byte) cipher.AEAD {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("seal: aes: " + err.Error())
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("seal: gcm: " + err.Error())
	}
	return g
}

// Seal returns standard base64 of nonce‖AES-256-GCM(plaintext), the nonce
// 12 bytes from rand, with the field name as additional data so that a
// sealed title cannot be passed off as an address. Two seals of one
// plaintext differ.
func Seal(rand io.Reader, key [32]byte, field, plaintext string) (string, error) {
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := io.ReadFull(rand, out); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	out = newAEAD(key).Seal(out, out[:nonceSize], []byte(plaintext), []byte(field))
	return base64.StdEncoding.EncodeToString(out), nil
}

// Open reverses Seal; field must be the one it was sealed under.
func Open(key [32]byte, field, sealed string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("%w: not base64", ErrOpen)
	}
	if len(raw) < nonceSize+tagSize {
		return "", fmt.Errorf("%w: %d bytes is too short", ErrOpen, len(raw))
	}
	plain, err := newAEAD(key).Open(nil, raw[:nonceSize], raw[nonceSize:], []byte(field))
	if err != nil {
		return "", fmt.Errorf("%w: wrong key, wrong field or damaged data", ErrOpen)
	}
	return string(plain), nil
}
