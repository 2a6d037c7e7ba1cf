//! The hash chain of the audit log: appending, walking it to find the
//! first broken link, and the retention purge that keeps the rest
//! verifiable. Every SQL statement on `audit_log` that writes is here.
//!
//! Each entry's `hash` is an HMAC-SHA-256, under the audit key
//! ([`super::key`]), of the previous entry's hash and the entry's content.
//! Entries written before the chain was keyed (by releases before it) carry
//! a plain SHA-256 instead; the first keyed entry, `audit.keyed`, names the
//! last of them, so they stay verifiable and cannot be extended: after it,
//! an entry with a plain hash is a broken link.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};

use super::{Action, Actor, Entry, Outcome};
use crate::db::DbError;

/// The `prev_hash` of the very first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub use crate::db::audit_key::StoredEntry;

pub const COLUMNS: &str = "seq, at_ms, actor_kind, actor_id, actor_name, action, target, \
     client_addr, user_agent, route, outcome, details, prev_hash, hash";

pub fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        seq: row.get(0)?,
        at_ms: row.get(1)?,
        actor_kind: row.get(2)?,
        actor_id: row.get(3)?,
        actor_name: row.get(4)?,
        action: row.get(5)?,
        target: row.get(6)?,
        client_addr: row.get(7)?,
        user_agent: row.get(8)?,
        route: row.get(9)?,
        outcome: row.get(10)?,
        details: row.get(11)?,
        prev_hash: row.get(12)?,
        hash: row.get(13)?,
    })
}

/// The chain's last link: (seq, hash), or none on an empty log.
fn head(conn: &Connection) -> Result<Option<(i64, String)>, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?;
    Ok(stmt
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

/// Appends `entries` in order, each linked to the one before. Call inside
/// a transaction (every writer job is one).
pub fn append(conn: &Connection, entries: &[Entry]) -> Result<(), DbError> {
    let (mut seq, mut prev_hash) = match head(conn)? {
        Some((seq, hash)) => (seq, hash),
        None => (0, GENESIS.to_owned()),
    };
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?;
    for entry in entries {
        seq += 1;
        let mut stored = stored_form(entry, seq, prev_hash);
        stored.hash = keyed_hash(conn, &stored)?;
        insert.execute(params![
            stored.seq,
            stored.at_ms,
            stored.actor_kind,
            stored.actor_id,
            stored.actor_name,
            stored.action,
            stored.target,
            stored.client_addr,
            stored.user_agent,
            stored.route,
            stored.outcome,
            stored.details,
            stored.prev_hash,
            stored.hash,
        ])?;
        prev_hash = stored.hash;
    }
    Ok(())
}

use crate::db::audit_key::MAC_OF_ROW;

/// The keyed hash of `entry`, from the connection's audit key (the key
/// never passes through the callers).
fn keyed_hash(conn: &Connection, entry: &StoredEntry) -> Result<String, DbError> {
    let mut mac = conn.prepare_cached(
        "SELECT tt_audit_mac(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    Ok(mac.query_row(
        params![
            entry.prev_hash,
            entry.seq,
            entry.at_ms,
            entry.actor_kind,
            entry.actor_id,
            entry.actor_name,
            entry.action,
            entry.target,
            entry.client_addr,
            entry.user_agent,
            entry.route,
            entry.outcome,
            entry.details,
        ],
        |row| row.get(0),
    )?)
}

fn stored_form(entry: &Entry, seq: i64, prev_hash: String) -> StoredEntry {
    let (actor_kind, actor_id, actor_name) = entry.actor.columns();
    StoredEntry {
        seq,
        at_ms: entry.at_ms,
        actor_kind: actor_kind.to_owned(),
        actor_id,
        actor_name,
        action: entry.action.code().to_owned(),
        target: entry.target.clone(),
        client_addr: entry.client_addr.clone(),
        user_agent: entry.user_agent.clone(),
        route: entry.route.clone(),
        outcome: entry.outcome.as_str().to_owned(),
        details: entry.details.to_string(),
        prev_hash,
        hash: String::new(),
    }
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit entry {}: {}", self.seq, self.reason)
    }
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub entries: u64,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
}

/// Walks the whole chain in order. The first entry must start from
/// [`GENESIS`], or be the first kept entry that a later purge entry (in
/// the verified chain) names with exactly that `prev_hash`. Entries up to
/// the one that `audit.keyed` names carry plain hashes; all others keyed
/// ones.
pub fn verify(conn: &Connection) -> Result<ChainReport, DbError> {
    let unkeyed_through = unkeyed_through(conn)?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, {MAC_OF_ROW} FROM audit_log ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    let mut entries = 0u64;
    let mut previous: Option<StoredEntry> = None;
    // (seq, prev_hash) of a first entry that is not the genesis one: it
    // needs a purge entry that vouches for it.
    let mut unanchored: Option<(i64, String)> = None;
    while let Some(row) = rows.next()? {
        let entry = from_row(row)?;
        let expected = match entry.seq <= unkeyed_through {
            true => entry.unkeyed_hash(),
            false => row.get(14)?,
        };
        entries += 1;
        if let Some(broken) = check_link(previous.as_ref(), &entry, &expected) {
            return Ok(ChainReport {
                entries,
                broken: Some(broken),
            });
        }
        if previous.is_none() && entry.prev_hash != GENESIS {
            unanchored = Some((entry.seq, entry.prev_hash.clone()));
        }
        if let Some((seq, prev)) = &unanchored
            && entry.action == Action::AuditPurge.code()
            && vouches_for(&entry, *seq, prev)
        {
            unanchored = None;
        }
        previous = Some(entry);
    }
    let broken = unanchored.map(|(seq, _)| BrokenLink {
        seq,
        reason: "the oldest entry does not start the chain and no purge entry anchors it \
                 (entries before it were removed)"
            .into(),
    });
    Ok(ChainReport { entries, broken })
}

/// The last entry written before the chain was keyed (0: none), as the
/// first `audit.keyed` entry records it — if that entry is itself keyed.
fn unkeyed_through(conn: &Connection) -> Result<i64, DbError> {
    let marker = conn
        .prepare(&format!(
            "SELECT details FROM audit_log WHERE action = ?1 AND hash = {MAC_OF_ROW}
             ORDER BY seq LIMIT 1"
        ))?
        .query_row([Action::AuditKeyed.code()], |row| row.get::<_, String>(0))
        .optional()?;
    Ok(marker
        .and_then(|details| serde_json::from_str::<Value>(&details).ok())
        .and_then(|details| details.get("unkeyed_through_seq").and_then(Value::as_i64))
        .unwrap_or(0))
}

fn check_link(
    previous: Option<&StoredEntry>,
    entry: &StoredEntry,
    expected_hash: &str,
) -> Option<BrokenLink> {
    if let Some(previous) = previous {
        if entry.seq != previous.seq + 1 {
            return Some(BrokenLink {
                seq: entry.seq,
                reason: format!(
                    "follows entry {}: entries in between are missing",
                    previous.seq
                ),
            });
        }
        if entry.prev_hash != previous.hash {
            return Some(BrokenLink {
                seq: entry.seq,
                reason: "its prev_hash is not the hash of the entry before it".into(),
            });
        }
    }
    if entry.hash != expected_hash {
        return Some(BrokenLink {
            seq: entry.seq,
            reason: "its content does not match its hash (the row was altered, or made without \
                     the audit key)"
                .into(),
        });
    }
    None
}

fn vouches_for(purge: &StoredEntry, seq: i64, prev_hash: &str) -> bool {
    let Ok(details) = serde_json::from_str::<Value>(&purge.details) else {
        return false;
    };
    details.get("first_kept_seq").and_then(Value::as_i64) == Some(seq)
        && details.get("first_kept_prev_hash").and_then(Value::as_str) == Some(prev_hash)
}

/// Removes the entries older than `cutoff_ms`, after appending the
/// `audit.purge` entry that anchors what remains: it records the first
/// kept entry and that entry's `prev_hash`. Returns how many went.
pub fn purge_before(
    conn: &Connection,
    cutoff_ms: i64,
    actor: Actor,
    now_ms: i64,
) -> Result<u64, DbError> {
    let mut old =
        conn.prepare_cached("SELECT COUNT(*), MAX(seq) FROM audit_log WHERE at_ms < ?1")?;
    let (count, last_old): (i64, Option<i64>) =
        old.query_row([cutoff_ms], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let Some(last_old) = last_old else {
        return Ok(0);
    };
    // Everything up to the last old entry goes (a chain has no holes), so
    // the first kept entry is the one after it; when that is the purge
    // entry itself, its prev_hash is the current head's hash.
    let mut next = conn.prepare_cached(
        "SELECT seq, prev_hash FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT 1",
    )?;
    let first_kept = next
        .query_row([last_old], |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)))
        .optional()?;
    let (first_kept_seq, first_kept_prev_hash): (i64, String) = match first_kept {
        Some(found) => found,
        None => {
            let (seq, hash) = head(conn)?.unwrap_or((0, GENESIS.to_owned()));
            (seq + 1, hash)
        }
    };
    let entry = Entry {
        details: json!({
            "cutoff_ms": cutoff_ms,
            "purged": count,
            "first_kept_seq": first_kept_seq,
            "first_kept_prev_hash": first_kept_prev_hash,
        }),
        ..Entry::new(now_ms, actor, Action::AuditPurge, Outcome::Success)
    };
    append(conn, &[entry])?;
    let mut delete = conn.prepare_cached("DELETE FROM audit_log WHERE seq < ?1")?;
    let deleted = delete.execute([first_kept_seq])?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_db() -> Connection {
        let mut conn = Connection::open_in_memory().expect("memory db");
        // The key first: migration V11 hashes with it.
        crate::db::audit_key::install(&conn, &crate::db::audit_key::AuditKey::for_tests())
            .expect("key");
        crate::db::migrate::apply(&mut conn).expect("migrations");
        conn
    }

    fn entry(at_ms: i64, action: Action) -> Entry {
        Entry::new(
            at_ms,
            Actor::System("test".into()),
            action,
            Outcome::Success,
        )
    }

    #[test]
    fn appended_entries_form_a_chain() {
        let conn = memory_db();
        append(
            &conn,
            &[entry(1, Action::Login), entry(2, Action::PageView)],
        )
        .expect("append");
        append(&conn, &[entry(3, Action::Logout)]).expect("append");
        let report = verify(&conn).expect("verify");
        assert_eq!(report.entries, 3);
        assert_eq!(report.broken, None);
    }

    #[test]
    fn updates_and_deletes_abort() {
        let conn = memory_db();
        append(&conn, &[entry(1, Action::Login)]).expect("append");
        let update = conn.execute("UPDATE audit_log SET action = 'x'", []);
        assert!(update.is_err(), "update must abort");
        let delete = conn.execute("DELETE FROM audit_log", []);
        assert!(delete.is_err(), "delete must abort");
    }

    #[test]
    fn purge_keeps_the_rest_verifiable_and_only_old_entries_go() {
        let conn = memory_db();
        let old: Vec<_> = (0..5).map(|i| entry(i, Action::PageView)).collect();
        append(&conn, &old).expect("append");
        append(&conn, &[entry(100, Action::Login)]).expect("append");
        let purged =
            purge_before(&conn, 50, Actor::System("retention".into()), 200).expect("purge");
        assert_eq!(purged, 5);
        let report = verify(&conn).expect("verify");
        assert_eq!((report.entries, report.broken), (2, None));
        // The kept entries are still protected.
        assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    }

    #[test]
    fn purge_of_everything_is_anchored_by_the_purge_entry() {
        let conn = memory_db();
        append(&conn, &[entry(1, Action::Login), entry(2, Action::Logout)]).expect("append");
        purge_before(&conn, 10, Actor::System("retention".into()), 20).expect("purge");
        let report = verify(&conn).expect("verify");
        assert_eq!((report.entries, report.broken), (1, None));
    }
}
