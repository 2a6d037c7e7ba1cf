-- How far `tokentally import` has read each file, so a second run reads only
-- what was appended. Updated in the same transaction as the events of the
-- lines it covers: after a crash, the events and the position agree.

CREATE TABLE import_files (
    -- The file's canonical path.
    path        TEXT    PRIMARY KEY,
    format      TEXT    NOT NULL,
    -- SHA-256 of the file's first head_bytes bytes when last read: a file
    -- replaced by another (rotated, rewritten) is read again from the start.
    head_sha256 TEXT    NOT NULL,
    head_bytes  INTEGER NOT NULL,
    -- Bytes and lines read, up to the last complete line.
    offset      INTEGER NOT NULL,
    lines       INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
