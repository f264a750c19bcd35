-- Which UIA session holds a use of which registration token. A claim is made when the
-- m.login.registration_token stage passes (the token's `pending` goes up by one) and is
-- settled once: marked used when registration succeeds (`pending` down, `completed` up),
-- or deleted when its session expires unfinished (`pending` down), so neither counter can
-- drift or be counted twice.
CREATE TABLE registration_token_claims (
    session_id TEXT NOT NULL PRIMARY KEY,
    token TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    used SMALLINT NOT NULL DEFAULT 0
);
CREATE INDEX registration_token_claims_token ON registration_token_claims (token);
