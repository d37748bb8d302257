package crypto

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
)

// NewSecret returns 128 random bits as unpadded base64url, short enough to
// paste and safe in a URL: invite secrets and registration tokens.
func NewSecret(rand io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("crypto: secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashSecret is the SHA-256 of a secret's text: what the database keeps
// instead of the secret, so a leaked database admits nobody. A plain hash
// is enough because the secret has 128 random bits.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }
