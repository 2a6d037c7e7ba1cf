-- Teams (issue 14): who belongs together for chargeback, with history.
-- An event belongs to the team its user was in when it happened: the
-- membership whose [since_ms, until_ms) holds the event's time. A user is
-- in at most one team at a time; the store (src/teams/store.rs) keeps one
-- user's intervals from overlapping, in the transaction that changes them.
-- Times are Unix milliseconds (UTC).

CREATE TABLE teams (
    id         INTEGER PRIMARY KEY,
    -- The rules of usernames (src/model/names.rs); compared without case.
    name       TEXT    NOT NULL UNIQUE COLLATE NOCASE
                       CHECK (length(name) BETWEEN 1 AND 64),
    created_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE team_members (
    id       INTEGER PRIMARY KEY,
    team_id  INTEGER NOT NULL REFERENCES teams (id),
    user_id  INTEGER NOT NULL REFERENCES users (id),
    -- A lead sees the team's usage (view=team:NAME) while this membership
    -- is current. Changing it keeps the interval.
    lead     INTEGER NOT NULL DEFAULT 0 CHECK (lead IN (0, 1)),
    -- A user's first membership starts at the beginning of time (the
    -- smallest integer), so a team set up today groups last month's usage.
    since_ms INTEGER NOT NULL,
    -- NULL while current.
    until_ms INTEGER CHECK (until_ms IS NULL OR until_ms > since_ms)
) STRICT;
-- A user's memberships in time order: the team of an event (`EXISTS` on
-- the events table), and the checks before a change.
CREATE INDEX team_members_by_user ON team_members (user_id, since_ms);
CREATE INDEX team_members_by_team ON team_members (team_id, since_ms);
-- At most one current membership per user, whatever the code does.
CREATE UNIQUE INDEX team_members_one_current ON team_members (user_id) WHERE until_ms IS NULL;
