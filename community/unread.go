package community

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
)

// MaxUnreadCount caps the unread and mention counts: past it a client
// shows "1000+", and counting stops there, so a channel a member never
// opens costs a login at most this many index entries.
const MaxUnreadCount = 1000

// ResultReadChanged tells a member's sockets that their read marker of a
// channel moved (PROTOCOL §9 "Mentions and unread").
const ResultReadChanged = "read_changed"

// UnreadCounts is one member's state in one text channel.
type UnreadCounts struct {
	Unread   int `json:"unread"`
	Mentions int `json:"mentions"`
}

// countUnread counts, after marker, the others' messages and those of
// them that mention userID or everyone: both are ranges of a primary key
// (messages by (channel_id, seq); message_mentions by (channel_id,
// user_id, seq)), cut at MaxUnreadCount.
const countUnread = `SELECT
	(SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE channel_id = $1 AND seq > $2 AND sender_id <> $3 LIMIT $4) u),
	(SELECT COUNT(*) FROM (SELECT DISTINCT x.seq FROM message_mentions x JOIN messages m ON m.channel_id = x.channel_id AND m.seq = x.seq
		WHERE x.channel_id = $1 AND x.user_id IN ($3, '') AND x.seq > $2 AND m.sender_id <> $3 LIMIT $4) n)`

func (c *Community) counts(ctx context.Context, q queryer, channelID int64, userID string, marker int64) (UnreadCounts, error) {
	var n UnreadCounts
	err := q.QueryRowContext(ctx, countUnread, channelID, marker, userID, MaxUnreadCount).Scan(&n.Unread, &n.Mentions)
	if err != nil {
		return UnreadCounts{}, fmt.Errorf("community: count unread: %w", err)
	}
	return n, nil
}

// unreadAll is countUnread for every text channel of a community at
// once: one statement, however many channels.
const unreadAll = `SELECT c.id, COALESCE(r.seq, 0), c.last_seq, (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.channel_id = c.id),
	(SELECT COUNT(*) FROM (SELECT 1 FROM messages m WHERE m.channel_id = c.id AND m.seq > COALESCE(r.seq, 0) AND m.sender_id <> $2 LIMIT $3) u),
	(SELECT COUNT(*) FROM (SELECT DISTINCT x.seq FROM message_mentions x JOIN messages m ON m.channel_id = x.channel_id AND m.seq = x.seq
		WHERE x.channel_id = c.id AND x.user_id IN ($2, '') AND x.seq > COALESCE(r.seq, 0) AND m.sender_id <> $2 LIMIT $3) n)
	FROM channels c LEFT JOIN read_markers r ON r.channel_id = c.id AND r.user_id = $2
	WHERE c.community_id = $1 AND c.codec = 'text'`

// Unread is userID's counts in every text channel, by channel id.
func (c *Community) Unread(ctx context.Context, userID string) (map[int64]UnreadCounts, error) {
	if c.unread != nil {
		c.mu.Lock()
		text := c.textChannelsLocked()
		c.mu.Unlock()
		if counts, ok := c.unread.allRead(userID, text); ok {
			return counts, nil
		}
	}
	// Prepared once: every login runs it, and parsing it was a quarter of
	// a returning member's login.
	rows, err := c.svc.db.ReadQuery(ctx, unreadAll, c.ID, userID, MaxUnreadCount)
	if err != nil {
		return nil, fmt.Errorf("community: count unread: %w", err)
	}
	defer rows.Close()
	out := map[int64]UnreadCounts{}
	markers := map[int64]int64{}
	for rows.Next() {
		var id, marker, last, newest int64
		var n UnreadCounts
		if err := rows.Scan(&id, &marker, &last, &newest, &n.Unread, &n.Mentions); err != nil {
			return nil, fmt.Errorf("community: count unread: %w", err)
		}
		// Nothing unread means everything up to the channel's newest is
		// read or the user's own, as of the statement's snapshot: the
		// cache may take that as the marker, or a member who posted last
		// would go to the database at every login.
		if n.Unread == 0 {
			marker = max(marker, last, newest)
		}
		out[id], markers[id] = n, marker
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("community: count unread: %w", err)
	}
	c.unread.readFromStore(userID, markers)
	return out, nil
}

// TreeJSONFor is TreeJSONAs(m.Role) with m's unread and mention counts in
// each text channel's data, for the identification response.
func (c *Community) TreeJSONFor(ctx context.Context, m Member) (json.RawMessage, error) {
	counts, err := c.Unread(ctx, m.UserID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	c.writeChildren(&b, c.root, counts, m.Role)
	return b.Bytes(), nil
}

// writeTextData writes a text channel's data object: the codec's, with
// slow_mode when on, and counts' entry for the channel when given.
func writeTextData(b *bytes.Buffer, data []byte, ch *Channel, counts map[int64]UnreadCounts) {
	n, ok := counts[ch.ID]
	if ch.SlowMode == 0 && !ok {
		b.Write(data)
		return
	}
	b.Write(data[:len(data)-1])
	sep := len(data) > 2
	field := func(name string, v int) {
		if sep {
			b.WriteByte(',')
		}
		sep = true
		b.WriteString(`"` + name + `":`)
		b.WriteString(strconv.Itoa(v))
	}
	if ch.SlowMode > 0 {
		field("slow_mode", ch.SlowMode)
	}
	if ok {
		field("unread", n.Unread)
		field("mentions", n.Mentions)
	}
	b.WriteByte('}')
}

// startMarkers is startReadMarkers' statement, prepared once with a
// join's others.
const startMarkers = `INSERT INTO read_markers(channel_id, user_id, seq, message_id)
	SELECT c.id, $2,
		COALESCE((SELECT MAX(x.seq) FROM messages x WHERE x.channel_id = c.id), 0),
		(SELECT x.id FROM messages x WHERE x.channel_id = c.id ORDER BY x.seq DESC LIMIT 1)
	FROM channels c WHERE c.community_id = $1 AND c.codec = 'text'
	ON CONFLICT(channel_id, user_id) DO NOTHING
	RETURNING channel_id, seq`

// startReadMarkers puts a joining member's markers at each text channel's
// newest message: a new member starts with everything read. A channel
// made later has no marker, so everything in it is unread. It returns the
// markers it wrote, by channel id, for the unread cache: the login that
// completes the join then counts nothing in the database.
func (c *Community) startReadMarkers(ctx context.Context, tx *sql.Tx, userID string) (map[int64]int64, error) {
	rows, err := c.svc.db.Query(ctx, tx, startMarkers, c.ID, userID)
	if err != nil {
		return nil, fmt.Errorf("community: start read markers: %w", err)
	}
	defer rows.Close()
	markers := map[int64]int64{}
	for rows.Next() {
		var channel, seq int64
		if err := rows.Scan(&channel, &seq); err != nil {
			return nil, fmt.Errorf("community: start read markers: %w", err)
		}
		markers[channel] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("community: start read markers: %w", err)
	}
	return markers, nil
}

// markRead moves the caller's marker forward to a message of the channel;
// one older than the marker changes nothing. The result says where the
// marker stands and what is left unread after it, and the member's other
// sockets, on any node, hear the same as read_changed.
func markRead(ctx context.Context, call *Call) (*Result, error) {
	id, err := decodeMessageID(call)
	if err != nil {
		return nil, err
	}
	c, ch, m := call.Community, call.Channel, call.Member
	var out struct {
		MessageID string `json:"message_id"`
		UnreadCounts
	}
	var moved bool
	var marker int64
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorIn(ctx, tx, m, ch, "", "reading"); err != nil {
			return err
		}
		seq, err := seqOf(ctx, tx, ch, id)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO read_markers(channel_id, user_id, seq, message_id) VALUES($1, $2, $3, $4)
			ON CONFLICT(channel_id, user_id) DO UPDATE SET seq = excluded.seq, message_id = excluded.message_id
			WHERE read_markers.seq < excluded.seq`, ch.ID, m.UserID, seq, id[:])
		if err != nil {
			return fmt.Errorf("community: mark read: %w", err)
		}
		n, _ := res.RowsAffected()
		moved = n > 0
		var markerID []byte
		if err := tx.QueryRowContext(ctx, `SELECT seq, message_id FROM read_markers WHERE channel_id = $1 AND user_id = $2`,
			ch.ID, m.UserID).Scan(&marker, &markerID); err != nil {
			return fmt.Errorf("community: mark read: %w", err)
		}
		out.MessageID = id.String()
		if u, err := uuid.FromBytes(markerID); err == nil {
			out.MessageID = u.String()
		}
		out.UnreadCounts, err = c.counts(ctx, tx, ch.ID, m.UserID, marker)
		return err
	}, func() {
		if moved {
			c.unread.read(m.UserID, ch.ID, marker)
			c.publish(Event{Channel: ch.Ref(), Result: ResultReadChanged, Payload: &out, Only: m.UserID})
		}
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: the channel was deleted", ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &Result{Result: ResultReadChanged, Payload: &out}, nil
}
