-- Extended profile fields (spec v1.16, "custom profile fields"): one row per key other
-- than `displayname` and `avatar_url`, which stay in `profiles`. `value` is JSON text.
CREATE TABLE profile_fields (
    user_id TEXT NOT NULL,
    field_name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (user_id, field_name)
);

-- The user directory's search index: lower-cased tokens of each local user's localpart
-- and display name. kind 0 = the whole localpart, 1 = the whole display name, 2 = one
-- word of either. Searches are prefix range scans on `token` (byte order: SQLite BINARY,
-- PostgreSQL databases are created with LC_COLLATE 'C', as for Synapse).
CREATE TABLE user_directory_search (
    user_id TEXT NOT NULL,
    token TEXT NOT NULL,
    kind SMALLINT NOT NULL,
    PRIMARY KEY (user_id, token)
);
CREATE INDEX user_directory_search_token ON user_directory_search (token);
