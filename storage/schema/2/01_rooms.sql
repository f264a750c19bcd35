-- Rooms and their events: the event graph, state snapshots, current state, membership.

CREATE TABLE rooms (
    room_id TEXT NOT NULL PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT,
    is_public SMALLINT NOT NULL DEFAULT 0,
    created_ts BIGINT NOT NULL
);

-- Every event we hold. `stream_ordering` is the global room-event stream position (the
-- order this server persisted events in); `json` is the full PDU as signed.
CREATE TABLE events (
    stream_ordering BIGINT NOT NULL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    depth BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    received_ts BIGINT NOT NULL,
    json TEXT NOT NULL,
    -- local-only facts: txn_id, device_id, token_id (not part of the PDU)
    internal_metadata TEXT NOT NULL DEFAULT '{}',
    outlier SMALLINT NOT NULL DEFAULT 0,
    rejected_reason TEXT,
    -- the event ID this event redacts (m.room.redaction)
    redacts TEXT
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
CREATE INDEX events_room_topo ON events (room_id, depth, stream_ordering);
CREATE INDEX events_redacts ON events (redacts);

CREATE TABLE event_edges (
    event_id TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    UNIQUE (event_id, prev_event_id)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth (
    event_id TEXT NOT NULL,
    auth_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    UNIQUE (event_id, auth_id)
);

CREATE TABLE event_forward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    UNIQUE (room_id, event_id)
);

-- State snapshots as deltas: a group holds the (type, state_key) -> event_id rows that
-- differ from `prev_group`; `chain_length` bounds how many deltas a read merges.
CREATE TABLE state_groups (
    id BIGINT NOT NULL PRIMARY KEY,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    prev_group BIGINT,
    chain_length INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE state_groups_state (
    state_group BIGINT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    -- NULL in a delta means "removed" (possible after state resolution)
    event_id TEXT
);
CREATE UNIQUE INDEX state_groups_state_key ON state_groups_state (state_group, type, state_key);

-- The state group of the room state AFTER each event (for state events: including it).
CREATE TABLE event_to_state_groups (
    event_id TEXT NOT NULL PRIMARY KEY,
    state_group BIGINT NOT NULL
);

CREATE TABLE current_state_events (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    -- for m.room.member rows, the membership (fast member counts and lists)
    membership TEXT,
    UNIQUE (room_id, type, state_key)
);
CREATE INDEX current_state_members ON current_state_events (room_id, membership);

-- Every membership event, for history and per-user lookups.
CREATE TABLE room_memberships (
    event_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    room_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    displayname TEXT,
    avatar_url TEXT
);
CREATE INDEX room_memberships_user_room ON room_memberships (user_id, room_id);

-- Current membership of local users: "which rooms is this user in" without a scan.
CREATE TABLE local_current_membership (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    forgotten SMALLINT NOT NULL DEFAULT 0,
    UNIQUE (user_id, room_id)
);
CREATE INDEX local_current_membership_room ON local_current_membership (room_id);

-- Transaction-ID idempotency: the same (user, device, txn_id) always maps to one event.
CREATE TABLE event_txn_ids (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    UNIQUE (user_id, device_id, txn_id)
);

CREATE TABLE room_aliases (
    room_alias TEXT NOT NULL PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

CREATE TABLE event_reports (
    id BIGINT NOT NULL PRIMARY KEY,
    received_ts BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    reason TEXT,
    content TEXT
);
