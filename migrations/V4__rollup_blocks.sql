-- Four-hour blocks: a level between the day and the hour, so that the part
-- of a UTC day before a local midnight (04:00 or 05:00 UTC in New York,
-- 08:00 in Los Angeles, 15:00 in Tokyo) is read as one or two rows rather
-- than four to nine hour rows. Kept for the same groupings as hours; see
-- src/usage/rollup.rs.

CREATE TABLE rollup_block (
    cuboid             INTEGER NOT NULL,
    user_id            INTEGER NOT NULL,
    model_id           INTEGER NOT NULL,
    activity_id        INTEGER NOT NULL,
    project_id         INTEGER NOT NULL,
    source_id          INTEGER NOT NULL,
    provider_id        INTEGER NOT NULL,
    day                INTEGER NOT NULL,
    slot               INTEGER NOT NULL, -- block of the UTC day, 0..5 (hours 4*slot ..)
    calls              INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_micros        INTEGER NOT NULL,
    unpriced_calls     INTEGER NOT NULL,
    PRIMARY KEY (cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id, day, slot)
) STRICT, WITHOUT ROWID;

-- A database written before this level has its hours: blocks are their sums.
INSERT INTO rollup_block
SELECT cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id,
       day, slot / 4, SUM(calls), SUM(input_tokens), SUM(output_tokens),
       SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_micros), SUM(unpriced_calls)
FROM rollup_hour
GROUP BY cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id, day, slot / 4;
