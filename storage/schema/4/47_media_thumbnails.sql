-- Thumbnails of local and cached remote media (`server_name` tells them apart). The bytes
-- live in the media storage under `sha256`, like any media content.
CREATE TABLE media_thumbnails (
    server_name TEXT NOT NULL,
    media_id TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    method TEXT NOT NULL,
    content_type TEXT NOT NULL,
    animated SMALLINT NOT NULL,
    length BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (server_name, media_id, width, height, method, content_type, animated)
);
