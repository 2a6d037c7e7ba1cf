-- The audit chain is keyed (HMAC under a key kept outside this file; see
-- src/audit/key.rs). A purge now unlocks deletion only when its own entry
-- carries the keyed hash: an `audit.purge` row inserted by someone without
-- the key unlocks nothing. `tt_audit_mac` is defined by tokentally on its
-- connections only, so any other client (the sqlite3 shell) cannot delete
-- audit rows at all while this trigger exists.
DROP TRIGGER audit_log_no_delete;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq >= COALESCE(
    (SELECT MAX(json_extract(details, '$.first_kept_seq'))
     FROM audit_log
     WHERE action = 'audit.purge'
       AND hash = tt_audit_mac(prev_hash, seq, at_ms, actor_kind, actor_id, actor_name, action,
                               target, client_addr, user_agent, route, outcome, details)),
    0)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only; old entries leave only through a recorded purge');
END;

-- A chain written before the key existed is adopted once, here: its first
-- keyed entry, 'audit.keyed', names the last unkeyed one, so the old part
-- stays verifiable and nothing unkeyed can be appended after it. (Run on
-- tokentally's own connection, which has the key.)
INSERT INTO audit_log (seq, at_ms, actor_kind, actor_id, actor_name, action, target, client_addr,
                       user_agent, route, outcome, details, prev_hash, hash)
SELECT seq + 1, CAST(unixepoch('subsec') * 1000 AS INTEGER), 'system', NULL, 'upgrade',
       'audit.keyed', NULL, NULL, NULL, NULL, 'success',
       json_object('unkeyed_through_seq', seq, 'unkeyed_head', hash), hash,
       tt_audit_mac(hash, seq + 1, CAST(unixepoch('subsec') * 1000 AS INTEGER), 'system', NULL,
                    'upgrade', 'audit.keyed', NULL, NULL, NULL, NULL, 'success',
                    json_object('unkeyed_through_seq', seq, 'unkeyed_head', hash))
FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log);
