-- Usage events, first version: the raw rows and their dimension tables.
-- Repeated strings (model, provider, activity, project, source) become small
-- integer ids, which keeps rows narrow and grouping cheap.

CREATE TABLE models     (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;
CREATE TABLE providers  (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;
CREATE TABLE activities (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;
CREATE TABLE projects   (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;
CREATE TABLE sources    (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;

CREATE TABLE events (
    id                 INTEGER PRIMARY KEY,
    -- When the call happened: Unix milliseconds, UTC.
    ts_ms              INTEGER NOT NULL,
    user_id            INTEGER NOT NULL REFERENCES users (id),
    source_id          INTEGER NOT NULL REFERENCES sources (id),
    -- The producer's id for the call; unique per source and user (dedup).
    external_id        TEXT    NOT NULL,
    model_id           INTEGER NOT NULL REFERENCES models (id),
    provider_id        INTEGER REFERENCES providers (id),
    activity_id        INTEGER REFERENCES activities (id),
    project_id         INTEGER REFERENCES projects (id),
    -- Input excludes cache reads and writes, which are counted apart.
    input_tokens       INTEGER NOT NULL CHECK (input_tokens >= 0),
    output_tokens      INTEGER NOT NULL CHECK (output_tokens >= 0),
    cache_read_tokens  INTEGER NOT NULL CHECK (cache_read_tokens >= 0),
    cache_write_tokens INTEGER NOT NULL CHECK (cache_write_tokens >= 0),
    -- Money in millionths of the instance's unit; never a float.
    cost_micros        INTEGER NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    -- 0: no known price (unpriced), 1: from the price table, 2: reported by the producer.
    cost_origin        INTEGER NOT NULL CHECK (cost_origin IN (0, 1, 2)),
    UNIQUE (source_id, user_id, external_id)
) STRICT;

CREATE INDEX events_by_user_time ON events (user_id, ts_ms);
CREATE INDEX events_by_time ON events (ts_ms);
