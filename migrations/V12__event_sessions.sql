-- Where a call was made: the producer's session (Claude Code's session.id,
-- Codex's conversation.id, a transcript's sessionId) and the machine (the
-- host that ran `tokentally import`, an OTLP resource's host.name).
--
-- They are kept on the raw events only, never in the rollups: a new
-- session starts every few hours, so as a dimension they would multiply
-- the rollup rows without end. A filter on them reads raw events.
--
-- Interned like the dimensions: a session id (a UUID) repeats on every
-- call of its session and a host name on every call of its machine, so an
-- integer keeps the rows and the indexes narrow. Names are checked by the
-- one event validation (at most 256 characters, no control, bidirectional
-- or zero-width characters), as every other name. (`sessions` is taken by
-- the sign-in sessions, hence the prefix.)
CREATE TABLE event_sessions (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;
CREATE TABLE event_machines (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;

-- Nullable: events stored before this version, and producers that send
-- neither, have none. Adding a NULL column rewrites no row.
ALTER TABLE events ADD COLUMN session_id INTEGER REFERENCES event_sessions (id);
ALTER TABLE events ADD COLUMN machine_id INTEGER REFERENCES event_machines (id);

-- A session's or a machine's events in time order: the events page and a
-- series filtered by one read only them. Partial: the rows without one
-- (all older events) cost nothing.
CREATE INDEX events_by_session ON events (session_id, ts_ms) WHERE session_id IS NOT NULL;
CREATE INDEX events_by_machine ON events (machine_id, ts_ms) WHERE machine_id IS NOT NULL;
