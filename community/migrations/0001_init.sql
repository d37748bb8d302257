-- A direct community. Its private key lives in a 0600 file in the data
-- directory, not here.
CREATE TABLE communities (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	public_key BLOB NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

-- Members: the seed's "joined users' UUIDs and a shared secret for each";
-- the secret is derived from public_key on demand, never stored.
CREATE TABLE members (
	community_id TEXT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
	user_id      TEXT NOT NULL,
	public_key   BLOB NOT NULL,
	role         TEXT NOT NULL,
	banned       INTEGER NOT NULL DEFAULT 0,
	joined_at    INTEGER NOT NULL,
	PRIMARY KEY (community_id, user_id)
) STRICT, WITHOUT ROWID;

-- Invites; only the SHA-256 of the secret is kept.
CREATE TABLE invites (
	id           TEXT PRIMARY KEY,
	community_id TEXT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
	secret_hash  BLOB NOT NULL UNIQUE,
	max_uses     INTEGER NOT NULL,
	uses         INTEGER NOT NULL DEFAULT 0,
	expires_at   INTEGER NOT NULL,
	user_id      TEXT,
	role         TEXT NOT NULL,
	created_by   TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	revoked      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX invites_by_community ON invites(community_id, created_at);

-- The interactables tree. Siblings are ordered by sort_key.
CREATE TABLE channels (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	community_id TEXT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
	parent_id    INTEGER REFERENCES channels(id),
	name         TEXT NOT NULL,
	codec        TEXT NOT NULL,
	sort_key     INTEGER NOT NULL
) STRICT;
CREATE INDEX channels_by_community ON channels(community_id, parent_id, sort_key);

-- Text messages. The id is a UUIDv7 (16 bytes), strictly increasing within
-- a channel, so a page of history is a range scan of the primary key.
CREATE TABLE messages (
	channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
	id         BLOB NOT NULL,
	sender_id  TEXT NOT NULL,
	body       TEXT NOT NULL,
	send_time  INTEGER NOT NULL,
	edited_at  INTEGER,
	PRIMARY KEY (channel_id, id)
) STRICT, WITHOUT ROWID;

-- Per-channel state for custom codecs.
CREATE TABLE channel_state (
	channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
	key        TEXT NOT NULL,
	value      TEXT NOT NULL,
	PRIMARY KEY (channel_id, key)
) STRICT, WITHOUT ROWID;

-- Who changed what (messages excluded, except deletions of others').
CREATE TABLE audit_log (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	community_id TEXT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
	actor_id     TEXT NOT NULL,
	action       TEXT NOT NULL,
	target       TEXT NOT NULL,
	time         INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_by_community ON audit_log(community_id, id);
