-- Full-text indexing leaves the commit of a message (PROTOCOL §9
-- "Search"): FTS5's insert was most of what storing a message cost. The
-- insert trigger now only gives the message its rid and notes the rid in
-- search_pending; the search indexer (community/searchindex.go) moves
-- pending rids into messages_fts in batches, inside an ordinary write of
-- the writer, and a search first indexes whatever is pending, so a search
-- still finds every acknowledged message.
--
-- An edit or deletion touches the FTS index only for a rid that is in it:
-- an FTS5 'delete' of a row it never held would corrupt it. A pending rid
-- is indexed later with the body it has then, or dropped with its message.
CREATE TABLE search_pending (rid INTEGER PRIMARY KEY) STRICT;

-- The FTS table's external content is what it holds: the pending rids are
-- not in it yet, so FTS5's integrity check holds at every commit.
DROP VIEW message_text;
CREATE VIEW message_text AS
	SELECT s.rid AS rid, m.body AS body
	FROM message_search s JOIN messages m ON m.channel_id = s.channel_id AND m.seq = s.seq
	WHERE NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.rid = s.rid);

DROP TRIGGER messages_search_insert;
DROP TRIGGER messages_search_update;
DROP TRIGGER messages_search_delete;

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
	INSERT INTO message_search(channel_id, seq) VALUES(new.channel_id, new.seq);
	INSERT INTO search_pending(rid) VALUES(last_insert_rowid());
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
	INSERT INTO messages_fts(messages_fts, rowid, body)
		SELECT 'delete', s.rid, old.body FROM message_search s
		WHERE s.channel_id = old.channel_id AND s.seq = old.seq
			AND NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.rid = s.rid);
	INSERT INTO messages_fts(rowid, body)
		SELECT s.rid, new.body FROM message_search s
		WHERE s.channel_id = new.channel_id AND s.seq = new.seq
			AND NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.rid = s.rid);
END;
-- Also run by the cascade when a channel or community is deleted.
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
	INSERT INTO messages_fts(messages_fts, rowid, body)
		SELECT 'delete', s.rid, old.body FROM message_search s
		WHERE s.channel_id = old.channel_id AND s.seq = old.seq
			AND NOT EXISTS (SELECT 1 FROM search_pending p WHERE p.rid = s.rid);
	DELETE FROM search_pending
		WHERE rid = (SELECT rid FROM message_search WHERE channel_id = old.channel_id AND seq = old.seq);
	DELETE FROM message_search WHERE channel_id = old.channel_id AND seq = old.seq;
END;
