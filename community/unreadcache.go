package community

import (
	"context"
	"fmt"
	"sync"
)

// unreadCache answers a returning member's unread counts without the
// database when no text channel has a message after the member's read
// markers, which is every login of a member who read up before leaving:
// the count statement was a sixteenth of a login. It holds the newest seq
// of each text channel, exact because every message of the community is
// committed by this process (seeded at start, moved by each commit's after
// hook, and by tree changes), and each member's markers as last read or
// moved here, which may only lag (a lower marker sends the login to the
// database). Only a node alone has one: on a cluster another node's
// messages would have to reach it before a login could trust it.
type unreadCache struct {
	mu      sync.Mutex
	newest  map[int64]int64            // text channel → highest seq stored
	markers map[string]map[int64]int64 // user → text channel → marker seq
}

func newUnreadCache() *unreadCache {
	return &unreadCache{newest: map[int64]int64{}, markers: map[string]map[int64]int64{}}
}

// loadUnreadCache seeds c's cache, before any write can run.
func (c *Community) loadUnreadCache(ctx context.Context) error {
	if c.svc.joined {
		return nil
	}
	// A channel's next seq is past both its last_seq and its newest
	// message (text.go nextSeq), so the newest is the larger.
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT id, last_seq, (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.channel_id = c.id)
		FROM channels c WHERE community_id = $1 AND codec = 'text'`, c.ID)
	if err != nil {
		return fmt.Errorf("community: newest messages: %w", err)
	}
	defer rows.Close()
	u := newUnreadCache()
	for rows.Next() {
		var id, last, newest int64
		if err := rows.Scan(&id, &last, &newest); err != nil {
			return fmt.Errorf("community: newest messages: %w", err)
		}
		u.newest[id] = max(last, newest)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("community: newest messages: %w", err)
	}
	c.unread = u
	return nil
}

// allRead is userID's counts, all zero, when the cache knows that each of
// the text channels has its newest message at or before the user's marker.
func (u *unreadCache) allRead(userID string, text []int64) (map[int64]UnreadCounts, bool) {
	if u == nil {
		return nil, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	m := u.markers[userID]
	if m == nil {
		return nil, false
	}
	out := make(map[int64]UnreadCounts, len(text))
	for _, id := range text {
		newest, known := u.newest[id]
		if !known || newest > m[id] {
			return nil, false
		}
		out[id] = UnreadCounts{}
	}
	return out, true
}

// readFromStore records userID's markers as the count statement read them.
func (u *unreadCache) readFromStore(userID string, markers map[int64]int64) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.markers[userID] = markers
}

// stored moves a channel's newest seq: a message was committed. Every
// message of a channel made here since the start passes through it in
// commit order, so for a channel the cache did not know, seq is its newest.
func (u *unreadCache) stored(channelID, seq int64) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if seq > u.newest[channelID] {
		u.newest[channelID] = seq
	}
}

// read moves userID's marker in a channel forward.
func (u *unreadCache) read(userID string, channelID, seq int64) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if m := u.markers[userID]; m != nil && seq > m[channelID] {
		m[channelID] = seq
	}
}

// treeChanged follows the tree: text is every text channel now, each with
// newest 0 if new (a channel gets messages only after this, in commit
// order). The markers are dropped: a deleted channel's id may come back.
// c.mu is held.
func (u *unreadCache) treeChanged(text []int64) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	fresh := make(map[int64]int64, len(text))
	for _, id := range text {
		fresh[id] = u.newest[id]
	}
	u.newest, u.markers = fresh, map[string]map[int64]int64{}
}
