-- Remote users' presence (received in m.presence EDUs) and OpenID tokens.

-- Remote users' presence lives in the same table and stream as local users' (so /sync
-- reads one stream). For remote rows `last_user_sync_ts` is the time of the last update
-- from their server; only that federation timeout applies to them, not the local timers.
ALTER TABLE presence ADD COLUMN remote SMALLINT NOT NULL DEFAULT 0;

-- OpenID tokens (`POST /user/{userId}/openid/request_token`), stored only as SHA-256
-- hashes, checked by other servers' integrations through `/openid/userinfo`.
CREATE TABLE open_id_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    valid_until_ms BIGINT NOT NULL
);
CREATE INDEX open_id_tokens_valid_until ON open_id_tokens (valid_until_ms);
