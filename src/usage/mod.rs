//! The usage store: raw events, their rollups, prices, and the one query
//! layer every page, export and report goes through. Every query takes a
//! [`Scope`], so what a caller may see is decided by its type, not by a
//! parameter it could forge.

pub mod buckets;
pub mod dims;
pub mod plan;
pub mod prices;
pub mod query;
pub mod rollup;
pub mod store;

use rusqlite::{Connection, Row};

use crate::auth::{User, UserId};
use crate::db::DbError;

/// Whose usage a query may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One user's own usage.
    User(UserId),
    /// Everyone's usage (admins only).
    Everyone,
}

impl Scope {
    /// The widest scope `user` may read: an admin sees everyone, a member
    /// sees only their own usage.
    pub fn widest_for(user: &User) -> Scope {
        if user.is_admin() {
            Scope::Everyone
        } else {
            Scope::User(user.id)
        }
    }

    fn user_filter(self) -> Option<i64> {
        match self {
            Scope::User(id) => Some(id.0),
            Scope::Everyone => None,
        }
    }
}

/// A half-open range of Unix milliseconds, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micros: i64,
    /// Calls with no known price; their cost is not in `cost_micros`.
    pub unpriced_calls: i64,
}

impl Totals {
    /// Adds `other` field by field.
    pub fn add(&mut self, other: &Totals) {
        self.calls += other.calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.cost_micros += other.cost_micros;
        self.unpriced_calls += other.unpriced_calls;
    }

    /// Adds `other` times `sign` (+1 or -1).
    pub fn add_signed(&mut self, other: &Totals, sign: i64) {
        self.calls += sign * other.calls;
        self.input_tokens += sign * other.input_tokens;
        self.output_tokens += sign * other.output_tokens;
        self.cache_read_tokens += sign * other.cache_read_tokens;
        self.cache_write_tokens += sign * other.cache_write_tokens;
        self.cost_micros += sign * other.cost_micros;
        self.unpriced_calls += sign * other.unpriced_calls;
    }

    pub fn all_tokens(&self) -> i64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    fn from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<Totals> {
        Ok(Totals {
            calls: row.get(first)?,
            input_tokens: row.get(first + 1)?,
            output_tokens: row.get(first + 2)?,
            cache_read_tokens: row.get(first + 3)?,
            cache_write_tokens: row.get(first + 4)?,
            cost_micros: row.get(first + 5)?,
            unpriced_calls: row.get(first + 6)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTotals {
    pub model: String,
    pub totals: Totals,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub totals: Totals,
    pub by_model: Vec<ModelTotals>,
}

const TOTAL_COLUMNS: &str = "COUNT(*), \
     COALESCE(SUM(e.input_tokens), 0), COALESCE(SUM(e.output_tokens), 0), \
     COALESCE(SUM(e.cache_read_tokens), 0), COALESCE(SUM(e.cache_write_tokens), 0), \
     COALESCE(SUM(e.cost_micros), 0), COALESCE(SUM(e.cost_origin = 0), 0)";

/// Totals over `range` for `scope`, and the same split by model (largest
/// cost first).
pub fn summary(conn: &Connection, scope: Scope, range: Range) -> Result<Summary, DbError> {
    let user = scope.user_filter();
    let mut totals_stmt = conn.prepare_cached(&format!(
        "SELECT {TOTAL_COLUMNS} FROM events e
         WHERE e.ts_ms >= ?1 AND e.ts_ms < ?2 AND (?3 IS NULL OR e.user_id = ?3)"
    ))?;
    let totals = totals_stmt
        .query_row(rusqlite::params![range.from_ms, range.to_ms, user], |row| {
            Totals::from_row(row, 0)
        })?;
    let mut by_model_stmt = conn.prepare_cached(&format!(
        "SELECT m.name, {TOTAL_COLUMNS} FROM events e JOIN models m ON m.id = e.model_id
         WHERE e.ts_ms >= ?1 AND e.ts_ms < ?2 AND (?3 IS NULL OR e.user_id = ?3)
         GROUP BY m.name ORDER BY 7 DESC, m.name"
    ))?;
    let by_model = by_model_stmt
        .query_map(rusqlite::params![range.from_ms, range.to_ms, user], |row| {
            Ok(ModelTotals {
                model: row.get(0)?,
                totals: Totals::from_row(row, 1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Summary { totals, by_model })
}
