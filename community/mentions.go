package community

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// MaxMentions bounds the member ids one message names, as Discord does
// with its mention spam limit: each is a member read and a row written.
const MaxMentions = 20

// everyoneMention is the user_id of message_mentions that stands for
// @everyone (migration 0007): no member has the empty id.
const everyoneMention = ""

// checkMentions folds duplicates out of the ids a send_message names, in
// their first order, and bounds them; whether each is a member is for the
// write transaction to say.
func checkMentions(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id == "" || len(id) > 128 {
			return nil, fmt.Errorf("%w: payload.mentions holds member ids (1 to 128 bytes)", ErrInvalidData)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > MaxMentions {
		return nil, fmt.Errorf("%w: a message mentions at most %d members", ErrInvalidData, MaxMentions)
	}
	return out, nil
}

// storeMentions writes msg's mentions inside its sending transaction,
// after checking that each id is a member who is not banned and that
// actor (as stored now) may mention everyone. Mentions of members who may
// not view ch are left out of msg and the store.
func (c *Community) storeMentions(ctx context.Context, tx *sql.Tx, ch *Channel, actor Member, msg *Message) error {
	if msg.MentionEveryone && !c.svc.perms.Allows(actor.Role, PermMentionAll) {
		return fmt.Errorf("%w: mention_everyone needs a higher role", ErrPermission)
	}
	kept := msg.Mentions[:0]
	for _, id := range msg.Mentions {
		m, err := c.member(ctx, tx, id)
		if errors.Is(err, ErrNotMember) || (err == nil && m.Banned) {
			return fmt.Errorf("%w: payload.mentions: %q is not a member", ErrInvalidData, id)
		}
		if err != nil {
			return err
		}
		// A member who may not view the channel is not told of it, not
		// even by a mention count: the mention is dropped.
		if !c.CanView(ch, m.Role) {
			continue
		}
		if err := insertMention(ctx, tx, ch.ID, id, msg.Seq); err != nil {
			return err
		}
		kept = append(kept, id)
	}
	msg.Mentions = kept
	if len(kept) == 0 {
		msg.Mentions = nil
	}
	if msg.MentionEveryone {
		return insertMention(ctx, tx, ch.ID, everyoneMention, msg.Seq)
	}
	return nil
}

func insertMention(ctx context.Context, tx *sql.Tx, channelID int64, userID string, seq int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO message_mentions(channel_id, user_id, seq) VALUES($1, $2, $3)`, channelID, userID, seq)
	if err != nil {
		return fmt.Errorf("community: store mention: %w", err)
	}
	return nil
}

// attachMentions fills in the mentions of a page of msgs (one channel's,
// in seq order) with one range read.
func (c *Community) attachMentions(ctx context.Context, ch *Channel, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	lo, hi := msgs[0].Seq, msgs[0].Seq
	for _, m := range msgs {
		lo, hi = min(lo, m.Seq), max(hi, m.Seq)
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT seq, user_id FROM message_mentions
		WHERE channel_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq`, ch.ID, lo, hi)
	if err != nil {
		return fmt.Errorf("community: read mentions: %w", err)
	}
	defer rows.Close()
	at := make(map[int64]int, len(msgs))
	for i, m := range msgs {
		at[m.Seq] = i
	}
	for rows.Next() {
		var seq int64
		var user string
		if err := rows.Scan(&seq, &user); err != nil {
			return fmt.Errorf("community: read mentions: %w", err)
		}
		i, ok := at[seq]
		if !ok {
			continue
		}
		if user == everyoneMention {
			msgs[i].MentionEveryone = true
		} else {
			msgs[i].Mentions = append(msgs[i].Mentions, user)
		}
	}
	return rows.Err()
}
