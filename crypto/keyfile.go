package crypto

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// FormatKeyFile renders a Tensamin .tu key file:
// "<user_id>::<standard base64 private key>\n". Writing it with mode 0600 is
// the caller's job.
func FormatKeyFile(userID string, priv PrivateKey) []byte {
	return []byte(userID + "::" + EncodePrivateKey(priv) + "\n")
}

// ParseKeyFile reads a .tu key file: one line, surrounding white space
// (a CRLF from Windows included) ignored, split at the first "::". The user
// id is opaque and kept as written; it must not be empty.
func ParseKeyFile(data []byte) (userID string, priv PrivateKey, err error) {
	line := strings.TrimSpace(string(data))
	if strings.ContainsAny(line, "\r\n") {
		return "", PrivateKey{}, fmt.Errorf("%w: more than one line", ErrMalformedKeyFile)
	}
	id, key, ok := strings.Cut(line, "::")
	if !ok {
		return "", PrivateKey{}, fmt.Errorf("%w: no \"::\" between user id and key", ErrMalformedKeyFile)
	}
	if id == "" {
		return "", PrivateKey{}, fmt.Errorf("%w: empty user id", ErrMalformedKeyFile)
	}
	priv, err = ParsePrivateKey(key)
	if err != nil {
		// %v, not %w: a bad key file is not a bad public key on the wire,
		// and must not be mapped to one.
		return "", PrivateKey{}, fmt.Errorf("%w: %v", ErrMalformedKeyFile, err)
	}
	return id, priv, nil
}

// PrivateKeyHash is Tensamin's private_key_hash: lowercase hex SHA-256 of
// the key's standard base64 text (the text, not the raw bytes, because that
// is what the Tensamin client hashes).
func PrivateKeyHash(priv PrivateKey) string {
	sum := sha256.Sum256([]byte(EncodePrivateKey(priv)))
	return hex.EncodeToString(sum[:])
}
