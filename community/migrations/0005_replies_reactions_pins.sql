-- Replies, reactions and pins (issue 13). A reply names its message by id
-- on the wire; reply_seq is where that message was, so a page finds the
-- quoted line with a join on the primary key, and a join that finds
-- nothing says the message was deleted since.
ALTER TABLE messages ADD COLUMN reply_to BLOB;
ALTER TABLE messages ADD COLUMN reply_seq INTEGER;

-- One row per member, message and emoji. Deleting a message deletes its
-- reactions and its pin (the foreign keys, and deleteMessage explicitly).
CREATE TABLE reactions (
	channel_id INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	emoji      TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	time       INTEGER NOT NULL,
	PRIMARY KEY (channel_id, seq, emoji, user_id),
	FOREIGN KEY (channel_id, seq) REFERENCES messages(channel_id, seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE pins (
	channel_id INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	pinned_by  TEXT NOT NULL,
	pinned_at  INTEGER NOT NULL,
	PRIMARY KEY (channel_id, seq),
	FOREIGN KEY (channel_id, seq) REFERENCES messages(channel_id, seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX pins_by_time ON pins(channel_id, pinned_at);
