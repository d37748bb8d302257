package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"
)

// Ticket admits one user to one call for a short time (PROTOCOL §5.4).
type Ticket struct {
	// CallID is the call the ticket admits to.
	CallID string
	// UserID is the user the ticket admits.
	UserID string
	// Expires is when the ticket stops being valid; it is kept to the
	// millisecond.
	Expires time.Time
	// Nonce makes every ticket unique, so the server can refuse a second use.
	Nonce [16]byte
}

// NewTicket makes a ticket with a random nonce.
func NewTicket(rand io.Reader, callID, userID string, expires time.Time) (Ticket, error) {
	t := Ticket{CallID: callID, UserID: userID, Expires: expires}
	if _, err := io.ReadFull(rand, t.Nonce[:]); err != nil {
		return Ticket{}, fmt.Errorf("crypto: ticket nonce: %w", err)
	}
	return t, nil
}

// encode length-prefixes the variable fields so that no two tuples encode
// alike ("ab"+"c" differs from "a"+"bc"): uvarint length and bytes of CallID
// and UserID, then the expiry in Unix milliseconds (8 bytes big-endian),
// then the nonce.
func (t Ticket) encode() []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(t.CallID)+len(t.UserID)+8+len(t.Nonce))
	b = binary.AppendUvarint(b, uint64(len(t.CallID)))
	b = append(b, t.CallID...)
	b = binary.AppendUvarint(b, uint64(len(t.UserID)))
	b = append(b, t.UserID...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Expires.UnixMilli()))
	return append(b, t.Nonce[:]...)
}

// decode is the inverse of encode. It accepts only what encode produces, so
// that one ticket has one text.
func decode(body []byte) (Ticket, bool) {
	var t Ticket
	rest := body
	for _, dst := range []*string{&t.CallID, &t.UserID} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return Ticket{}, false
		}
		*dst = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	if len(rest) != 8+len(t.Nonce) {
		return Ticket{}, false
	}
	t.Expires = time.UnixMilli(int64(binary.BigEndian.Uint64(rest)))
	copy(t.Nonce[:], rest[8:])
	// A length written in more bytes than needed would still parse.
	return t, bytes.Equal(t.encode(), body)
}

func ticketMAC(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// SignTicket returns the ticket as opaque unpadded base64url text: its
// encoding followed by an HMAC-SHA256 of it under secret.
func SignTicket(secret []byte, t Ticket) string {
	body := t.encode()
	return base64.RawURLEncoding.EncodeToString(append(body, ticketMAC(secret, body)...))
}

// VerifyTicket checks a ticket made by SignTicket with the same secret. It
// checks the MAC before it reads any field. A forged or damaged ticket is
// ErrBadTicket; a genuine one at or past its expiry is ErrTicketExpired.
// Refusing a second use (by Nonce) is the caller's job.
func VerifyTicket(secret []byte, ticket string, now time.Time) (Ticket, error) {
	// The decoder skips line breaks; refusing them keeps one text per ticket.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(ticket)
	if err != nil || strings.ContainsAny(ticket, "\r\n") {
		return Ticket{}, fmt.Errorf("%w: not base64url", ErrBadTicket)
	}
	if len(raw) < sha256.Size {
		return Ticket{}, fmt.Errorf("%w: too short", ErrBadTicket)
	}
	body, mac := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	if !hmac.Equal(mac, ticketMAC(secret, body)) {
		return Ticket{}, fmt.Errorf("%w: bad MAC", ErrBadTicket)
	}
	t, ok := decode(body)
	if !ok {
		return Ticket{}, fmt.Errorf("%w: bad encoding", ErrBadTicket)
	}
	if !now.Before(t.Expires) {
		return Ticket{}, ErrTicketExpired
	}
	return t, nil
}
