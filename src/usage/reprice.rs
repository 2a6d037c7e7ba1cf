//! Changing the price table, and re-pricing what it changes.
//!
//! A price row applies to the events of its model from its effective-from
//! instant on. Adding, replacing or removing one can therefore change the
//! cost of those events only: we walk them through the
//! `events_by_model_time` index from that instant, recompute each cost with
//! the whole new price book (so a provider's own row and later rows keep
//! winning where they are in force), rewrite the rows whose cost changed,
//! and fold the differences into the rollups. Everything runs in the
//! caller's transaction (the writer's), so raw rows and rollups change
//! together or not at all. Events whose producer reported a cost are never
//! re-priced: the producer knows what it was billed.
//!
//! A change of the catalogue (`usage::price_sync`) walks the same way, the
//! events priced from the catalogue or unpriced only, and can walk without
//! writing to say what a change would do.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::Totals;
use super::dims;
use super::prices::{Price, PriceBook, base_model};
use super::rates::{Extras, Usage};
use super::rollup::{self, Delta, Dim, DimValues};
use super::store::{CostOrigin, event_metrics};
use crate::db::DbError;

/// Events read per step of a re-pricing walk; bounds its memory.
const EVENTS_PER_STEP: i64 = 50_000;

/// What a change to the price table did (or would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepriceOutcome {
    /// Events of the model at or after the change that were looked at.
    pub examined: usize,
    /// Events whose cost (or priced/unpriced state) changed.
    pub repriced: usize,
    /// The sum of their cost changes, in micro-units.
    pub cost_delta_micros: i64,
}

impl RepriceOutcome {
    fn add(&mut self, other: RepriceOutcome) -> Result<(), DbError> {
        self.examined += other.examined;
        self.repriced += other.repriced;
        self.cost_delta_micros = self
            .cost_delta_micros
            .checked_add(other.cost_delta_micros)
            .ok_or(crate::model::Overflow)?;
        Ok(())
    }
}

/// Which events a walk may re-price, by how their cost was found. Reported
/// costs are never in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// An admin's price changed: unpriced, admin-priced and
    /// catalogue-priced events (an admin's price may take over from the
    /// catalogue, or give back to it).
    PriceTable,
    /// The catalogue changed: unpriced and catalogue-priced events (an
    /// admin's price still wins where it applies).
    Catalogue,
    /// The first catalogue: every event but reported ones, so that those
    /// the seeded prices priced (removed by V17) move to the catalogue.
    FirstCatalogue,
}

impl Walk {
    fn origins(self) -> &'static str {
        match self {
            Walk::PriceTable | Walk::FirstCatalogue => "0, 1, 3",
            Walk::Catalogue => "0, 3",
        }
    }
}

/// Every row of the price table, by model, provider and date.
pub fn list(conn: &Connection) -> Result<Vec<Price>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT model, provider, effective_from_ms, input_per_mtok, output_per_mtok,
                cache_read_per_mtok, cache_write_per_mtok
         FROM prices ORDER BY model, provider, effective_from_ms",
    )?;
    let prices = stmt
        .query_map([], |row| {
            Ok(Price {
                model: row.get(0)?,
                provider: row.get(1)?,
                effective_from_ms: row.get(2)?,
                per_mtok: [row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?],
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(prices)
}

/// Adds `price`, or replaces the row of the same model, provider and
/// effective-from instant; then re-prices the events it applies to.
pub fn set(conn: &Connection, price: &Price, now_s: i64) -> Result<RepriceOutcome, DbError> {
    conn.prepare_cached(
        "INSERT INTO prices (model, provider, effective_from_ms, input_per_mtok,
             output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (model, provider, effective_from_ms) DO UPDATE SET
             input_per_mtok = excluded.input_per_mtok,
             output_per_mtok = excluded.output_per_mtok,
             cache_read_per_mtok = excluded.cache_read_per_mtok,
             cache_write_per_mtok = excluded.cache_write_per_mtok,
             created_at = excluded.created_at",
    )?
    .execute(params![
        price.model,
        price.provider,
        price.effective_from_ms,
        price.per_mtok[0],
        price.per_mtok[1],
        price.per_mtok[2],
        price.per_mtok[3],
        now_s,
    ])?;
    reprice_model(conn, &price.model, price.effective_from_ms)
}

/// Removes one price row; `None` when there was no such row. The events it
/// priced fall back to the price in force before it, or become unpriced.
pub fn remove(
    conn: &Connection,
    model: &str,
    provider: &str,
    effective_from_ms: i64,
) -> Result<Option<RepriceOutcome>, DbError> {
    let removed = conn
        .prepare_cached(
            "DELETE FROM prices WHERE model = ?1 AND provider = ?2 AND effective_from_ms = ?3
             RETURNING id",
        )?
        .query_row(params![model, provider, effective_from_ms], |row| {
            row.get::<_, i64>(0)
        })
        .optional()?;
    match removed {
        Some(_) => Ok(Some(reprice_model(conn, model, effective_from_ms)?)),
        None => Ok(None),
    }
}

/// One event as a re-pricing walk reads it.
struct Priced {
    id: i64,
    ts_ms: i64,
    dims: DimValues,
    tokens: [i64; 4],
    extras: Extras,
    cost_micros: i64,
    origin: CostOrigin,
}

/// Recomputes the cost of every event of `model`, and of its dated ids
/// (`model-20250929`), at or after `since_ms` that is priced from the table
/// or the catalogue, or unpriced.
pub fn reprice_model(
    conn: &Connection,
    model: &str,
    since_ms: i64,
) -> Result<RepriceOutcome, DbError> {
    let book = PriceBook::load(conn)?;
    let providers = dims::names(conn, Dim::Provider)?;
    let mut outcome = RepriceOutcome::default();
    for (model_id, name) in dims::names(conn, Dim::Model)? {
        if name == model || base_model(&name) == model {
            let walk = Walker {
                book: &book,
                providers: &providers,
                walk: Walk::PriceTable,
                write: true,
            };
            outcome.add(walk.model(conn, (model_id, &name), since_ms)?)?;
        }
    }
    Ok(outcome)
}

/// A re-pricing walk over one model's events at a time.
pub struct Walker<'a> {
    /// The prices events are re-priced at.
    pub book: &'a PriceBook,
    /// Provider names by id ([`dims::names`]).
    pub providers: &'a HashMap<i64, String>,
    pub walk: Walk,
    /// `false`: count and sum what would change, write nothing.
    pub write: bool,
}

impl Walker<'_> {
    /// Walks the events of `model` at or after `since_ms`.
    pub fn model(
        &self,
        conn: &Connection,
        (model_id, model): (i64, &str),
        since_ms: i64,
    ) -> Result<RepriceOutcome, DbError> {
        let mut outcome = RepriceOutcome::default();
        if self.write {
            // The cost deltas below meet rollups holding every event.
            rollup::roll_all(conn)?;
        }
        // Keyset over the (model_id, ts_ms, id) index: each step resumes
        // after the last event of the previous one.
        let mut after = (since_ms - 1, i64::MAX);
        loop {
            let step = read_step(conn, model_id, after, self.walk)?;
            let Some(last) = step.last() else { break };
            after = (last.ts_ms, last.id);
            outcome.examined += step.len();
            let mut deltas = Vec::new();
            for event in &step {
                let provider = self.providers.get(&event.dims.provider).map(String::as_str);
                let usage = Usage::of_event(&event.tokens, &event.extras);
                let (cost, origin) = self.book.cost(conn, model, provider, event.ts_ms, &usage)?;
                if (cost, origin) == (event.cost_micros, event.origin) {
                    continue;
                }
                outcome.repriced += 1;
                outcome.cost_delta_micros = outcome
                    .cost_delta_micros
                    .checked_add(cost - event.cost_micros)
                    .ok_or(crate::model::Overflow)?;
                if self.write {
                    update_cost(conn, event.id, cost, origin)?;
                    // Only the origin changed (an admin's price and the
                    // catalogue's agree): nothing for the rollups.
                    let delta = cost_change(event, cost, origin)?;
                    if delta.metrics != Totals::default() {
                        deltas.push(delta);
                    }
                }
            }
            if self.write {
                rollup::apply(conn, &deltas)?;
            }
        }
        Ok(outcome)
    }
}

fn read_step(
    conn: &Connection,
    model_id: i64,
    after: (i64, i64),
    walk: Walk,
) -> Result<Vec<Priced>, DbError> {
    // One statement per walk kind: the origins are part of its text.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, ts_ms, user_id, source_id, provider_id, activity_id, project_id,
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                cost_micros, cost_origin, cache_write_1h_tokens, web_search_requests,
                one_request
         FROM events INDEXED BY events_by_model_time
         WHERE model_id = ?1 AND (ts_ms > ?2 OR (ts_ms = ?2 AND id > ?3))
           AND cost_origin IN ({})
         ORDER BY ts_ms, id
         LIMIT ?4",
        walk.origins()
    ))?;
    let rows = stmt.query_map(
        params![model_id, after.0, after.1, EVENTS_PER_STEP],
        |row| {
            Ok(Priced {
                id: row.get(0)?,
                ts_ms: row.get(1)?,
                dims: DimValues {
                    user: row.get(2)?,
                    model: model_id,
                    source: row.get(3)?,
                    provider: row.get::<_, Option<i64>>(4)?.unwrap_or(0),
                    activity: row.get::<_, Option<i64>>(5)?.unwrap_or(0),
                    project: row.get::<_, Option<i64>>(6)?.unwrap_or(0),
                },
                tokens: [row.get(7)?, row.get(8)?, row.get(9)?, row.get(10)?],
                extras: Extras {
                    cache_write_1h: row.get(13)?,
                    web_search_requests: row.get(14)?,
                    one_request: row.get(15)?,
                },
                cost_micros: row.get(11)?,
                origin: CostOrigin::from_column(row.get(12)?),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn update_cost(conn: &Connection, id: i64, cost: i64, origin: CostOrigin) -> Result<(), DbError> {
    conn.prepare_cached("UPDATE events SET cost_micros = ?2, cost_origin = ?3 WHERE id = ?1")?
        .execute(params![id, cost, origin as i64])?;
    Ok(())
}

/// The rollup change of an event going from its old cost to a new one:
/// the new metrics minus the old, so calls and tokens stay as they are.
fn cost_change(event: &Priced, cost: i64, origin: CostOrigin) -> Result<Delta, DbError> {
    let mut metrics = Totals::default();
    metrics.checked_add_signed(&event_metrics(&event.tokens, cost, origin), 1)?;
    metrics.checked_add_signed(
        &event_metrics(&event.tokens, event.cost_micros, event.origin),
        -1,
    )?;
    Ok(Delta {
        ts_ms: event.ts_ms,
        dims: event.dims,
        metrics,
    })
}
