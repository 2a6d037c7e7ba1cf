-- One-time setup links for members created without a password (issue 14:
-- an admin makes a member from an identity, or asks for a fresh link for
-- a member who has none). The person opens {public_url}/invite/{token}
-- and chooses their password. As with setup_tokens, only a SHA-256 of the
-- token is kept, so a copy of the database does not hand out the link.
-- A link works once, until expires_at (Unix seconds); issuing a new one
-- for a user replaces theirs.

CREATE TABLE invites (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX invites_by_user ON invites (user_id);
