-- The audit trail: who did what, when, from where, with which outcome.
--
-- Append-only: UPDATE always aborts, and DELETE aborts except for entries
-- older than the boundary that a recorded retention purge (an
-- 'audit.purge' entry, itself in the chain) has set. Each row carries the
-- SHA-256 of its predecessor's hash and its own content (`hash`), so a row
-- changed or removed out of band (triggers dropped) breaks the chain and
-- `tokentally verify` names the first broken link.

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    actor_kind  TEXT    NOT NULL CHECK (actor_kind IN ('anonymous', 'user', 'token', 'system')),
    -- The user (for a token: the token's owner); NULL for anonymous/system.
    actor_id    INTEGER,
    actor_name  TEXT,
    -- A stable code such as 'login.failure' or 'usage.read' (see audit::Action).
    action      TEXT    NOT NULL,
    target      TEXT,
    client_addr TEXT,
    user_agent  TEXT,
    route       TEXT,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    -- JSON object: the filters of a data read, the counts of an ingest…
    details     TEXT    NOT NULL DEFAULT '{}',
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_by_time ON audit_log (at_ms);
CREATE INDEX audit_by_action ON audit_log (action, at_ms);
CREATE INDEX audit_by_actor ON audit_log (actor_name, at_ms);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq >= COALESCE(
    (SELECT MAX(json_extract(details, '$.first_kept_seq'))
     FROM audit_log WHERE action = 'audit.purge'),
    0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only; old entries leave only through a recorded purge');
END;
