-- Outbound federation: how reachable each remote server is, so that the transaction sender
-- backs off from a dead server and keeps backing off across a restart.
--   retry_last_ts: when the last attempt failed (ms); 0 when the server is healthy
--   retry_interval: how long to wait after retry_last_ts before trying again (ms); 0 when
--     healthy, else doubling from 5 s up to 1 h
--   failure_ts: when the current run of failures started (ms), NULL when healthy
CREATE TABLE destinations (
    destination TEXT NOT NULL PRIMARY KEY,
    retry_last_ts BIGINT NOT NULL DEFAULT 0,
    retry_interval BIGINT NOT NULL DEFAULT 0,
    failure_ts BIGINT
);
