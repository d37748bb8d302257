package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Ticket admits one user to one call for a short time (PROTOCOL §5.4).
type Ticket struct {
	CallID  string
	UserID  string
	Expires time.Time
	// Nonce makes every ticket unique, so the server can refuse a second use.
	Nonce [16]byte
}

// NewTicket fills a ticket with a random nonce.
func NewTicket(r io.Reader, callID, userID string, expires time.Time) (Ticket, error) {
	t := Ticket{CallID: callID, UserID: userID, Expires: expires}
	if _, err := io.ReadFull(r, t.Nonce[:]); err != nil {
		return Ticket{}, fmt.Errorf("crypto: ticket nonce: %w", err)
	}
	return t, nil
}

// encode length-prefixes the variable fields so that no two tuples encode
// alike ("ab"+"c" differs from "a"+"bc").
func (t Ticket) encode() []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(t.CallID)+len(t.UserID)+8+16)
	b = binary.AppendUvarint(b, uint64(len(t.CallID)))
	b = append(b, t.CallID...)
	b = binary.AppendUvarint(b, uint64(len(t.UserID)))
	b = append(b, t.UserID...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Expires.UnixMilli()))
	return append(b, t.Nonce[:]...)
}

// SignTicket returns the ticket as opaque base64url text with its MAC.
func SignTicket(secret []byte, t Ticket) string {
	body := t.encode()
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return base64.RawURLEncoding.EncodeToString(m.Sum(body))
}

// VerifyTicket checks the MAC before it trusts any field, then the expiry.
func VerifyTicket(secret []byte, ticket string, now time.Time) (Ticket, error) {
	raw, err := base64.RawURLEncoding.DecodeString(ticket)
	if err != nil || len(raw) < sha256.Size {
		return Ticket{}, ErrBadTicket
	}
	body, mac := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return Ticket{}, ErrBadTicket
	}
	var t Ticket
	rest := body
	for _, dst := range []*string{&t.CallID, &t.UserID} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return Ticket{}, ErrBadTicket
		}
		*dst = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	if len(rest) != 8+16 {
		return Ticket{}, ErrBadTicket
	}
	t.Expires = time.UnixMilli(int64(binary.BigEndian.Uint64(rest)))
	copy(t.Nonce[:], rest[8:])
	if !now.Before(t.Expires) {
		return t, ErrTicketExpired
	}
	return t, nil
}
