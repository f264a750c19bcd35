-- Admin roles below full admin ('moderator'); NULL for everyone else.
ALTER TABLE users ADD COLUMN admin_role TEXT;

-- Append-only record of admin actions and security-relevant events (docs/admin.md).
-- `details` is a JSON object.
CREATE TABLE audit_log (
    id BIGINT NOT NULL PRIMARY KEY,
    ts BIGINT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT,
    target TEXT,
    ip TEXT,
    user_agent TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
