-- Private channels (PROTOCOL §9 "Private channels"): per channel and role,
-- each of view, post and connect is allowed (1), denied (-1) or inherited
-- (0). A role with no row inherits all three; a row of three zeros is
-- never stored.
CREATE TABLE channel_overrides (
	channel_id  INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
	role        TEXT NOT NULL,
	can_view    INTEGER NOT NULL DEFAULT 0,
	can_post    INTEGER NOT NULL DEFAULT 0,
	can_connect INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (channel_id, role)
) STRICT;
