-- Mentions, read markers, slow mode and timeouts (PROTOCOL §9 "Mentions
-- and unread", "Slow mode and timeouts").

-- Who a message mentions. user_id '' stands for @everyone: no member has
-- the empty id. The key puts one member's mentions of a channel in seq
-- order, so "mentions after my marker" is a range of the primary key.
CREATE TABLE message_mentions (
	channel_id INTEGER NOT NULL,
	user_id    TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	PRIMARY KEY (channel_id, user_id, seq),
	FOREIGN KEY (channel_id, seq) REFERENCES messages(channel_id, seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
-- The cascade above looks a deleted message's mentions up by (channel, seq).
CREATE INDEX message_mentions_by_seq ON message_mentions(channel_id, seq);

-- A member's read marker in a text channel: the seq (and id) of the
-- newest message they have read. No row is "nothing read".
CREATE TABLE read_markers (
	channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	message_id BLOB,
	PRIMARY KEY (channel_id, user_id)
) STRICT, WITHOUT ROWID;

-- Members who were here before unread counts existed have read everything.
INSERT INTO read_markers(channel_id, user_id, seq, message_id)
	SELECT c.id, m.user_id,
		COALESCE((SELECT MAX(x.seq) FROM messages x WHERE x.channel_id = c.id), 0),
		(SELECT x.id FROM messages x WHERE x.channel_id = c.id ORDER BY x.seq DESC LIMIT 1)
	FROM members m JOIN channels c ON c.community_id = m.community_id
	WHERE c.codec = 'text';

-- Seconds a member waits between two messages in the channel; 0 is off.
ALTER TABLE channels ADD COLUMN slow_mode INTEGER NOT NULL DEFAULT 0;

-- When a member last sent in a channel with slow mode, kept only while
-- slow mode is on there, so a send elsewhere writes nothing more.
CREATE TABLE slow_mode_sends (
	channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL,
	sent_at    INTEGER NOT NULL,
	PRIMARY KEY (channel_id, user_id)
) STRICT, WITHOUT ROWID;

-- Unix ms until which the member may not post or speak; NULL: never.
ALTER TABLE members ADD COLUMN timeout_until INTEGER;
