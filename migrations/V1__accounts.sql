-- Accounts, sessions and first-run setup.
-- Times are Unix seconds (UTC) unless a column name says otherwise.

PRAGMA application_id = 1953199212; -- 0x746b746c, "tktl": marks the file as ours

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE
                          CHECK (length(username) BETWEEN 1 AND 64),
    display_name  TEXT,
    email         TEXT,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    -- argon2id PHC string; NULL means the account cannot log in with a password.
    password_hash TEXT,
    -- IANA zone; NULL means the instance's default.
    time_zone     TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- One-time links that create the first admin. Only a SHA-256 of the token
-- is kept, so a copy of the database does not hand out the link.
CREATE TABLE setup_tokens (
    token_hash TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT;

-- tower-sessions records. The id is stored hashed for the same reason as
-- setup tokens; user_id is lifted out of the record so that all sessions of
-- a user can be ended at once.
CREATE TABLE sessions (
    id_hash    TEXT    PRIMARY KEY,
    user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
    data       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_user ON sessions (user_id);
