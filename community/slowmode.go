package community

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxSlowMode is the longest slow mode, Discord's six hours.
const MaxSlowMode = 21600

// ErrRateLimited is a send refused by slow mode; it is a *WaitError,
// which says how long.
var ErrRateLimited = errors.New("too many requests")

// WaitError is ErrRateLimited with the time left to wait.
type WaitError struct{ RetryAfter time.Duration }

func (e *WaitError) Error() string {
	return fmt.Sprintf("slow mode: wait %d ms", e.RetryAfter.Milliseconds())
}

func (e *WaitError) Unwrap() error { return ErrRateLimited }

// SetSlowMode sets the seconds a member waits between two messages in the
// text channel path/name (0 turns it off). It is a tree change: everyone
// gets interactables_changed, with slow_mode in the channel's data.
func (c *Community) SetSlowMode(ctx context.Context, actor Member, path, name string, seconds int) error {
	if seconds < 0 || seconds > MaxSlowMode {
		return fmt.Errorf("%w: seconds must be 0..%d", ErrInvalidData, MaxSlowMode)
	}
	return c.treeChange(ctx, actor, "set_slow_mode", joinPath(path, name)+" "+strconv.Itoa(seconds), func() (func(*sql.Tx) error, func(), error) {
		ch, err := c.find(path, name)
		if err != nil {
			return nil, nil, err
		}
		if ch.Codec != CodecText {
			return nil, nil, fmt.Errorf("%w: slow mode is for text channels", ErrInvalidData)
		}
		write := func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE channels SET slow_mode = $1 WHERE id = $2`, seconds, ch.ID); err != nil {
				return fmt.Errorf("community: set slow mode: %w", err)
			}
			if seconds == 0 {
				_, err := tx.ExecContext(ctx, `DELETE FROM slow_mode_sends WHERE channel_id = $1`, ch.ID)
				return err
			}
			return nil
		}
		return write, func() { ch.SlowMode = seconds }, nil
	})
}

// slowModeWait refuses actor's send in ch while slow mode's interval since
// their last one there has not passed, and otherwise records this one.
// The last send is read in the write transaction, so it holds for sockets
// on every node; the setting is the tree's, which a change on another
// node reaches with its interactables_changed.
func (c *Community) slowModeWait(ctx context.Context, tx *sql.Tx, ch *Channel, actor Member) error {
	if ch.SlowMode == 0 || c.svc.perms.Allows(actor.Role, PermBypassSlowMode) {
		return nil
	}
	now := c.svc.now().UnixMilli()
	var last int64
	err := tx.QueryRowContext(ctx, `SELECT sent_at FROM slow_mode_sends WHERE channel_id = $1 AND user_id = $2`, ch.ID, actor.UserID).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("community: slow mode: %w", err)
	}
	// A clock stepped back counts as the interval having passed.
	if wait := last + int64(ch.SlowMode)*1000 - now; err == nil && wait > 0 && last <= now {
		return &WaitError{RetryAfter: time.Duration(wait) * time.Millisecond}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO slow_mode_sends(channel_id, user_id, sent_at) VALUES($1, $2, $3)
		ON CONFLICT(channel_id, user_id) DO UPDATE SET sent_at = excluded.sent_at`, ch.ID, actor.UserID, now)
	if err != nil {
		return fmt.Errorf("community: slow mode: %w", err)
	}
	return nil
}
