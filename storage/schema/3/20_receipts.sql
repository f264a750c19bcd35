-- Read receipts: the latest receipt per (room, receipt type, user, thread). `thread_id`
-- is '' for an unthreaded receipt, 'main' or a thread root's event ID otherwise (NOT NULL
-- so that the unique key holds). `event_stream_ordering` is the stream ordering of the
-- receipted event (read positions for unread counts); `stream_id` is the receipt
-- stream position of the last change; `data` is the receipt's JSON (`ts`).
CREATE TABLE receipts (
    stream_id BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL DEFAULT '',
    event_id TEXT NOT NULL,
    event_stream_ordering BIGINT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (room_id, receipt_type, user_id, thread_id)
);
-- /sync: "receipts in these rooms changed after stream id X".
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_id);
-- read positions of one user in some rooms.
CREATE INDEX receipts_user_room ON receipts (user_id, room_id);
