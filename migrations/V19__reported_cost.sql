-- How much of each rollup cell's cost producers reported (issue 15): the
-- overview says how much of a total was reported, how much computed from
-- prices and how many calls are unpriced, at the cost of the number of
-- buckets, like every other figure. `cost_micros` keeps the whole cost;
-- `reported_cost_micros` is the part of it from events with cost_origin 2.
--
-- The backfill below is the plain GROUP BY of `verify`, restricted to
-- reported events and frozen as the groupings stood at this version
-- (v19_cuboid: which dimensions and within-day levels each keeps; see
-- usage::rollup::Cuboid). A database with no reported event updates
-- nothing. A zero costs no space in an SQLite record, so cells with no
-- reported cost grow by one header byte.

ALTER TABLE rollup_month   ADD COLUMN reported_cost_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_day     ADD COLUMN reported_cost_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_block   ADD COLUMN reported_cost_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_hour    ADD COLUMN reported_cost_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_quarter ADD COLUMN reported_cost_micros INTEGER NOT NULL DEFAULT 0;

CREATE TEMP TABLE v19_cuboid (
    code    INTEGER PRIMARY KEY,
    u       INTEGER NOT NULL,
    m       INTEGER NOT NULL,
    a       INTEGER NOT NULL,
    p       INTEGER NOT NULL,
    full    INTEGER NOT NULL,
    hour    INTEGER NOT NULL,
    quarter INTEGER NOT NULL
);
INSERT INTO v19_cuboid VALUES
    (0, 0, 0, 0, 0, 0, 1, 1),
    (1, 1, 0, 0, 0, 0, 1, 1),
    (2, 0, 1, 0, 0, 0, 1, 1),
    (3, 0, 0, 1, 0, 0, 1, 1),
    (4, 0, 0, 0, 1, 0, 1, 1),
    (5, 1, 1, 0, 0, 0, 1, 0),
    (6, 1, 0, 1, 0, 0, 1, 0),
    (7, 1, 1, 1, 1, 1, 0, 0);

CREATE TEMP VIEW v19_reported AS
SELECT c.code AS cuboid, c.hour AS keeps_hour, c.quarter AS keeps_quarter,
       CASE WHEN c.u THEN COALESCE(e.user_id, 0) ELSE 0 END AS user_id,
       CASE WHEN c.m THEN COALESCE(e.model_id, 0) ELSE 0 END AS model_id,
       CASE WHEN c.a THEN COALESCE(e.activity_id, 0) ELSE 0 END AS activity_id,
       CASE WHEN c.p THEN COALESCE(e.project_id, 0) ELSE 0 END AS project_id,
       CASE WHEN c.full THEN COALESCE(e.source_id, 0) ELSE 0 END AS source_id,
       CASE WHEN c.full THEN COALESCE(e.provider_id, 0) ELSE 0 END AS provider_id,
       e.ts_ms AS ts_ms, e.cost_micros AS cost_micros
FROM events e CROSS JOIN v19_cuboid c
WHERE e.cost_origin = 2;

UPDATE rollup_month AS r SET reported_cost_micros = g.reported
FROM (SELECT cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id,
             (CAST(strftime('%Y', ts_ms / 1000, 'unixepoch') AS INTEGER) - 1970) * 12
               + CAST(strftime('%m', ts_ms / 1000, 'unixepoch') AS INTEGER) - 1 AS period,
             SUM(cost_micros) AS reported
      FROM v19_reported GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) AS g
WHERE r.cuboid = g.cuboid AND r.month = g.period AND r.user_id = g.user_id
  AND r.model_id = g.model_id AND r.activity_id = g.activity_id
  AND r.project_id = g.project_id AND r.source_id = g.source_id
  AND r.provider_id = g.provider_id;

UPDATE rollup_day AS r SET reported_cost_micros = g.reported
FROM (SELECT cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id,
             ts_ms / 86400000 AS period, SUM(cost_micros) AS reported
      FROM v19_reported GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) AS g
WHERE r.cuboid = g.cuboid AND r.day = g.period AND r.user_id = g.user_id
  AND r.model_id = g.model_id AND r.activity_id = g.activity_id
  AND r.project_id = g.project_id AND r.source_id = g.source_id
  AND r.provider_id = g.provider_id;

UPDATE rollup_block AS r SET reported_cost_micros = g.reported
FROM (SELECT cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id,
             ts_ms / 86400000 AS period, (ts_ms % 86400000) / 14400000 AS slot,
             SUM(cost_micros) AS reported
      FROM v19_reported WHERE keeps_hour GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9) AS g
WHERE r.cuboid = g.cuboid AND r.day = g.period AND r.slot = g.slot
  AND r.user_id = g.user_id AND r.model_id = g.model_id AND r.activity_id = g.activity_id
  AND r.project_id = g.project_id AND r.source_id = g.source_id
  AND r.provider_id = g.provider_id;

UPDATE rollup_hour AS r SET reported_cost_micros = g.reported
FROM (SELECT cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id,
             ts_ms / 86400000 AS period, (ts_ms % 86400000) / 3600000 AS slot,
             SUM(cost_micros) AS reported
      FROM v19_reported WHERE keeps_hour GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9) AS g
WHERE r.cuboid = g.cuboid AND r.day = g.period AND r.slot = g.slot
  AND r.user_id = g.user_id AND r.model_id = g.model_id AND r.activity_id = g.activity_id
  AND r.project_id = g.project_id AND r.source_id = g.source_id
  AND r.provider_id = g.provider_id;

UPDATE rollup_quarter AS r SET reported_cost_micros = g.reported
FROM (SELECT cuboid, user_id, model_id, activity_id, project_id, source_id, provider_id,
             ts_ms / 86400000 AS period, (ts_ms % 86400000) / 900000 AS slot,
             SUM(cost_micros) AS reported
      FROM v19_reported WHERE keeps_quarter GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9) AS g
WHERE r.cuboid = g.cuboid AND r.day = g.period AND r.slot = g.slot
  AND r.user_id = g.user_id AND r.model_id = g.model_id AND r.activity_id = g.activity_id
  AND r.project_id = g.project_id AND r.source_id = g.source_id
  AND r.provider_id = g.provider_id;

DROP VIEW v19_reported;
DROP TABLE v19_cuboid;
