-- The media repository (issue 11): local uploads, the cache of remote media.
--
-- Content is stored once per SHA-256 in the storage backend (`sha256` is the file's
-- key); each upload still has its own row and media ID. A row whose `sha256` is NULL is
-- an async upload (`POST /_matrix/media/v1/create`) whose content has not arrived yet; it
-- expires at `unused_expires_at`.
CREATE TABLE local_media_repository (
    media_id TEXT NOT NULL PRIMARY KEY,
    media_type TEXT,
    media_length BIGINT,
    created_ts BIGINT NOT NULL,
    upload_name TEXT,
    user_id TEXT NOT NULL,
    sha256 TEXT,
    unused_expires_at BIGINT,
    last_access_ts BIGINT,
    -- uploaded while `enable_authenticated_media` was on: never served unauthenticated
    authenticated SMALLINT NOT NULL DEFAULT 0,
    quarantined_by TEXT
);
CREATE INDEX local_media_repository_user ON local_media_repository (user_id, created_ts);
CREATE INDEX local_media_repository_sha256 ON local_media_repository (sha256);
CREATE INDEX local_media_repository_pending ON local_media_repository (unused_expires_at);
CREATE INDEX local_media_repository_access ON local_media_repository (last_access_ts);

CREATE TABLE remote_media_cache (
    media_origin TEXT NOT NULL,
    media_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    media_length BIGINT NOT NULL,
    created_ts BIGINT NOT NULL,
    upload_name TEXT,
    sha256 TEXT NOT NULL,
    last_access_ts BIGINT NOT NULL,
    authenticated SMALLINT NOT NULL DEFAULT 0,
    quarantined_by TEXT,
    PRIMARY KEY (media_origin, media_id)
);
CREATE INDEX remote_media_cache_sha256 ON remote_media_cache (sha256);
CREATE INDEX remote_media_cache_access ON remote_media_cache (last_access_ts);
