package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

// Computed apart from this package, with Python's hmac and struct, so the
// encoding is pinned: uvarint length + bytes of "call" and "user", expiry
// 2e12 ms big-endian, nonce 0..15, HMAC-SHA256 under "secret".
const vectorTicket = "BGNhbGwEdXNlcgAAAdGpSiAAAAECAwQFBgcICQoLDA0ODwigZUlNdAg6IpTCL1DvfGBdvfRHJ-e0pXXMZQyIMdI3"

func TestTicketVector(t *testing.T) {
	tk, err := NewTicket(&countingReader{}, "call", "user", time.UnixMilli(2e12))
	if err != nil {
		t.Fatal(err)
	}
	if got := SignTicket([]byte("secret"), tk); got != vectorTicket {
		t.Fatalf("ticket %s, want %s", got, vectorTicket)
	}
	got, err := VerifyTicket([]byte("secret"), vectorTicket, time.UnixMilli(2e12-1))
	if err != nil || got != tk {
		t.Fatalf("verify: %+v %v", got, err)
	}
}

func TestTicketRoundTrip(t *testing.T) {
	secret := []byte("server secret")
	now := time.UnixMilli(1_700_000_000_123)
	cases := []struct{ call, user string }{
		{"call", "user"},
		{"", ""},
		{"01890a5d-ac96-774b-bcce-b302099a8057", "12345678901234"},
		{string(bytes.Repeat([]byte("x"), 300)), "ünïcode ✓"},
	}
	for _, c := range cases {
		tk, err := NewTicket(rand.Reader, c.call, c.user, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		got, err := VerifyTicket(secret, SignTicket(secret, tk), now)
		if err != nil || got.CallID != c.call || got.UserID != c.user || got.Nonce != tk.Nonce || !got.Expires.Equal(tk.Expires) {
			t.Errorf("round trip of %q/%q: %+v %v", c.call, c.user, got, err)
		}
	}
	a, _ := NewTicket(rand.Reader, "call", "user", now)
	b, _ := NewTicket(rand.Reader, "call", "user", now)
	if a.Nonce == b.Nonce {
		t.Error("two tickets have one nonce")
	}
	if _, err := NewTicket(failingReader{}, "c", "u", now); !errors.Is(err, errDry) {
		t.Errorf("dry reader: %v", err)
	}
}

func TestTicketExpiry(t *testing.T) {
	secret := []byte("server secret")
	exp := time.UnixMilli(1_700_000_060_000)
	tk, _ := NewTicket(rand.Reader, "call", "user", exp)
	s := SignTicket(secret, tk)
	if _, err := VerifyTicket(secret, s, exp.Add(-time.Millisecond)); err != nil {
		t.Errorf("a millisecond before expiry: %v", err)
	}
	for _, now := range []time.Time{exp, exp.Add(time.Millisecond), exp.Add(time.Hour)} {
		if _, err := VerifyTicket(secret, s, now); !errors.Is(err, ErrTicketExpired) {
			t.Errorf("at %v: %v, want ErrTicketExpired", now.Sub(exp), err)
		}
	}
}

func TestTicketForgeries(t *testing.T) {
	secret := []byte("server secret")
	now := time.UnixMilli(1_700_000_000_000)
	// 67 bytes: not a multiple of 3, so the padded forms differ.
	tk, _ := NewTicket(rand.Reader, "call1", "user", now.Add(time.Minute))
	s := SignTicket(secret, tk)

	if _, err := VerifyTicket([]byte("another secret"), s, now); !errors.Is(err, ErrBadTicket) {
		t.Errorf("another secret: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(s)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		if _, err := VerifyTicket(secret, base64.RawURLEncoding.EncodeToString(b), now); !errors.Is(err, ErrBadTicket) {
			t.Errorf("byte %d flipped: %v", i, err)
		}
	}
	bad := map[string]string{
		"empty":         "",
		"not base64url": "!!",
		"short":         "AAAA",
		"MAC only":      base64.RawURLEncoding.EncodeToString(raw[len(raw)-32:]),
		"truncated":     s[:len(s)-1],
		"padded":        base64.URLEncoding.EncodeToString(raw),
		"standard":      base64.StdEncoding.EncodeToString(raw),
		"line break":    s[:10] + "\n" + s[10:],
		"extended":      s + "A",
	}
	for name, b := range bad {
		if _, err := VerifyTicket(secret, b, now); !errors.Is(err, ErrBadTicket) {
			t.Errorf("%s: VerifyTicket(%q) = %v, want ErrBadTicket", name, b, err)
		}
	}
}

// TestTicketEncodingIsCanonical signs bodies that encode would never
// produce, with the right secret: they must still be refused.
func TestTicketEncodingIsCanonical(t *testing.T) {
	secret := []byte("server secret")
	sign := func(body []byte) string {
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		return base64.RawURLEncoding.EncodeToString(m.Sum(body))
	}
	tail := make([]byte, 8+16)
	tail[0] = 0x7f // far future
	bodies := map[string][]byte{
		"long uvarint":   append([]byte{0x81, 0x00, 'a', 0x00}, tail...),
		"length too big": append([]byte{0x7f, 'a'}, tail...),
		"missing nonce":  {0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 1},
		"trailing byte":  append(append([]byte{0x00, 0x00}, tail...), 0),
		"empty":          {},
	}
	for name, body := range bodies {
		if _, err := VerifyTicket(secret, sign(body), time.Unix(0, 0)); !errors.Is(err, ErrBadTicket) {
			t.Errorf("%s: %v, want ErrBadTicket", name, err)
		}
	}
	canonical := append([]byte{0x01, 'a', 0x00}, tail...)
	if _, err := VerifyTicket(secret, sign(canonical), time.Unix(0, 0)); err != nil {
		t.Errorf("canonical body refused: %v", err)
	}
}

func TestTicketLengthPrefix(t *testing.T) {
	exp := time.UnixMilli(1_700_000_000_000)
	a := Ticket{CallID: "ab", UserID: "c", Expires: exp}
	b := Ticket{CallID: "a", UserID: "bc", Expires: exp}
	if bytes.Equal(a.encode(), b.encode()) {
		t.Fatal("(ab, c) and (a, bc) encode alike")
	}
	secret := []byte("s")
	if SignTicket(secret, a) == SignTicket(secret, b) {
		t.Fatal("(ab, c) and (a, bc) sign alike")
	}
	got, err := VerifyTicket(secret, SignTicket(secret, a), exp.Add(-time.Second))
	if err != nil || got.CallID != "ab" || got.UserID != "c" {
		t.Fatalf("(ab, c) came back as (%q, %q) %v", got.CallID, got.UserID, err)
	}
}
