-- A channel's messages are ordered by seq, which the database assigns
-- inside the sending transaction, not by the id, which one process's clock
-- makes: with several nodes writing one channel only the database knows
-- the order. channels.last_seq is the newest seq handed out (on SQLite, a
-- floor under it; community/text.go says why). On PostgreSQL its bump
-- locks the channel's row until the commit, so seqs are also assigned in
-- commit order. The id (a UUIDv7) stays the message's name on the wire;
-- seq is the paging key, and a deleted message's seq is never reused.
-- From now on an id carries its seq (community/ids.go), so the key
-- (channel_id, seq) finds a message by id too, with no second index.
ALTER TABLE channels ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
-- The id of the message last_seq numbered, kept on PostgreSQL only (under
-- the same row lock), so that a node whose clock is behind still makes an
-- id that sorts after the last one. SQLite reads the newest message.
ALTER TABLE channels ADD COLUMN last_id BLOB;

CREATE TABLE messages_by_seq (
	channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	id         BLOB NOT NULL,
	sender_id  TEXT NOT NULL,
	body       TEXT NOT NULL,
	send_time  INTEGER NOT NULL,
	edited_at  INTEGER,
	PRIMARY KEY (channel_id, seq)
) STRICT, WITHOUT ROWID;

-- Until now the id was the order: number the stored messages by it.
INSERT INTO messages_by_seq(channel_id, seq, id, sender_id, body, send_time, edited_at)
	SELECT channel_id, ROW_NUMBER() OVER (PARTITION BY channel_id ORDER BY id), id, sender_id, body, send_time, edited_at
	FROM messages;
DROP TABLE messages;
ALTER TABLE messages_by_seq RENAME TO messages;

-- The ids made before, which do not carry their seq. Nothing is added to
-- it again; a deletion takes its row with the message's.
CREATE TABLE message_ids (
	channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
	id         BLOB NOT NULL,
	seq        INTEGER NOT NULL,
	PRIMARY KEY (channel_id, id)
) STRICT, WITHOUT ROWID;
INSERT INTO message_ids(channel_id, id, seq) SELECT channel_id, id, seq FROM messages;

UPDATE channels SET last_seq = COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.channel_id = channels.id), 0),
	last_id = (SELECT m.id FROM messages m WHERE m.channel_id = channels.id ORDER BY m.seq DESC LIMIT 1);
