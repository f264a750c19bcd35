-- The device-list stream: one row per (position, user, device) whose device list changed
-- (device created, deleted or renamed). /sync reads the users with a stream_id in
-- (since, now] to fill `device_lists.changed`.
CREATE TABLE device_lists_stream (
    stream_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL
);
CREATE INDEX device_lists_stream_id ON device_lists_stream (stream_id);
CREATE INDEX device_lists_stream_user ON device_lists_stream (user_id, stream_id);

-- Incremental /sync asks which memberships changed in a range of the room stream (users
-- who started or stopped sharing a room with the syncing user).
CREATE INDEX room_memberships_stream ON room_memberships (stream_ordering);
