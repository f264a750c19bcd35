-- Reports about users (POST /users/{userId}/report, spec v1.13), like event_reports.
CREATE TABLE user_reports (
    id BIGINT NOT NULL PRIMARY KEY,
    received_ts BIGINT NOT NULL,
    target_user_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX user_reports_target ON user_reports (target_user_id);

-- Users deactivated with `erase: true`: their events are served redacted to users who
-- were not in the room when they were sent.
CREATE TABLE erased_users (
    user_id TEXT NOT NULL PRIMARY KEY,
    erased_ts BIGINT NOT NULL
);
