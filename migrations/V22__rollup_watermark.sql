-- Rollups that lag the raw events (issue 17): an acknowledged event is in
-- `events` at once; a background roller folds events into the rollup
-- tables later, in large chunks, and records here the highest event id it
-- has folded. Every read adds the raw events past the watermark (the tail)
-- to what the rollups say, so answers stay exact at acknowledgement.
--
-- Invariant: the rollups hold exactly the events with id <= event_id.
-- `tokentally verify` checks it. Every event existing now is already
-- folded (rollups were written in the events' own transaction until now).

CREATE TABLE rollup_watermark (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    event_id INTEGER NOT NULL CHECK (event_id >= 0)
) STRICT;

INSERT INTO rollup_watermark (id, event_id)
    SELECT 1, COALESCE(MAX(id), 0) FROM events;
