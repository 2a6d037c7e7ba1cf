-- The last value seen of each cumulative OTLP metric series (a counter that
-- reports its total since start_time), so that each export adds only what
-- changed since the previous one. Updated in the same transaction as the
-- events it produces: a retried export finds its own values and adds nothing.

CREATE TABLE otlp_series (
    -- SHA-256 of the metric name, the resource and the point's attributes.
    series          TEXT    PRIMARY KEY,
    start_unix_nano INTEGER NOT NULL,
    time_unix_nano  INTEGER NOT NULL,
    value           REAL    NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
