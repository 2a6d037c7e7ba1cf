-- A third token scope, 'collector': sends usage for a team, attributed by
-- the identity each item names (src/auth/tokens.rs). SQLite cannot change
-- a CHECK constraint in place, so the table is rebuilt with the same
-- columns, rows and ids; nothing references api_tokens by foreign key.

CREATE TABLE api_tokens_v14 (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- 'ingest': may send events; 'read': may read usage through the API;
    -- 'collector': may send events attributed by identity (admins only).
    scope        TEXT    NOT NULL CHECK (scope IN ('ingest', 'read', 'collector')),
    token_hash   TEXT    NOT NULL UNIQUE,
    -- The first characters of the token, to tell tokens apart in lists.
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

INSERT INTO api_tokens_v14 (id, user_id, name, scope, token_hash, prefix, created_at,
                            last_used_at, revoked_at)
SELECT id, user_id, name, scope, token_hash, prefix, created_at, last_used_at, revoked_at
FROM api_tokens;

DROP TABLE api_tokens;

ALTER TABLE api_tokens_v14 RENAME TO api_tokens;

CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
