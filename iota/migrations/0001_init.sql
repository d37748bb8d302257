-- Accounts of this Iota: only public keys, never a private key.
CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	public_key BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	-- One counter per user for every change to their list or settings.
	version    INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Registration tokens; only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
	id          TEXT PRIMARY KEY,
	secret_hash BLOB NOT NULL UNIQUE,
	max_uses    INTEGER NOT NULL,
	uses        INTEGER NOT NULL DEFAULT 0,
	expires_at  INTEGER NOT NULL,
	revoked     INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL
) STRICT;

-- Community list entries, sealed by the client: the server stores the
-- strings exactly as sent and cannot read them.
CREATE TABLE entries (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	address    TEXT NOT NULL,
	title      TEXT NOT NULL,
	position   TEXT NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX entries_by_user ON entries(user_id, seq);

-- Opaque settings blobs, by name.
CREATE TABLE settings (
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	payload    TEXT NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, name)
) STRICT;
