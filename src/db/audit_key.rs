//! The audit key: the secret that makes the chain unforgeable. Each entry's
//! hash is an HMAC-SHA-256 under this key, so someone who can write to the
//! database file but has not got the key cannot make a row — a forged
//! `audit.purge`, a rewritten entry, a new head after truncation — that
//! `tokentally verify` accepts.
//!
//! The key lives outside the database: `TOKENTALLY_AUDIT_KEY` (64 hex
//! characters), else the file `audit.key` in the data directory, created
//! with mode 0600 on first start. Backups carry it beside the copy
//! (`tokentally backup`). Whoever holds both the key and the files can
//! still rewrite history; the key only keeps out those who hold the files
//! alone.
//!
//! Connections get the key as the SQL function `tt_audit_mac(prev_hash,
//! seq, at_ms, actor_kind, actor_id, actor_name, action, target,
//! client_addr, user_agent, route, outcome, details)`: the chain computes
//! hashes through it, and the delete trigger uses it to honour only a purge
//! entry made with the key. A connection without it (the `sqlite3` shell)
//! cannot delete audit rows at all.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use sha2::Sha256;

use rusqlite::OptionalExtension;
use serde_json::json;
use sha2::Digest as _;

use super::DbError;

/// The environment variable that holds the key (64 hex characters).
pub const KEY_ENV: &str = "TOKENTALLY_AUDIT_KEY";
/// The key file's name, in the data directory.
pub const KEY_FILE: &str = "audit.key";

/// 256 secret bits.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

impl AuditKey {
    /// HMAC-SHA-256 of the parts (each followed by a newline) as hex.
    pub fn mac(&self, parts: &[&str]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes a key of any length")
        };
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        crate::secret::hex(&mac.finalize().into_bytes())
    }

    fn from_hex(text: &str) -> Option<AuditKey> {
        let text = text.trim();
        if text.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(AuditKey(key))
    }

    /// A fixed key, for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> AuditKey {
        AuditKey([7; 32])
    }

    pub fn to_hex(&self) -> String {
        crate::secret::hex(&self.0)
    }
}

/// Where the key of the database at `db_path` is kept.
pub fn key_path(db_path: &Path) -> PathBuf {
    db_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join(KEY_FILE)
}

/// The key of the database at `db_path`, if there is one.
pub fn load(db_path: &Path) -> Result<Option<AuditKey>, DbError> {
    let invalid = |source: &str| {
        DbError::AuditKey(format!(
            "{source} does not hold an audit key (64 hexadecimal characters)"
        ))
    };
    if let Ok(text) = std::env::var(KEY_ENV) {
        return AuditKey::from_hex(&text)
            .map(Some)
            .ok_or_else(|| invalid(KEY_ENV));
    }
    let path = key_path(db_path);
    match std::fs::read_to_string(&path) {
        Ok(text) => AuditKey::from_hex(&text)
            .map(Some)
            .ok_or_else(|| invalid(&path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DbError::AuditKey(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// The key of the database at `db_path`, made (mode 0600) when there is
/// none; `true` when it was made now.
pub fn load_or_create(db_path: &Path) -> Result<(AuditKey, bool), DbError> {
    if let Some(key) = load(db_path)? {
        return Ok((key, false));
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let key = AuditKey(bytes);
    write_key(&key_path(db_path), &key)?;
    Ok((key, true))
}

/// Writes `key` to a new file at `path`, readable by its owner only.
pub fn write_key(path: &Path, key: &AuditKey) -> Result<(), DbError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(path).and_then(|mut file| {
        file.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
        file.sync_all()
    });
    written.map_err(|e| DbError::AuditKey(format!("cannot write {}: {e}", path.display())))
}

/// Gives `conn` the function `tt_audit_mac` under `key`: the keyed hash
/// of the entry whose columns are its arguments.
pub fn install(conn: &Connection, key: &AuditKey) -> Result<(), DbError> {
    let key = key.clone();
    conn.create_scalar_function(
        "tt_audit_mac",
        13,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let entry = StoredEntry {
                prev_hash: ctx.get(0)?,
                seq: ctx.get(1)?,
                at_ms: ctx.get(2)?,
                actor_kind: ctx.get(3)?,
                actor_id: ctx.get(4)?,
                actor_name: ctx.get(5)?,
                action: ctx.get(6)?,
                target: ctx.get(7)?,
                client_addr: ctx.get(8)?,
                user_agent: ctx.get(9)?,
                route: ctx.get(10)?,
                outcome: ctx.get(11)?,
                details: ctx.get(12)?,
                hash: String::new(),
            };
            Ok(entry.keyed_hash(&key))
        },
    )?;
    Ok(())
}

/// The arguments of `tt_audit_mac` in its order, as SQL over `audit_log`'s
/// columns.
pub const MAC_OF_ROW: &str = "tt_audit_mac(prev_hash, seq, at_ms, actor_kind, actor_id, actor_name, \
     action, target, client_addr, user_agent, route, outcome, details)";

/// Refuses a key made just now (`new_key`) for a chain that holds entries:
/// they were written with another key (chains from before keys were
/// adopted by migration V11 with the key it found or made), and nothing
/// could verify them or what follows.
pub fn check_new_key(conn: &Connection, new_key: bool) -> Result<(), DbError> {
    if !new_key {
        return Ok(());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT hash = {MAC_OF_ROW} FROM audit_log ORDER BY seq DESC LIMIT 1"
    ))?;
    match stmt.query_row([], |row| row.get::<_, bool>(0)).optional()? {
        Some(false) => Err(DbError::AuditKey(
            "the audit trail was written with an audit key that is not here: restore audit.key \
             (from the backup taken with the database) into the data directory, or set \
             TOKENTALLY_AUDIT_KEY"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// An entry as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub route: Option<String>,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEntry {
    /// The keyed hash this entry must carry: HMAC-SHA-256 under `key` of
    /// the previous hash and the content.
    pub fn keyed_hash(&self, key: &AuditKey) -> String {
        key.mac(&["entry", &self.prev_hash, &self.content()])
    }

    /// The hash of an entry written before the chain was keyed: SHA-256
    /// over the previous hash and the content.
    pub fn unkeyed_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(self.content().as_bytes());
        crate::secret::hex(&hasher.finalize())
    }

    /// A JSON array of every column but the hashes (JSON, so that no value
    /// can be shifted into its neighbour's place without changing the
    /// digest).
    fn content(&self) -> String {
        json!([
            self.seq,
            self.at_ms,
            self.actor_kind,
            self.actor_id,
            self.actor_name,
            self.action,
            self.target,
            self.client_addr,
            self.user_agent,
            self.route,
            self.outcome,
            self.details,
        ])
        .to_string()
    }
}
