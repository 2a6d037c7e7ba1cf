//! The budget of new names: how many distinct models, activities,
//! projects, providers and sources ingestion may create per UTC day, per
//! API token and for the whole instance.
//!
//! Every new name is a new series on every page and a new row in every
//! rollup grouping that keeps it; an ingest token that invents a name per
//! event would make the overview slow for everyone and the file hundreds
//! of times larger. Within the budget nothing changes; past it the request
//! is refused whole with a 429 that names the budget and says when it
//! renews, and nothing of it is stored. Names that exist already cost
//! nothing, so a busy token is never refused for sending known names.
//! Imports from the command line (the operator's own) have no budget.

use rusqlite::Connection;

use super::rollup::Dim;
use crate::db::DbError;

const MS_PER_DAY: i64 = 86_400_000;

/// The two limits; 0 means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameLimits {
    pub per_token_per_day: u32,
    pub per_instance_per_day: u32,
}

impl Default for NameLimits {
    fn default() -> Self {
        // Far above what a team creates (a few new projects or tags a day,
        // a first import of a year's transcripts from one machine), far
        // below what slows the pages (BENCHMARKS.md).
        Self {
            per_token_per_day: 500,
            per_instance_per_day: 5_000,
        }
    }
}

/// Who is charged for new names, and when.
#[derive(Debug, Clone, Copy)]
pub struct NameBudget {
    pub limits: NameLimits,
    /// The API token sending the events.
    pub token_id: i64,
    pub now_ms: i64,
}

impl NameBudget {
    /// Charges one new name of `dim`; refuses it past either limit. Runs in
    /// the writer's transaction, so a refused request leaves no count.
    pub fn charge(&self, conn: &Connection, dim: Dim, name: &str) -> Result<(), DbError> {
        let day = self.now_ms.div_euclid(MS_PER_DAY);
        conn.prepare_cached("DELETE FROM new_names WHERE day < ?1")?
            .execute([day - 1])?;
        let mut count = conn.prepare_cached(
            "INSERT INTO new_names (day, token_id, names) VALUES (?1, ?2, 1)
             ON CONFLICT DO UPDATE SET names = names + 1 RETURNING names",
        )?;
        let limits = [
            (
                self.token_id,
                self.limits.per_token_per_day,
                "this token",
                "--max-new-names-per-token-per-day",
            ),
            (
                0,
                self.limits.per_instance_per_day,
                "this server",
                "--max-new-names-per-day",
            ),
        ];
        for (token_id, limit, whose, option) in limits {
            let names: i64 = count.query_row([day, token_id], |row| row.get(0))?;
            if limit > 0 && names > i64::from(limit) {
                let renew_in_s = ((day + 1) * MS_PER_DAY - self.now_ms + 999) / 1000;
                return Err(DbError::OverBudget {
                    message: format!(
                        "budget of new names exceeded: this request adds the new {} name {name:?}, \
                         but {whose} has created {limit} new names (models, activities, projects, \
                         providers, sources) today, its limit; nothing of this request was stored. \
                         The budget renews at 00:00 UTC; an administrator can raise it with {option}",
                        dim.name()
                    ),
                    retry_after_s: u64::try_from(renew_in_s.max(1)).unwrap_or(1),
                });
            }
        }
        Ok(())
    }
}
