-- Full-text search of text messages (PROTOCOL §9 "Search"), SQLite's half;
-- 0006_search.postgres.sql is PostgreSQL's (internal/db Migrate picks one).
--
-- FTS5 needs an integer rowid for each document, and messages is keyed by
-- (channel_id, seq) WITHOUT ROWID. message_search gives every message one:
-- rid, handed out in storage order, so a search reads the index newest
-- first by rowid alone and pages with rowid < x. Only the two integers
-- live here; the body stays in messages, which the FTS table reads through
-- message_text (its external content), and secure-delete keeps an edited
-- or deleted message's old words out of the index at once.
CREATE TABLE message_search (
	rid        INTEGER PRIMARY KEY,
	channel_id INTEGER NOT NULL,
	seq        INTEGER NOT NULL
) STRICT;
-- The edit and delete triggers find a message's rid by its key.
CREATE UNIQUE INDEX message_search_by_message ON message_search(channel_id, seq);

CREATE VIEW message_text AS
	SELECT s.rid AS rid, m.body AS body
	FROM message_search s JOIN messages m ON m.channel_id = s.channel_id AND m.seq = s.seq;

-- columnsize=0: results are ordered by rid, never ranked, so the per-row
-- sizes bm25 would need are one B-tree insert per message for nothing.
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='message_text', content_rowid='rid',
	tokenize='unicode61 remove_diacritics 2', columnsize=0);
INSERT INTO messages_fts(messages_fts, rank) VALUES('secure-delete', 1);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
	INSERT INTO message_search(channel_id, seq) VALUES(new.channel_id, new.seq);
	INSERT INTO messages_fts(rowid, body) VALUES(last_insert_rowid(), new.body);
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
	INSERT INTO messages_fts(messages_fts, rowid, body)
		SELECT 'delete', rid, old.body FROM message_search WHERE channel_id = old.channel_id AND seq = old.seq;
	INSERT INTO messages_fts(rowid, body)
		SELECT rid, new.body FROM message_search WHERE channel_id = new.channel_id AND seq = new.seq;
END;
-- Also run by the cascade when a channel or community is deleted.
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
	INSERT INTO messages_fts(messages_fts, rowid, body)
		SELECT 'delete', rid, old.body FROM message_search WHERE channel_id = old.channel_id AND seq = old.seq;
	DELETE FROM message_search WHERE channel_id = old.channel_id AND seq = old.seq;
END;

-- The messages stored before, oldest first, so rid order is time order.
INSERT INTO message_search(channel_id, seq) SELECT channel_id, seq FROM messages ORDER BY send_time, channel_id, seq;
INSERT INTO messages_fts(messages_fts) VALUES('rebuild');
