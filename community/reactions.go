package community

import (
	"context"
	"database/sql"
	"fmt"
)

// MaxReactions is how many distinct emoji one message may carry, which
// also bounds one member's reactions on it.
const MaxReactions = 20

// ResultReactionChanged is the update that a reaction was added or removed.
const ResultReactionChanged = "reaction_changed"

// Reaction is one emoji's tally on a message, as the reader sees it.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	Mine  bool   `json:"mine"`
}

type reactionChanged struct {
	MessageID string `json:"message_id"`
	Emoji     string `json:"emoji"`
	Count     int    `json:"count"`
	UserID    string `json:"user_id"`
	Added     bool   `json:"added"`
}

// react adds or removes the caller's reaction. Adding one already there
// or removing one not there succeeds and changes nothing, so a client that
// retries or races itself needs no special case; only a change is told.
func react(ctx context.Context, call *Call, add bool) (*Result, error) {
	if !call.Allowed(PermPost) {
		return nil, fmt.Errorf("%w: reacting needs a higher role", ErrPermission)
	}
	var in struct {
		MessageID *string `json:"message_id"`
		Emoji     *string `json:"emoji"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	id, err := parseMessageID(in.MessageID)
	if err != nil {
		return nil, err
	}
	if in.Emoji == nil {
		return nil, fmt.Errorf("%w: payload.emoji is required", ErrInvalidData)
	}
	if err := CheckEmoji(*in.Emoji); err != nil {
		return nil, err
	}
	c, ch, user := call.Community, call.Channel, call.Member.UserID
	ev := reactionChanged{MessageID: id.String(), Emoji: *in.Emoji, UserID: user, Added: add}
	changed := false
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorIn(ctx, tx, call.Member, ch, PermPost, "reacting"); err != nil {
			return err
		}
		seq, err := seqOf(ctx, tx, ch, id)
		if err != nil {
			return err
		}
		var res sql.Result
		if add {
			var distinct int
			var exists bool
			err := tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT emoji), COALESCE(MAX(CASE WHEN emoji = $3 THEN 1 ELSE 0 END), 0) = 1
				FROM reactions WHERE channel_id = $1 AND seq = $2`, ch.ID, seq, *in.Emoji).Scan(&distinct, &exists)
			if err != nil {
				return fmt.Errorf("community: count reactions: %w", err)
			}
			if !exists && distinct >= MaxReactions {
				return fmt.Errorf("%w: a message carries at most %d distinct reactions", ErrInvalidData, MaxReactions)
			}
			res, err = tx.ExecContext(ctx, `INSERT INTO reactions(channel_id, seq, emoji, user_id, time) VALUES($1, $2, $3, $4, $5)
				ON CONFLICT DO NOTHING`, ch.ID, seq, *in.Emoji, user, c.svc.now().UnixMilli())
			if err != nil {
				return fmt.Errorf("community: add reaction: %w", err)
			}
		} else {
			res, err = tx.ExecContext(ctx, `DELETE FROM reactions WHERE channel_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4`,
				ch.ID, seq, *in.Emoji, user)
			if err != nil {
				return fmt.Errorf("community: remove reaction: %w", err)
			}
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		changed = n > 0
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM reactions WHERE channel_id = $1 AND seq = $2 AND emoji = $3`,
			ch.ID, seq, *in.Emoji).Scan(&ev.Count)
	}, func() {
		if changed {
			c.publish(Event{Channel: ch.Ref(), Result: ResultReactionChanged, Payload: ev})
		}
	})
	if err != nil {
		return nil, err
	}
	return &Result{Result: ResultReactionChanged, Payload: ev}, nil
}

// addReactions fills in the reactions of a page for the member reading
// it: one query over the page's seq range, emoji in order of first use.
func (c *Community) addReactions(ctx context.Context, ch *Channel, msgs []Message, reader string) error {
	if len(msgs) == 0 {
		return nil
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT seq, emoji, COUNT(*), MAX(CASE WHEN user_id = $4 THEN 1 ELSE 0 END), MIN(time)
		FROM reactions WHERE channel_id = $1 AND seq >= $2 AND seq <= $3
		GROUP BY seq, emoji ORDER BY seq, MIN(time), emoji`, ch.ID, msgs[0].Seq, msgs[len(msgs)-1].Seq, reader)
	if err != nil {
		return fmt.Errorf("community: read reactions: %w", err)
	}
	defer rows.Close()
	bySeq := make(map[int64]int, len(msgs))
	for i := range msgs {
		bySeq[msgs[i].Seq] = i
	}
	for rows.Next() {
		var seq, first int64
		var r Reaction
		var mine int
		if err := rows.Scan(&seq, &r.Emoji, &r.Count, &mine, &first); err != nil {
			return fmt.Errorf("community: read reactions: %w", err)
		}
		r.Mine = mine == 1
		if i, ok := bySeq[seq]; ok {
			msgs[i].Reactions = append(msgs[i].Reactions, r)
		}
	}
	return rows.Err()
}

// dropReactionsAndPin removes, inside deleteMessage's transaction, what
// hangs off the message at seq, and reports whether it was pinned. The
// foreign keys would do it too; explicit, it does not depend on them.
func dropReactionsAndPin(ctx context.Context, tx *sql.Tx, ch *Channel, seq int64) (bool, error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM reactions WHERE channel_id = $1 AND seq = $2`, ch.ID, seq); err != nil {
		return false, fmt.Errorf("community: delete reactions: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM pins WHERE channel_id = $1 AND seq = $2`, ch.ID, seq)
	if err != nil {
		return false, fmt.Errorf("community: delete pin: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
