-- Identities (issue 14): a producer's name for a person (kind and value:
-- `user.email` from Claude Code, LiteLLM's end user…). Each identity owns a
-- holder account (users.kind = 'identity': disabled, no password, never
-- listed as a person) that holds its usage until an admin links it to a
-- person, so unassigned usage is counted, in the rollups, from the first
-- event. Linking moves the identity's events (events.identity_id) and
-- their rollup rows to the person in one transaction; unlinking moves them
-- back to the holder.

ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person'
    CHECK (kind IN ('person', 'identity'));

CREATE TABLE identities (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('enduser', 'email', 'account', 'install',
                                                   'litellm_user', 'litellm_key')),
    value         TEXT    NOT NULL CHECK (length(value) BETWEEN 1 AND 256),
    -- The account that holds the identity's usage while it is unassigned.
    holder_id     INTEGER NOT NULL UNIQUE REFERENCES users (id),
    -- The person it is linked to; NULL while unassigned.
    user_id       INTEGER REFERENCES users (id),
    -- Marked ignored by an admin: still counted, still visible.
    ignored       INTEGER NOT NULL DEFAULT 0 CHECK (ignored IN (0, 1)),
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    UNIQUE (kind, value)
) STRICT;
CREATE INDEX identities_by_user ON identities (user_id);

-- Which identity an event was attributed by (NULL: by its token or the
-- event API's `user`). Only such events move when an identity is linked.
ALTER TABLE events ADD COLUMN identity_id INTEGER REFERENCES identities (id);
CREATE INDEX events_by_identity ON events (identity_id, user_id) WHERE identity_id IS NOT NULL;
