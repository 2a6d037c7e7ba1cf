//! What prices what, for `tokentally price list` and the Prices page: the
//! admins' prices, the catalogue loaded, and for the models of stored
//! events the price that applies to them now (an admin's, or the
//! catalogue entry their name resolves to, and by which rule).

use rusqlite::Connection;

use super::catalogue::{self, Entry, Meta, Rule};
use super::dims;
use super::prices::{Price, PriceBook, PricedBy};
use super::rates::Rates;
use super::rollup::{Cuboid, Dim};
use crate::db::DbError;

/// Who prices a model's events now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricedNow {
    /// An admin's price for any provider, in force now.
    Admin(Price),
    /// The catalogue entry the name resolves to, and the rule that found it.
    Catalogue { entry: Entry, rule: Rule },
    /// No price: its events are unpriced (unless a provider's own admin
    /// price covers some of them).
    Nothing,
}

/// A model of stored events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenModel {
    pub model: String,
    pub events: i64,
    pub unpriced_events: i64,
    pub priced_now: PricedNow,
}

impl SeenModel {
    /// The rates its new events would be priced at.
    pub fn rates(&self) -> Option<Rates> {
        match &self.priced_now {
            PricedNow::Admin(price) => Some(Rates::flat(&price.per_mtok)),
            PricedNow::Catalogue { entry, .. } => Some(entry.rates),
            PricedNow::Nothing => None,
        }
    }
}

/// Everything `price list` and the Prices page show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    pub admin: Vec<Price>,
    pub catalogue: Option<Meta>,
    /// The models with the most events first, at most the limit asked.
    pub models: Vec<SeenModel>,
    /// How many models stored events have in all.
    pub models_total: usize,
}

/// The price list at `now_ms`, with at most `limit` models of events.
pub fn read(conn: &Connection, now_ms: i64, limit: usize) -> Result<PriceList, DbError> {
    let admin = super::reprice::list(conn)?;
    let catalogue = catalogue::store::meta(conn)?;
    let names = dims::names(conn, Dim::Model)?;
    // Calls per model from the month rollups of the per-model cuboid (a
    // row per model and month), plus the raw events past the watermark
    // that the rollups do not hold yet.
    let mut stmt = conn.prepare_cached(
        "SELECT model_id, SUM(calls), SUM(unpriced) FROM (
             SELECT model_id, calls, unpriced_calls AS unpriced FROM rollup_month
             WHERE cuboid = ?1
             UNION ALL
             SELECT model_id, 1, cost_origin = 0 FROM events
             WHERE id > (SELECT event_id FROM rollup_watermark))
         GROUP BY model_id",
    )?;
    let mut counts: Vec<(i64, i64, i64)> = stmt
        .query_map([Cuboid::Model as i64], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    counts.retain(|(_, calls, _)| *calls > 0);
    let models_total = counts.len();
    counts.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| names.get(&a.0).cmp(&names.get(&b.0)))
    });
    counts.truncate(limit);
    let book = PriceBook::load(conn)?;
    let stored = catalogue::store::Stored(conn);
    let mut models = Vec::with_capacity(counts.len());
    for (model_id, events, unpriced_events) in counts {
        let Some(model) = names.get(&model_id) else {
            continue;
        };
        let priced_now = match book.find(conn, model, None, now_ms)? {
            Some(found) => match found.by {
                PricedBy::Admin(price) => PricedNow::Admin(price),
                PricedBy::Catalogue(_) => match catalogue::resolve(&stored, model)? {
                    Some(hit) => PricedNow::Catalogue {
                        entry: hit.entry,
                        rule: hit.rule,
                    },
                    None => PricedNow::Nothing,
                },
            },
            None => PricedNow::Nothing,
        };
        models.push(SeenModel {
            model: model.clone(),
            events,
            unpriced_events,
            priced_now,
        });
    }
    Ok(PriceList {
        admin,
        catalogue,
        models,
        models_total,
    })
}
