-- Sync filters uploaded with POST /user/{userId}/filter. IDs are small integers counted
-- per user (returned to clients as strings); the JSON is kept as uploaded.
CREATE TABLE user_filters (
    user_id TEXT NOT NULL,
    filter_id BIGINT NOT NULL,
    filter_json TEXT NOT NULL,
    UNIQUE (user_id, filter_id)
);
