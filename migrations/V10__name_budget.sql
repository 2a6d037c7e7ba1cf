-- New names (models, activities, projects, providers, sources) created per
-- UTC day, per API token and for the whole instance (token_id 0): the
-- budget that keeps one token from creating tens of thousands of series.
CREATE TABLE new_names (
    day      INTEGER NOT NULL,
    token_id INTEGER NOT NULL,
    names    INTEGER NOT NULL,
    PRIMARY KEY (day, token_id)
) STRICT, WITHOUT ROWID;
