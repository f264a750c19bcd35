-- Remote servers' signing keys, fetched from /_matrix/key/v2/server directly or through a
-- notary, and already verified (self-signature, server_name, 7-day cap). One row per key;
-- a newer response replaces the row unless it is valid for less long.
--   verify_key: unpadded base64 of the ed25519 public key
--   valid_until_ts: signatures made before this time verify with the key (for an
--     old_verify_keys entry: its expired_ts)
--   expired_ts: set for keys announced in old_verify_keys, NULL for current keys
--   from_server: the server that answered (the origin itself or a notary)
--   key_json: the whole response as received (canonical JSON); a notary serves it again
CREATE TABLE server_signature_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    verify_key TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    expired_ts BIGINT,
    ts_added BIGINT NOT NULL,
    from_server TEXT NOT NULL,
    key_json TEXT NOT NULL,
    UNIQUE (server_name, key_id)
);
