-- Server mutes, by voice channel and user. A mute lives here rather than
-- with the in-memory voice state so that leaving the call, reconnecting,
-- being kicked and rejoining, or a restart does not lift it; it is applied
-- again whenever the user enters that channel's call.
CREATE TABLE server_mutes (
	channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL,
	muted_by   TEXT NOT NULL,
	muted_at   INTEGER NOT NULL,
	PRIMARY KEY (channel_id, user_id)
) STRICT, WITHOUT ROWID;
