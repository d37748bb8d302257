package community

import (
	"context"
	"database/sql"
	"fmt"
)

// MaxPins is how many messages one channel may have pinned.
const MaxPins = 50

// Results of pins (PROTOCOL §9 "Replies, reactions and pins").
const (
	ResultPinsChanged = "pins_changed"
	ResultPins        = "pins"
)

type pinsChanged struct {
	MessageID string `json:"message_id"`
	Pinned    bool   `json:"pinned"`
	PinnedBy  string `json:"pinned_by"`
}

// PinnedMessage is a message of list_pins: as in a chunk, and who pinned
// it when.
type PinnedMessage struct {
	Message
	PinnedBy string `json:"pinned_by"`
	PinnedAt int64  `json:"pinned_at"`
}

// pin pins or unpins a message. Pinning a pinned message or unpinning one
// that is not succeeds and changes nothing (no update, no audit entry).
func pin(ctx context.Context, call *Call, on bool) (*Result, error) {
	if !call.Allowed(PermPin) {
		return nil, fmt.Errorf("%w: pinning needs a higher role", ErrPermission)
	}
	id, err := decodeMessageID(call)
	if err != nil {
		return nil, err
	}
	c, ch := call.Community, call.Channel
	ev := pinsChanged{MessageID: id.String(), Pinned: on, PinnedBy: call.Member.UserID}
	changed := false
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorIn(ctx, tx, call.Member, ch, PermPin, "pinning"); err != nil {
			return err
		}
		seq, err := seqOf(ctx, tx, ch, id)
		if err != nil {
			return err
		}
		var res sql.Result
		if on {
			var n int
			var already int
			err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(CASE WHEN seq = $2 THEN 1 ELSE 0 END), 0) FROM pins WHERE channel_id = $1`,
				ch.ID, seq).Scan(&n, &already)
			if err != nil {
				return fmt.Errorf("community: count pins: %w", err)
			}
			if already == 0 && n >= MaxPins {
				return fmt.Errorf("%w: a channel has at most %d pins", ErrInvalidData, MaxPins)
			}
			res, err = tx.ExecContext(ctx, `INSERT INTO pins(channel_id, seq, pinned_by, pinned_at) VALUES($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
				ch.ID, seq, call.Member.UserID, c.svc.now().UnixMilli())
			if err != nil {
				return fmt.Errorf("community: pin: %w", err)
			}
		} else {
			res, err = tx.ExecContext(ctx, `DELETE FROM pins WHERE channel_id = $1 AND seq = $2`, ch.ID, seq)
			if err != nil {
				return fmt.Errorf("community: unpin: %w", err)
			}
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if changed = n > 0; !changed {
			return nil
		}
		return c.audit(ctx, tx, call.Member.UserID, call.Function, id.String())
	}, func() {
		if changed {
			c.publish(Event{Channel: ch.Ref(), Result: ResultPinsChanged, Payload: ev})
		}
	})
	if err != nil {
		return nil, err
	}
	return &Result{Result: ResultPinsChanged, Payload: ev}, nil
}

// listPins returns the channel's pinned messages, newest pin first; at
// most MaxPins, so one query and no paging.
func listPins(ctx context.Context, call *Call) (*Result, error) {
	c, ch := call.Community, call.Channel
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT `+messageColumns+`, p.pinned_by, p.pinned_at
		FROM pins p JOIN messages m ON m.channel_id = p.channel_id AND m.seq = p.seq `+quotedJoin+`
		WHERE p.channel_id = $1 ORDER BY p.pinned_at DESC, p.seq DESC LIMIT $2`, ch.ID, MaxPins)
	if err != nil {
		return nil, fmt.Errorf("community: read pins: %w", err)
	}
	defer rows.Close()
	out := []PinnedMessage{}
	for rows.Next() {
		var p PinnedMessage
		var id, replyTo []byte
		var edited sql.NullInt64
		var replySender, replyBody sql.NullString
		if err := rows.Scan(&p.Seq, &id, &p.SenderID, &p.Body, &p.SendTime, &edited, &replyTo, &replySender, &replyBody, &p.PinnedBy, &p.PinnedAt); err != nil {
			return nil, fmt.Errorf("community: read pins: %w", err)
		}
		if err := p.setID(id); err != nil {
			return nil, err
		}
		if edited.Valid {
			p.EditedAt = &edited.Int64
		}
		if err := p.setReply(replyTo, replySender, replyBody); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("community: read pins: %w", err)
	}
	for i := range out {
		// Every field of a message as in a chunk (PROTOCOL §5.3).
		one := []Message{out[i].Message}
		if err := c.attachMentions(ctx, ch, one); err != nil {
			return nil, err
		}
		if err := c.loadAttachments(ctx, ch, one); err != nil {
			return nil, err
		}
		if err := c.addReactions(ctx, ch, one, call.Member.UserID); err != nil {
			return nil, err
		}
		out[i].Message = one[0]
	}
	return &Result{Result: ResultPins, Payload: map[string]any{"pins": out}}, nil
}
