package community

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"
)

// MaxQuote is how many code points of the replied-to message a reply
// carries, enough for the one quoted line a client shows above it.
const MaxQuote = 100

// ReplyQuote is what a reply shows of the message it answers, so a client
// needs no second round-trip: the sender and the start of the text, or
// Deleted when that message is gone.
type ReplyQuote struct {
	MessageID string `json:"message_id"`
	SenderID  string `json:"sender_id,omitempty"`
	Message   string `json:"message,omitempty"`
	Deleted   bool   `json:"deleted,omitempty"`
}

func quote(body string) string {
	n := 0
	for i := range body {
		if n == MaxQuote {
			return body[:i]
		}
		n++
	}
	return body
}

// quoteOf reads, inside a send's transaction, the message a reply names;
// it must be in the same channel.
func quoteOf(ctx context.Context, tx *sql.Tx, ch *Channel, id uuid.UUID) (*ReplyQuote, int64, error) {
	seq, err := seqOf(ctx, tx, ch, id)
	if err != nil {
		return nil, 0, fmt.Errorf("%w (reply_to)", err)
	}
	q := ReplyQuote{MessageID: id.String()}
	err = tx.QueryRowContext(ctx, `SELECT sender_id, body FROM messages WHERE channel_id = $1 AND seq = $2`, ch.ID, seq).Scan(&q.SenderID, &q.Message)
	if err != nil {
		return nil, 0, fmt.Errorf("community: read replied message: %w", err)
	}
	q.Message = quote(q.Message)
	return &q, seq, nil
}

// setReply fills m's reply fields from a row of messageSource.
func (m *Message) setReply(replyTo []byte, sender, body sql.NullString) error {
	if replyTo == nil {
		return nil
	}
	u, err := uuid.FromBytes(replyTo)
	if err != nil {
		return fmt.Errorf("community: stored reply id: %w", err)
	}
	m.ReplyTo = u.String()
	m.Reply = &ReplyQuote{MessageID: m.ReplyTo, Deleted: !sender.Valid}
	if sender.Valid {
		m.Reply.SenderID, m.Reply.Message = sender.String, quote(body.String)
	}
	return nil
}

func (m *Message) setID(id []byte) error {
	u, err := uuid.FromBytes(id)
	if err != nil {
		return fmt.Errorf("community: stored message id: %w", err)
	}
	m.ID = u.String()
	return nil
}
