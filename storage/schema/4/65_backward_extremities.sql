-- The backward extremities of each room's history: events that events of the history
-- (not outliers) name as prev events but that we do not hold there (missing, or held
-- only as outliers). Holes in the history start at them: backfill asks for them when
-- /messages pages back to where they belong. Kept by the event-persisting transaction.
CREATE TABLE event_backward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    UNIQUE (room_id, event_id)
);

INSERT INTO event_backward_extremities (room_id, event_id)
SELECT DISTINCT g.room_id, g.prev_event_id FROM event_edges g
JOIN events e ON e.event_id = g.event_id AND e.outlier = 0
WHERE NOT EXISTS (SELECT 1 FROM events p WHERE p.event_id = g.prev_event_id
                  AND p.outlier = 0);
