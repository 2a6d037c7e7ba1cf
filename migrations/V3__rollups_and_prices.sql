-- Time-bucketed rollups and the price table. The design (why these levels
-- and these groupings, and how a query in any time zone stays exact) is
-- written down in src/usage/rollup.rs.
--
-- Every rollup table has the same dimension columns. `cuboid` says which of
-- them are real for a row (see `Cuboid` in rollup.rs); the others are 0.
-- A real dimension with no value (no project, say) is also 0: ids start at 1.

CREATE TABLE rollup_month (
    cuboid             INTEGER NOT NULL,
    user_id            INTEGER NOT NULL,
    model_id           INTEGER NOT NULL,
    activity_id        INTEGER NOT NULL,
    project_id         INTEGER NOT NULL,
    source_id          INTEGER NOT NULL,
    provider_id        INTEGER NOT NULL,
    month              INTEGER NOT NULL, -- months since 1970-01, UTC
    calls              INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_micros        INTEGER NOT NULL,
    unpriced_calls     INTEGER NOT NULL,
    PRIMARY KEY (cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id, month)
) STRICT, WITHOUT ROWID;

CREATE TABLE rollup_day (
    cuboid             INTEGER NOT NULL,
    user_id            INTEGER NOT NULL,
    model_id           INTEGER NOT NULL,
    activity_id        INTEGER NOT NULL,
    project_id         INTEGER NOT NULL,
    source_id          INTEGER NOT NULL,
    provider_id        INTEGER NOT NULL,
    day                INTEGER NOT NULL, -- days since 1970-01-01, UTC
    calls              INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_micros        INTEGER NOT NULL,
    unpriced_calls     INTEGER NOT NULL,
    PRIMARY KEY (cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id, day)
) STRICT, WITHOUT ROWID;

-- Within-day levels are keyed by day, then the slot within it, so that a
-- day's rows of one series sit together (local writes).
CREATE TABLE rollup_hour (
    cuboid             INTEGER NOT NULL,
    user_id            INTEGER NOT NULL,
    model_id           INTEGER NOT NULL,
    activity_id        INTEGER NOT NULL,
    project_id         INTEGER NOT NULL,
    source_id          INTEGER NOT NULL,
    provider_id        INTEGER NOT NULL,
    day                INTEGER NOT NULL,
    slot               INTEGER NOT NULL, -- hour of the UTC day, 0..23
    calls              INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_micros        INTEGER NOT NULL,
    unpriced_calls     INTEGER NOT NULL,
    PRIMARY KEY (cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id, day, slot)
) STRICT, WITHOUT ROWID;

CREATE TABLE rollup_quarter (
    cuboid             INTEGER NOT NULL,
    user_id            INTEGER NOT NULL,
    model_id           INTEGER NOT NULL,
    activity_id        INTEGER NOT NULL,
    project_id         INTEGER NOT NULL,
    source_id          INTEGER NOT NULL,
    provider_id        INTEGER NOT NULL,
    day                INTEGER NOT NULL,
    slot               INTEGER NOT NULL, -- quarter hour of the UTC day, 0..95
    calls              INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_micros        INTEGER NOT NULL,
    unpriced_calls     INTEGER NOT NULL,
    PRIMARY KEY (cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id, day, slot)
) STRICT, WITHOUT ROWID;

-- Prices in micro-units of the instance's currency per million tokens
-- (so USD 3.75 per million tokens is 3750000). provider '' matches any
-- provider; a row for the event's own provider wins over it.
CREATE TABLE prices (
    id                     INTEGER PRIMARY KEY,
    model                  TEXT    NOT NULL,
    provider               TEXT    NOT NULL DEFAULT '',
    effective_from_ms      INTEGER NOT NULL,
    input_per_mtok         INTEGER NOT NULL CHECK (input_per_mtok >= 0),
    output_per_mtok        INTEGER NOT NULL CHECK (output_per_mtok >= 0),
    cache_read_per_mtok    INTEGER NOT NULL CHECK (cache_read_per_mtok >= 0),
    cache_write_per_mtok   INTEGER NOT NULL CHECK (cache_write_per_mtok >= 0),
    created_at             INTEGER NOT NULL,
    UNIQUE (model, provider, effective_from_ms)
) STRICT;

-- The embedded defaults (public list prices, USD, late 2026), effective
-- from the beginning of time; an admin's own rows override them.
INSERT INTO prices (model, provider, effective_from_ms, input_per_mtok, output_per_mtok,
                    cache_read_per_mtok, cache_write_per_mtok, created_at) VALUES
    ('claude-opus-4-1',   '', 0, 15000000, 75000000, 1500000, 18750000, 0),
    ('claude-sonnet-4-5', '', 0,  3000000, 15000000,  300000,  3750000, 0),
    ('claude-haiku-4-5',  '', 0,  1000000,  5000000,  100000,  1250000, 0),
    ('gpt-5',             '', 0,  1250000, 10000000,  125000,        0, 0),
    ('gpt-5-mini',        '', 0,   250000,  2000000,   25000,        0, 0),
    ('gpt-4.1',           '', 0,  2000000,  8000000,  500000,        0, 0),
    ('gemini-2.5-pro',    '', 0,  1250000, 10000000,  310000,        0, 0);

-- The events table page sorts by time within a user, and looks events up
-- by model for re-pricing.
CREATE INDEX events_by_model_time ON events (model_id, ts_ms);

-- A user's most expensive calls first: the events table's default sort.
CREATE INDEX events_by_user_cost ON events (user_id, cost_micros);
