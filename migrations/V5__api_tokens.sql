-- API tokens: how producers (the event API, OTLP exporters, LiteLLM, a
-- remote `tokentally import`) prove who they send for. Only a SHA-256 of
-- the token is kept: a copy of the database hands out no token. Tokens are
-- 256-bit random, so a plain digest is enough (no password hashing).

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- 'ingest': may send events; 'read': may read usage through the API.
    scope        TEXT    NOT NULL CHECK (scope IN ('ingest', 'read')),
    token_hash   TEXT    NOT NULL UNIQUE,
    -- The first characters of the token, to tell tokens apart in lists.
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
