// Package seal is the client's sealing of Iota data (PROTOCOL §3): a user's
// community-list fields and settings, sealed under a key derived from their
// private key, so that their Iota stores only ciphertext.
//
// The server never imports this package; a test in iota checks that.
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

// ErrOpen is any failure to open a sealed field.
var ErrOpen = errors.New("seal: cannot open: wrong key, wrong field or damaged data")

const nonceSize = 12

// ListKey is the key for community-list fields.
func ListKey(priv icrypto.PrivateKey) [32]byte { return derive(priv, "iotad community list v1") }

// SettingsKey is the key for settings payloads.
func SettingsKey(priv icrypto.PrivateKey) [32]byte { return derive(priv, "iotad settings v1") }

func derive(priv icrypto.PrivateKey, info string) [32]byte {
	okm, err := hkdf.Key(sha256.New, priv[:], nil, info, 32)
	if err != nil {
		panic("seal: hkdf with a fixed length cannot fail: " + err.Error())
	}
	return [32]byte(okm)
}

func aead(key [32]byte) cipher.AEAD {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("seal: a 32-byte AES key cannot fail: " + err.Error())
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("seal: standard GCM cannot fail: " + err.Error())
	}
	return g
}

// Seal returns base64(nonce ‖ AES-256-GCM(plaintext)) with the field name as
// additional data, so a sealed title cannot be passed off as an address.
func Seal(rand io.Reader, key [32]byte, field, plaintext string) (string, error) {
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+16)
	if _, err := io.ReadFull(rand, out); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	out = aead(key).Seal(out, out[:nonceSize], []byte(plaintext), []byte(field))
	return base64.StdEncoding.EncodeToString(out), nil
}

// Open reverses Seal.
func Open(key [32]byte, field, sealed string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < nonceSize+16 {
		return "", ErrOpen
	}
	plain, err := aead(key).Open(nil, raw[:nonceSize], raw[nonceSize:], []byte(field))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}
