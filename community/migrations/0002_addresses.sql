-- Where each community is reached. The seed's address is host:port with no
-- path, so each community after the first needs a port of its own.
-- listen_addr: "" shares iotad's main listener (only the first community);
-- public_addr: what invites name ("" derives it from the serve flags);
-- served_addr: what invites named when iotad serve last ran, so that the
-- CLI prints the same invite text as the running server.
ALTER TABLE communities ADD COLUMN listen_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE communities ADD COLUMN public_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE communities ADD COLUMN served_addr TEXT NOT NULL DEFAULT '';
