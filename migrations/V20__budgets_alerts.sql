-- Budgets, alerts and their delivery (issue 16).
--
-- A budget is an amount of money (micro-USD) or of tokens per calendar
-- period (day, week, month) in a stated time zone, for a scope. An alert
-- is recorded once per (budget, member, period, threshold) — or per
-- projection or unusual-usage episode — under a unique idempotency key,
-- in the same transaction as the usage that caused it: that table is the
-- outbox. A worker delivers each alert to each of its channels and
-- records the delivery; the key travels with the delivery so that a
-- receiver can drop the rare repeat (the process died between sending
-- and recording).

CREATE TABLE channels (
    id          INTEGER PRIMARY KEY,
    -- The rules of usernames (src/model/names.rs); compared without case.
    name        TEXT    NOT NULL UNIQUE COLLATE NOCASE
                        CHECK (length(name) BETWEEN 1 AND 64),
    kind        TEXT    NOT NULL CHECK (kind IN ('webhook', 'email')),
    -- The body's shape, for webhooks.
    format      TEXT    CHECK (format IN ('json', 'slack', 'discord', 'mattermost', 'teams', 'ntfy')),
    -- A webhook's URL (http or https) or an email address.
    target      TEXT    NOT NULL CHECK (length(target) BETWEEN 1 AND 2048),
    -- The shared secret of the HMAC-SHA256 signature (webhooks); never
    -- shown back, never logged.
    secret      TEXT    CHECK (secret IS NULL OR length(secret) BETWEEN 1 AND 256),
    created_ms  INTEGER NOT NULL,
    CHECK ((kind = 'webhook') = (format IS NOT NULL)),
    CHECK (kind = 'webhook' OR secret IS NULL)
) STRICT;

CREATE TABLE budgets (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE
                          CHECK (length(name) BETWEEN 1 AND 64),
    period        TEXT    NOT NULL CHECK (period IN ('day', 'week', 'month')),
    -- The first day of a week, ISO numbering (1 = Monday … 7 = Sunday).
    week_start    INTEGER NOT NULL DEFAULT 1 CHECK (week_start BETWEEN 1 AND 7),
    -- IANA zone of the period's edges.
    time_zone     TEXT    NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 64),
    -- 'cost': `amount` in micro-USD; 'tokens': a number of tokens.
    measure       TEXT    NOT NULL CHECK (measure IN ('cost', 'tokens')),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    -- Whose usage: everyone's, a team's (while members were in it), one
    -- user's, one model's, or each member's own (one amount per member,
    -- not pooled).
    scope         TEXT    NOT NULL CHECK (scope IN ('everyone', 'team', 'user', 'model', 'each_member')),
    team_id       INTEGER REFERENCES teams (id),
    user_id       INTEGER REFERENCES users (id),
    -- A model by name: a budget may name a model before its first event.
    model         TEXT    CHECK (model IS NULL OR length(model) BETWEEN 1 AND 256),
    -- Percentages, ascending, comma-separated: '50,80,100'.
    thresholds    TEXT    NOT NULL CHECK (length(thresholds) BETWEEN 1 AND 200),
    -- Who set it (an admin, or a team's lead for their team).
    created_by    INTEGER REFERENCES users (id),
    -- Raised by every change: thresholds are recorded per revision, so a
    -- changed budget alerts afresh for what is crossed after the change.
    revision      INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1),
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    CHECK ((scope = 'team') = (team_id IS NOT NULL)),
    CHECK ((scope = 'user') = (user_id IS NOT NULL)),
    CHECK ((scope = 'model') = (model IS NOT NULL))
) STRICT;

CREATE TABLE budget_channels (
    budget_id  INTEGER NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    PRIMARY KEY (budget_id, channel_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL CHECK (kind IN ('threshold', 'projected', 'unusual')),
    -- NULL for unusual usage, and once the budget is removed (the alert
    -- keeps its own copy of what it said).
    budget_id        INTEGER REFERENCES budgets (id) ON DELETE SET NULL,
    -- The member it is about: each-member budgets, unusual usage, and a
    -- user's own budget (their email gets it).
    user_id          INTEGER REFERENCES users (id),
    period_start_ms  INTEGER NOT NULL,
    period_end_ms    INTEGER NOT NULL CHECK (period_end_ms > period_start_ms),
    -- The percentage crossed (threshold alerts); 100 for projected.
    threshold        INTEGER NOT NULL DEFAULT 0,
    -- 'cost' (micro-USD) or 'tokens', for the amounts below.
    measure          TEXT    NOT NULL CHECK (measure IN ('cost', 'tokens')),
    used             INTEGER NOT NULL,
    amount           INTEGER,
    projected        INTEGER,
    -- What the alert says, as a JSON object (budget name, scope label,
    -- source, baseline…): kept as it was when the alert was recorded.
    details          TEXT    NOT NULL DEFAULT '{}',
    idempotency_key  TEXT    NOT NULL UNIQUE,
    -- 1: recorded without delivery (a threshold already passed when the
    -- budget was set or changed): it marks the threshold as done.
    quiet            INTEGER NOT NULL DEFAULT 0 CHECK (quiet IN (0, 1)),
    created_ms       INTEGER NOT NULL
) STRICT;

CREATE INDEX alerts_by_time ON alerts (created_ms);
CREATE INDEX alerts_by_user ON alerts (user_id, created_ms) WHERE user_id IS NOT NULL;

-- One row per alert and channel it goes to, written with the alert.
CREATE TABLE alert_deliveries (
    alert_id         INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    -- A channel, or NULL with `email` set: a member's own address.
    channel_id       INTEGER REFERENCES channels (id) ON DELETE CASCADE,
    email            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    delivered_ms     INTEGER,
    -- The last failure, for the alerts page (never a secret).
    last_error       TEXT,
    CHECK ((channel_id IS NULL) = (email IS NOT NULL))
) STRICT;

CREATE UNIQUE INDEX alert_deliveries_key ON alert_deliveries (alert_id, COALESCE(channel_id, 0), COALESCE(email, ''));
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_ms) WHERE delivered_ms IS NULL;
