// Package crypto holds iotad's cryptography as pure functions: X448 keys,
// login challenges, member keys and proofs, call tickets, secrets and
// Tensamin key files (PROTOCOL §3). Nothing here does I/O; randomness comes
// in as an io.Reader, so tests can make it deterministic.
//
// Sealing of Iota data lives in crypto/seal, apart, so that the server's
// iota package cannot even import the half that opens it.
package crypto

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/cloudflare/circl/dh/x448"
)

// KeySize is the size in bytes of an X448 private scalar and of a public
// u-coordinate.
const KeySize = 56

// PublicKey is an X448 public key (a u-coordinate, little-endian).
type PublicKey [KeySize]byte

// PrivateKey is an X448 private key, kept unclamped as generated so that it
// round-trips through Tensamin key files byte for byte. Every fmt verb and
// slog print it as [redacted] (see Format and LogValue), so it cannot end
// up in a log line by accident. EncodePrivateKey is the deliberate way to
// write one out.
type PrivateKey [KeySize]byte

const redacted = "[redacted]"

// Format prints [redacted] under every verb, %x, %#v and %d included,
// which a String method alone would not cover for an array type.
func (PrivateKey) Format(f fmt.State, verb rune) { io.WriteString(f, redacted) }

// LogValue keeps the key out of slog's output, whichever handler runs.
func (PrivateKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// String is [redacted], for callers that ask for a string directly.
func (PrivateKey) String() string { return redacted }

// GoString is [redacted], for %#v through paths that bypass Format.
func (PrivateKey) GoString() string { return redacted }

// Sentinel errors of this package; errors returned here wrap one of them.
var (
	// ErrMalformedKey: not base64 in any accepted form, or not 56 bytes.
	ErrMalformedKey = errors.New("malformed key")
	// ErrLowOrder: the public key is a low-order point, so the shared secret
	// would be all zeros whatever the private key.
	ErrLowOrder = errors.New("public key is a low-order point")
	// ErrBadChallenge: a sealed challenge does not open with these keys.
	ErrBadChallenge = errors.New("challenge does not open with this key")
	// ErrMalformedKeyFile: not a one-line <user_id>::<base64 private key>.
	ErrMalformedKeyFile = errors.New("malformed key file")
	// ErrBadTicket: a call ticket is not one we signed.
	ErrBadTicket = errors.New("call ticket is not valid")
	// ErrTicketExpired: a genuine call ticket whose time is up.
	ErrTicketExpired = errors.New("call ticket expired")
)

// GenerateKey makes a new X448 key pair from KeySize bytes of rand.
func GenerateKey(rand io.Reader) (PublicKey, PrivateKey, error) {
	var priv PrivateKey
	if _, err := io.ReadFull(rand, priv[:]); err != nil {
		return PublicKey{}, PrivateKey{}, fmt.Errorf("crypto: generate key: %w", err)
	}
	return priv.Public(), priv, nil
}

// Public returns the public half of k: X448(k, 5), with the scalar clamped
// (RFC 7748) on a copy, so k stays as stored. circl's KeyGen is already a
// constant-time fixed-base method with a precomputed table.
func (k PrivateKey) Public() PublicKey {
	var pub x448.Key
	sec := x448.Key(k)
	x448.KeyGen(&pub, &sec)
	return PublicKey(pub)
}

// String is the key in standard base64 with padding, its form on the wire
// and in files.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// EncodePrivateKey is the private key in standard base64 with padding, as in
// a key file.
func EncodePrivateKey(k PrivateKey) string { return base64.StdEncoding.EncodeToString(k[:]) }

// decodeBase64 accepts standard and URL-safe base64, padded or not, because
// clients send all four. Strict decoding and the refusal of inner line breaks
// (which the decoder would otherwise skip) leave one text per value and form.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break inside base64")
	}
	encodings := [...]*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	}
	for _, enc := range encodings {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	// The decoder's own error is left out: it adds nothing a caller can act on.
	return nil, errors.New("not base64")
}

// DecodeKey decodes a 56-byte key from standard or URL-safe base64, padded
// or not. Surrounding white space is ignored.
func DecodeKey(s string) ([KeySize]byte, error) {
	var k [KeySize]byte
	b, err := decodeBase64(s)
	if err != nil {
		// Never the input in the message: it may be a private key.
		return k, fmt.Errorf("%w: %v", ErrMalformedKey, err)
	}
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedKey, len(b), KeySize)
	}
	return [KeySize]byte(b), nil
}

// ParsePublicKey decodes a public key and refuses low-order points, whose
// shared secret with any key is all zeros.
func ParsePublicKey(s string) (PublicKey, error) {
	k, err := DecodeKey(s)
	if err != nil {
		return PublicKey{}, err
	}
	pub := PublicKey(k)
	if pub.lowOrder() {
		return PublicKey{}, fmt.Errorf("crypto: %w", ErrLowOrder)
	}
	return pub, nil
}

// lowOrder reports whether k is a point of order 1, 2 or 4 on curve448 or
// its twist: u ≡ 0, 1 or p-1 (mod p). With a clamped scalar (a multiple of
// the cofactor 4) exactly these give an all-zero X448 output, so the list
// answers what a probe X448 would, without its ~100 µs: a login parses two
// public keys, and the probe was a third of its X448 time. The comparison
// is constant-time although public keys are not secret, so nobody has to
// reason about whether it may leak.
func (k PublicKey) lowOrder() bool {
	// p = 2^448 - 2^224 - 1, little-endian: 0xff bytes but byte 28 is 0xfe.
	var zero, one, p, pPlus1, pMinus1 PublicKey
	one[0] = 1
	for i := range p {
		p[i] = 0xff
	}
	p[28] = 0xfe
	pMinus1, pPlus1 = p, p
	pMinus1[0] = 0xfe
	for i := range 28 {
		pPlus1[i] = 0
	}
	pPlus1[28] = 0xff
	found := 0
	for _, bad := range [...]*PublicKey{&zero, &one, &pMinus1, &p, &pPlus1} {
		found |= subtle.ConstantTimeCompare(k[:], bad[:])
	}
	return found == 1
}

// ParsePrivateKey decodes a private key. Every 56-byte string is a valid
// X448 scalar, so only the encoding is checked.
func ParsePrivateKey(s string) (PrivateKey, error) {
	k, err := DecodeKey(s)
	if err != nil {
		return PrivateKey{}, err
	}
	return PrivateKey(k), nil
}

// SharedSecret is X448(priv, pub). An all-zero result, which a low-order
// public key forces whatever priv is, is ErrLowOrder.
func SharedSecret(priv PrivateKey, pub PublicKey) ([KeySize]byte, error) {
	var shared x448.Key
	sec, p := x448.Key(priv), x448.Key(pub)
	if !x448.Shared(&shared, &sec, &p) {
		return [KeySize]byte{}, ErrLowOrder
	}
	return shared, nil
}
