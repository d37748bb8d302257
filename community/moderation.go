package community

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// MaxTimeout is the longest timeout, Discord's 28 days.
const MaxTimeout = 28 * 24 * time.Hour

// ResultMemberTimedOut tells everyone a member's timeout changed; until
// 0 means lifted.
const ResultMemberTimedOut = "member_timed_out"

// TimedOut reports whether m is timed out at now.
func (m Member) TimedOut(now time.Time) bool { return m.TimeoutUntil > now.UnixMilli() }

// checkTimeout refuses what a timed-out member may not do: everything that
// needs post (send, edit, delete, react, typing) or voice (join a call).
// Reading and marking read stay.
func (c *Community) checkTimeout(m Member, p Permission, what string) error {
	if (p != PermPost && p != PermVoice) || !m.TimedOut(c.svc.now()) {
		return nil
	}
	return fmt.Errorf("%w: %s: you are timed out until %s", ErrPermission, what,
		time.UnixMilli(m.TimeoutUntil).UTC().Format(time.RFC3339))
}

// Timeout stops userID posting and speaking until until (at most
// MaxTimeout from now); their call, if any, ends. A zero until lifts it
// (RemoveTimeout).
func (c *Community) Timeout(ctx context.Context, actor Member, userID string, until time.Time) error {
	if !c.svc.perms.Allows(actor.Role, PermTimeout) {
		return fmt.Errorf("%w: timing out needs a higher role", ErrPermission)
	}
	lift := until.IsZero()
	var ms int64
	if !lift {
		now := c.svc.now()
		if !until.After(now) || until.Sub(now) > MaxTimeout {
			return fmt.Errorf("%w: a timeout ends in the future, at most 28 days from now", ErrInvalidData)
		}
		ms = until.UnixMilli()
	}
	action := "timeout"
	if lift {
		action = "remove_timeout"
	}
	return c.svc.w.do(ctx, func(tx *sql.Tx) error {
		actor, err := c.actorNow(ctx, tx, actor, PermTimeout, "timing out")
		if err != nil {
			return err
		}
		if _, err := c.target(ctx, tx, actor, userID); err != nil {
			return err
		}
		var stored any
		if !lift {
			stored = ms
		}
		c.svc.members.changing(c.ID, userID)
		if _, err := tx.ExecContext(ctx, `UPDATE members SET timeout_until = $1 WHERE community_id = $2 AND user_id = $3`,
			stored, c.ID, userID); err != nil {
			return fmt.Errorf("community: %s: %w", action, err)
		}
		target := userID
		if !lift {
			target += " " + strconv.FormatInt(ms, 10)
		}
		return c.audit(ctx, tx, actor.UserID, action, target)
	}, func() {
		c.publish(Event{Result: ResultMemberTimedOut, Payload: map[string]any{"user_id": userID, "until": ms}})
		if !lift {
			c.endCallOf(userID)
		}
	})
}

// RemoveTimeout lifts userID's timeout.
func (c *Community) RemoveTimeout(ctx context.Context, actor Member, userID string) error {
	return c.Timeout(ctx, actor, userID, time.Time{})
}

// endCallOf ends userID's call in this community, wherever it is: a
// timed-out member may not speak, and joining again is refused until the
// timeout ends.
func (c *Community) endCallOf(userID string) {
	c.mu.Lock()
	var in *Channel
	for id, room := range c.voice {
		if room.find(userID) != nil {
			in = c.channels[id]
		}
	}
	c.mu.Unlock()
	if in != nil {
		c.LeaveCall(in, userID)
	}
}

// Now is the community's clock, as timeouts are judged by it.
func (c *Community) Now() time.Time { return c.svc.now() }
