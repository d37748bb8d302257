-- Files and images (PROTOCOL §9 "Files and images"). The bytes live on the
-- node's disk under DATA/files/<hh>/<sha256>, stored once however many
-- rows name them; these tables say who uploaded what and where it is used.

-- An upload ticket: single use (claimed_at is set by the PUT that uses it),
-- valid until expires_at, for one member of one community.
CREATE TABLE uploads (
	id           TEXT PRIMARY KEY,
	community_id TEXT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
	user_id      TEXT NOT NULL,
	name         TEXT NOT NULL,
	size         INTEGER NOT NULL,
	claimed_type TEXT NOT NULL,
	expires_at   INTEGER NOT NULL,
	claimed_at   INTEGER
) STRICT;
CREATE INDEX uploads_by_member ON uploads(community_id, user_id);

-- A stored file. The id (128 random bits, hex) is the capability that
-- downloads it. last_used is when it was uploaded, attached or released;
-- the sweep deletes a file no message or avatar uses once last_used is
-- an hour old.
CREATE TABLE files (
	id           TEXT PRIMARY KEY,
	community_id TEXT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
	uploader_id  TEXT NOT NULL,
	sha256       TEXT NOT NULL,
	name         TEXT NOT NULL,
	size         INTEGER NOT NULL,
	type         TEXT NOT NULL,
	width        INTEGER,
	height       INTEGER,
	created_at   INTEGER NOT NULL,
	last_used    INTEGER NOT NULL
) STRICT;
CREATE INDEX files_by_uploader ON files(community_id, uploader_id, sha256);
CREATE INDEX files_by_hash ON files(sha256);
CREATE INDEX files_by_use ON files(last_used);

-- A message's attachments, in the order sent. Deleting the message (or its
-- channel) deletes these rows; the key to files keeps the sweep from
-- deleting a file a message still uses.
CREATE TABLE message_files (
	channel_id INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	position   INTEGER NOT NULL,
	file_id    TEXT NOT NULL REFERENCES files(id),
	PRIMARY KEY (channel_id, seq, position),
	FOREIGN KEY (channel_id, seq) REFERENCES messages(channel_id, seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX message_files_by_file ON message_files(file_id);

-- A member's profile in this community (PROTOCOL §9 "Display names and
-- avatars"); NULL means not set.
ALTER TABLE members ADD COLUMN display_name TEXT;
ALTER TABLE members ADD COLUMN avatar_file_id TEXT REFERENCES files(id);
CREATE INDEX members_by_avatar ON members(avatar_file_id);
