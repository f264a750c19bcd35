-- The cache of remote users' device lists and cross-signing keys, filled by a resync
-- (`GET /_matrix/federation/v1/user/devices/{userId}`) and by `m.device_list_update` /
-- `m.signing_key_update` EDUs. Kept only for users sharing a room with a local user.

-- One row per cached remote user: the origin's stream_id we are current at.
CREATE TABLE remote_device_lists (
    user_id TEXT NOT NULL PRIMARY KEY,
    stream_id BIGINT NOT NULL,
    master_key TEXT,
    self_signing_key TEXT
);

CREATE TABLE remote_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    key_json TEXT,
    PRIMARY KEY (user_id, device_id)
);
