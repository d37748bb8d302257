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

// iotaKeyPrefix starts a key file's optional second line, the Iota's
// identity key that a version-2 login pins (PROTOCOL §3).
const iotaKeyPrefix = "iota_key="

// KeyFile is a parsed .tu key file.
type KeyFile struct {
	UserID  string
	Private PrivateKey
	// IotaKey is the Iota's identity key from the second line, nil when
	// the file has none (a Tensamin file, or one made before login v2).
	IotaKey *PublicKey
}

// FormatKeyFileWithIota is FormatKeyFile with the second line naming the
// Iota the user belongs to, so the first login needs no trust on first use.
func FormatKeyFileWithIota(userID string, priv PrivateKey, iota PublicKey) []byte {
	return append(FormatKeyFile(userID, priv), iotaKeyPrefix+iota.String()+"\n"...)
}

// ReadKeyFile reads a .tu key file: the Tensamin line, then optionally
// "iota_key=<base64>". Blank lines and surrounding white space (CRLFs from
// Windows included) are ignored; any other extra line is an error, so a
// file that is not a key file is not half-read.
func ReadKeyFile(data []byte) (KeyFile, error) {
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return KeyFile{}, fmt.Errorf("%w: empty", ErrMalformedKeyFile)
	}
	if len(lines) > 2 {
		return KeyFile{}, fmt.Errorf("%w: more than two lines", ErrMalformedKeyFile)
	}
	id, priv, err := parseKeyLine(lines[0])
	if err != nil {
		return KeyFile{}, err
	}
	kf := KeyFile{UserID: id, Private: priv}
	if len(lines) == 2 {
		text, ok := strings.CutPrefix(lines[1], iotaKeyPrefix)
		if !ok {
			return KeyFile{}, fmt.Errorf("%w: the second line must be %s<key>", ErrMalformedKeyFile, iotaKeyPrefix)
		}
		pub, err := ParsePublicKey(text)
		if err != nil {
			return KeyFile{}, fmt.Errorf("%w: iota_key: %v", ErrMalformedKeyFile, err)
		}
		kf.IotaKey = &pub
	}
	return kf, nil
}

// ParseKeyFile is ReadKeyFile for callers that need only the user's key.
func ParseKeyFile(data []byte) (userID string, priv PrivateKey, err error) {
	kf, err := ReadKeyFile(data)
	return kf.UserID, kf.Private, err
}

// parseKeyLine splits the Tensamin line at the first "::". The user id is
// opaque and kept as written; it must not be empty.
func parseKeyLine(line string) (userID string, priv PrivateKey, err error) {
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
