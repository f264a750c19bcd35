-- URL previews (`/media/preview_url`): the OpenGraph answer for a URL, kept until
-- `expires_ms`. `og` is the JSON object returned to clients.
CREATE TABLE url_previews (
    url TEXT NOT NULL,
    fetched_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    og TEXT NOT NULL,
    PRIMARY KEY (url, fetched_ms)
);

CREATE INDEX url_previews_expires ON url_previews (expires_ms);
