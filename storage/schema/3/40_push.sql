-- Push rules and the notifications they produce.

-- A user's own push rules. Within (user_id, kind) a higher `priority` is more important.
-- `conditions` and `actions` are JSON arrays; `pattern` is set for content rules only.
CREATE TABLE push_rules (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    priority BIGINT NOT NULL,
    conditions TEXT NOT NULL,
    actions TEXT NOT NULL,
    pattern TEXT,
    enabled SMALLINT NOT NULL DEFAULT 1,
    UNIQUE (user_id, kind, rule_id)
);

-- A user's changes to server-default rules (`.m.rule.*`): NULL means unchanged.
CREATE TABLE push_rules_default_overrides (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    enabled SMALLINT,
    actions TEXT,
    UNIQUE (user_id, kind, rule_id)
);

-- The push-rules stream: one row per change of a user's rules (sync's `m.push_rules`).
CREATE TABLE push_rules_stream (
    stream_id BIGINT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL
);
CREATE INDEX push_rules_stream_user ON push_rules_stream (user_id, stream_id);

-- Who an event notifies: one row per event that notifies anyone, written with the event.
-- `recipients` is a JSON object {user_id: 1 (notify) or 2 (notify and highlight)}: a
-- message in a room of N members would otherwise write N-1 rows in the event's own
-- transaction. `thread_id` is 'main' or the thread root's event ID. Unread counts read
-- the rows after the user's read position (recent ones come from memory instead).
CREATE TABLE event_push_actions (
    room_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    recipients TEXT NOT NULL,
    PRIMARY KEY (room_id, stream_ordering)
);
