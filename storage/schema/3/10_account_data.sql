-- Account data and room tags. Both share ONE stream (the sync token's `account_data`
-- position): `account_data.stream_id` and `room_tags_revisions.stream_id` come from the
-- same counter, which restarts above the maximum of the two.

-- Global (room_id = '') and per-room account data: the latest content per
-- (user, room, type). `stream_id` is the account-data stream position of its last write.
CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL DEFAULT '',
    account_data_type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    UNIQUE (user_id, room_id, account_data_type)
);
-- /sync: "account data of this user changed after stream id X".
CREATE INDEX account_data_user_stream ON account_data (user_id, stream_id);

-- Room tags: one row per (user, room, tag); `content` is the tag's JSON (`order`).
CREATE TABLE room_tags (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    UNIQUE (user_id, room_id, tag)
);

-- The stream position of the last change to a user's tags of a room (adds AND removals,
-- which leave no row in room_tags): /sync sends the room's whole `m.tag` event again.
CREATE TABLE room_tags_revisions (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    UNIQUE (user_id, room_id)
);
CREATE INDEX room_tags_revisions_user_stream ON room_tags_revisions (user_id, stream_id);
