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

use crate::db::DbError;

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
            let entry = super::chain::StoredEntry {
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
