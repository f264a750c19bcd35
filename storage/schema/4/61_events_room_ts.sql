-- /timestamp_to_event looks events up by room and origin_server_ts.
CREATE INDEX events_room_ts ON events (room_id, origin_server_ts);
