-- The relation index (m.relates_to with a rel_type): one row per child event in a
-- room's history, written in the event-persisting transaction and deleted when the
-- child is redacted. Serves /relations, /threads and the bundled aggregations.
CREATE TABLE event_relations (
    event_id TEXT NOT NULL PRIMARY KEY,
    relates_to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    -- m.annotation's key
    aggregation_key TEXT,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL
);
CREATE INDEX event_relations_parent ON event_relations (relates_to_id, stream_ordering);
CREATE INDEX event_relations_room_type ON event_relations (room_id, rel_type, stream_ordering);
