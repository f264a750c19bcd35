-- Presence of local users, and the send-to-device inboxes.

-- One row per user whose presence was ever set. `stream_id` is the presence-stream
-- position of the row's last change that clients must hear about; /sync reads the rows
-- with a stream_id in (since, now].
CREATE TABLE presence (
    user_id TEXT NOT NULL PRIMARY KEY,
    state TEXT NOT NULL,
    status_msg TEXT,
    last_active_ts BIGINT NOT NULL DEFAULT 0,
    last_user_sync_ts BIGINT NOT NULL DEFAULT 0,
    currently_active SMALLINT NOT NULL DEFAULT 0,
    stream_id BIGINT NOT NULL
);
CREATE INDEX presence_stream ON presence (stream_id);
-- The timeout loop only looks at users who are not offline.
CREATE INDEX presence_state ON presence (state);

-- Pending to-device messages, per target device, until the device acknowledges them by
-- syncing past their stream_id. At most one message per device and stream_id (one
-- sendToDevice request uses one stream_id and sends each device one message).
CREATE TABLE device_inbox (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    message_json TEXT NOT NULL
);
CREATE UNIQUE INDEX device_inbox_user_device_stream ON device_inbox (user_id, device_id, stream_id);

-- sendToDevice idempotency: a (sender, sender's device, txn_id) is delivered once.
CREATE TABLE to_device_txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    UNIQUE (user_id, device_id, txn_id)
);
