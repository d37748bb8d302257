// Package crypto holds iotad's cryptography as pure functions: X448 keys,
// login challenges, member keys and proofs, call tickets and key files
// (PROTOCOL §3). Nothing here does I/O; randomness comes in as an io.Reader.
//
// Sealing of Iota data lives in crypto/seal, apart, so that the server's
// iota package cannot even import the half that opens it.
package crypto

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/dh/x448"
)

// KeySize is the size of an X448 private scalar and public u-coordinate.
const KeySize = 56

// PublicKey is an X448 public key.
type PublicKey [KeySize]byte

// PrivateKey is an X448 private key. It has no String method on purpose, so
// that it cannot end up in a log line by accident.
type PrivateKey [KeySize]byte

// Errors of this package.
var (
	ErrMalformedKey     = errors.New("malformed key: want 56 bytes in base64")
	ErrLowOrder         = errors.New("public key is a low-order point")
	ErrBadChallenge     = errors.New("challenge does not open with this key")
	ErrMalformedKeyFile = errors.New("malformed key file: want <user_id>::<base64 private key>")
	ErrBadTicket        = errors.New("call ticket is not valid")
	ErrTicketExpired    = errors.New("call ticket expired")
)

// GenerateKey makes a new X448 key pair.
func GenerateKey(rand io.Reader) (PublicKey, PrivateKey, error) {
	var priv PrivateKey
	if _, err := io.ReadFull(rand, priv[:]); err != nil {
		return PublicKey{}, PrivateKey{}, fmt.Errorf("crypto: generate key: %w", err)
	}
	return priv.Public(), priv, nil
}

// Public returns the public half of k.
func (k PrivateKey) Public() PublicKey {
	var pub, sec x448.Key
	sec = x448.Key(k)
	x448.KeyGen(&pub, &sec)
	return PublicKey(pub)
}

// String is the key in standard base64 with padding, as on the wire.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// EncodePrivateKey is the private key in standard base64 with padding.
func EncodePrivateKey(k PrivateKey) string { return base64.StdEncoding.EncodeToString(k[:]) }

// decodeBase64 accepts standard and URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") && len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	return enc.Strict().DecodeString(s)
}

// DecodeKey decodes a 56-byte key from any of the base64 forms clients send.
func DecodeKey(s string) ([KeySize]byte, error) {
	var k [KeySize]byte
	b, err := decodeBase64(s)
	if err != nil || len(b) != KeySize {
		return k, ErrMalformedKey
	}
	copy(k[:], b)
	return k, nil
}

// lowOrderProbe is any valid scalar: a low-order point times it is zero.
var lowOrderProbe = x448.Key{1: 1, 55: 0x80}

// ParsePublicKey decodes a public key and refuses low-order points, whose
// shared secret with any key is all zeros.
func ParsePublicKey(s string) (PublicKey, error) {
	k, err := DecodeKey(s)
	if err != nil {
		return PublicKey{}, err
	}
	pub := PublicKey(k)
	if err := CheckPublicKey(pub); err != nil {
		return PublicKey{}, err
	}
	return pub, nil
}

// CheckPublicKey refuses low-order points.
func CheckPublicKey(pub PublicKey) error {
	var shared x448.Key
	p := x448.Key(pub)
	if !x448.Shared(&shared, &lowOrderProbe, &p) {
		return ErrLowOrder
	}
	return nil
}

// ParsePrivateKey decodes a private key.
func ParsePrivateKey(s string) (PrivateKey, error) {
	k, err := DecodeKey(s)
	return PrivateKey(k), err
}

// SharedSecret is X448(priv, pub); an all-zero result is ErrLowOrder.
func SharedSecret(priv PrivateKey, pub PublicKey) ([KeySize]byte, error) {
	var shared x448.Key
	sec, p := x448.Key(priv), x448.Key(pub)
	if !x448.Shared(&shared, &sec, &p) {
		return [KeySize]byte{}, ErrLowOrder
	}
	return shared, nil
}
