//! The catalogue's tables (`price_catalogue`, `price_catalogue_meta`,
//! migration V17): replacing the catalogue, reading it back, and looking
//! names up through the indexes, which is how pricing uses it (an inserter
//! looks up the few model names of its batch, never loads the whole).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::resolve::{self, Lookup};
use super::{Catalogue, Entry, Meta, Origin};
use crate::db::DbError;
use crate::usage::rates::{Rates, Tier, TokenRates};

const COLUMNS: &str = "name, provider, input_per_mtok, output_per_mtok, cache_read_per_mtok,
     cache_write_per_mtok, cache_write_1h_per_mtok, tier_above_tokens, tier_input_per_mtok,
     tier_output_per_mtok, tier_cache_read_per_mtok, tier_cache_write_per_mtok,
     tier_cache_write_1h_per_mtok, web_search_per_request";

fn entry_of(row: &Row) -> rusqlite::Result<Entry> {
    let tier = match row.get::<_, Option<i64>>(7)? {
        Some(above_tokens) => Some(Tier {
            above_tokens,
            rates: TokenRates {
                input: row.get(8)?,
                output: row.get(9)?,
                cache_read: row.get(10)?,
                cache_write: row.get(11)?,
                cache_write_1h: row.get(12)?,
            },
        }),
        None => None,
    };
    Ok(Entry {
        name: row.get(0)?,
        provider: row.get(1)?,
        rates: Rates {
            base: TokenRates {
                input: row.get(2)?,
                output: row.get(3)?,
                cache_read: row.get(4)?,
                cache_write: row.get(5)?,
                cache_write_1h: row.get(6)?,
            },
            tier,
            web_search_per_request: row.get(13)?,
        },
    })
}

/// The stored catalogue's description; `None` before the first load.
pub fn meta(conn: &Connection) -> Result<Option<Meta>, DbError> {
    let meta = conn
        .prepare_cached(
            "SELECT origin, source, version, data_date, digest, entries, rules
             FROM price_catalogue_meta WHERE id = 1",
        )?
        .query_row([], |row| {
            let origin: String = row.get(0)?;
            Ok(Meta {
                origin: if origin == "sync" {
                    Origin::Sync
                } else {
                    Origin::Embedded
                },
                source: row.get(1)?,
                version: row.get(2)?,
                date: row.get(3)?,
                digest: row.get(4)?,
                entries: usize::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
                rules: row.get(6)?,
            })
        })
        .optional()?;
    Ok(meta)
}

/// Every stored entry, by name.
pub fn load(conn: &Connection) -> Result<Catalogue, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM price_catalogue ORDER BY name"
    ))?;
    let entries = stmt
        .query_map([], entry_of)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Catalogue::new(entries))
}

/// Replaces the stored catalogue with `catalogue`, described by `meta`,
/// in the caller's transaction; derived columns follow the current rules.
pub fn replace(
    conn: &Connection,
    catalogue: &Catalogue,
    meta: &Meta,
    now_ms: i64,
) -> Result<(), DbError> {
    conn.prepare_cached("DELETE FROM price_catalogue")?
        .execute([])?;
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO price_catalogue ({COLUMNS}, canonical, canonical_dated, preference)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))?;
    for entry in catalogue.entries() {
        let base = &entry.rates.base;
        let tier = entry.rates.tier.as_ref();
        let tier_rate = |pick: fn(&TokenRates) -> i64| tier.map(|t| pick(&t.rates));
        let keys = resolve::canonical(&entry.name);
        insert.execute(params![
            entry.name,
            entry.provider,
            base.input,
            base.output,
            base.cache_read,
            base.cache_write,
            base.cache_write_1h,
            tier.map(|t| t.above_tokens),
            tier_rate(|r| r.input),
            tier_rate(|r| r.output),
            tier_rate(|r| r.cache_read),
            tier_rate(|r| r.cache_write),
            tier_rate(|r| r.cache_write_1h),
            entry.rates.web_search_per_request,
            keys.key,
            keys.dated,
            resolve::preference(&entry.name, &entry.provider),
        ])?;
    }
    conn.prepare_cached(
        "INSERT INTO price_catalogue_meta (id, origin, source, version, data_date, digest,
             rules, entries, loaded_at_ms)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET origin = excluded.origin, source = excluded.source,
             version = excluded.version, data_date = excluded.data_date,
             digest = excluded.digest, rules = excluded.rules, entries = excluded.entries,
             loaded_at_ms = excluded.loaded_at_ms",
    )?
    .execute(params![
        meta.origin.code(),
        meta.source,
        meta.version,
        meta.date,
        meta.digest,
        meta.rules,
        i64::try_from(catalogue.len()).unwrap_or(i64::MAX),
        now_ms,
    ])?;
    Ok(())
}

/// Entries whose name contains `query` (any case), by name; at most
/// `limit`, and whether there were more.
pub fn search(conn: &Connection, query: &str, limit: usize) -> Result<(Vec<Entry>, bool), DbError> {
    let pattern = format!(
        "%{}%",
        query
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM price_catalogue
         WHERE lower(name) LIKE ?1 ESCAPE '\\' ORDER BY name LIMIT ?2"
    ))?;
    let mut entries = stmt
        .query_map(
            params![pattern, i64::try_from(limit + 1).unwrap_or(i64::MAX)],
            entry_of,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    Ok((entries, more))
}

/// The stored catalogue as a [`Lookup`]: each name through its index.
pub struct Stored<'c>(pub &'c Connection);

impl Lookup for Stored<'_> {
    fn exact(&self, name: &str) -> Result<Option<Entry>, DbError> {
        let entry = self
            .0
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM price_catalogue WHERE name = ?1"
            ))?
            .query_row([name], entry_of)
            .optional()?;
        Ok(entry)
    }

    fn by_key(&self, key: &str, dated: bool) -> Result<Option<Entry>, DbError> {
        // Two statements (each names its index), not a column chosen by text.
        let sql = if dated {
            "SELECT {COLUMNS} FROM price_catalogue INDEXED BY price_catalogue_by_dated
             WHERE canonical_dated = ?1 ORDER BY preference, name LIMIT 1"
        } else {
            "SELECT {COLUMNS} FROM price_catalogue INDEXED BY price_catalogue_by_canonical
             WHERE canonical = ?1 ORDER BY preference, name LIMIT 1"
        };
        let entry = self
            .0
            .prepare_cached(&sql.replace("{COLUMNS}", COLUMNS))?
            .query_row([key], entry_of)
            .optional()?;
        Ok(entry)
    }
}
