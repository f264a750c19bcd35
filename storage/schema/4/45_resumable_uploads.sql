-- Resumable (tus 1.0) uploads in progress under /_matrix/client/unstable/io.axon/upload/resumable.
-- The bytes live in a temporary file named after `upload_id`; `content_uri` is set once the
-- last byte arrived and the file went into the media repository. Rows past `expires_ms` are
-- dropped with their file by a background job.
CREATE TABLE resumable_uploads (
    upload_id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    upload_length BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL,
    filename TEXT,
    content_type TEXT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    content_uri TEXT
);

CREATE INDEX resumable_uploads_expires ON resumable_uploads (expires_ms);
