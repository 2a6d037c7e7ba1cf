//! Loading a catalogue into the database: the embedded one at start, a
//! file or URL with `tokentally price sync`. Either way the change is
//! worked out first — entries added, changed, removed; the model names of
//! stored events whose entry or rates change, and what that does to their
//! events — and then, when asked, applied in the caller's transaction:
//! the table replaced and exactly those events re-priced (raw rows and
//! rollups together, [`super::reprice::Walker`]). Events an admin's price
//! covers keep it, reported costs are never touched.
//!
//! A synced file is refused whole when an entry would change a price by
//! more than [`MAX_CHANGE_FACTOR`] (a unit mistake more likely than a
//! price change); the embedded catalogue is reviewed in this repository
//! and is not held to it (a refusal would stop the server from starting).

use std::sync::Arc;

use rusqlite::Connection;

use super::catalogue::{self, Catalogue, EMBEDDED, Entry, Lookup, Meta, Origin, Refusal};
use super::dims;
use super::prices::PriceBook;
use super::reprice::{RepriceOutcome, Walk, Walker};
use super::rollup::Dim;
use crate::audit::{Entry as AuditEntry, chain};
use crate::db::DbError;
use crate::model::{Action, Actor, Outcome};

/// The most a synced file may change one price by: ×100 either way.
pub const MAX_CHANGE_FACTOR: i64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("refused, nothing changed: {0}")]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for SyncError {
    fn from(e: rusqlite::Error) -> Self {
        SyncError::Db(e.into())
    }
}

/// An entry in both catalogues with other rates or provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub before: Entry,
    pub after: Entry,
}

/// A model name of stored events whose catalogue entry (or its rates)
/// changes, and what that does to its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChange {
    pub model: String,
    /// The entry that priced it before, and after.
    pub before: Option<String>,
    pub after: Option<String>,
    /// Its events re-priced (or that would be) and the sum of their cost
    /// changes.
    pub outcome: RepriceOutcome,
}

/// What a catalogue change does (or did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub before: Option<Meta>,
    pub after: Meta,
    pub added: Vec<Entry>,
    pub changed: Vec<Changed>,
    pub removed: Vec<Entry>,
    pub unchanged: usize,
    pub models: Vec<ModelChange>,
    /// Whether it was written.
    pub applied: bool,
}

impl Plan {
    /// Every model's events together.
    pub fn total(&self) -> RepriceOutcome {
        let mut total = RepriceOutcome::default();
        for change in &self.models {
            total.examined += change.outcome.examined;
            total.repriced += change.outcome.repriced;
            total.cost_delta_micros = total
                .cost_delta_micros
                .saturating_add(change.outcome.cost_delta_micros);
        }
        total
    }

    /// The audit entry's details: counts and sums, never the entries.
    pub fn audit_details(&self) -> serde_json::Value {
        let total = self.total();
        serde_json::json!({
            "origin": self.after.origin.code(),
            "source": self.after.source,
            "version": self.after.version,
            "date": self.after.date,
            "digest": self.after.digest,
            "previous_digest": self.before.as_ref().map(|m| m.digest.clone()),
            "entries": self.after.entries,
            "added": self.added.len(),
            "changed": self.changed.len(),
            "removed": self.removed.len(),
            "models": self.models.len(),
            "repriced": total.repriced,
            "cost_delta_micros": total.cost_delta_micros,
        })
    }
}

/// How a change is checked and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Write the catalogue and re-price; else only count.
    pub write: bool,
    /// Refuse entries that change a price by more than [`MAX_CHANGE_FACTOR`].
    pub bound_changes: bool,
}

/// Works out (and with `mode.write`, applies) replacing the stored
/// catalogue with `new`, described by `after`. Runs in the caller's
/// transaction; without `write` it only reads.
pub fn run(
    conn: &Connection,
    new: Arc<Catalogue>,
    mut after: Meta,
    mode: Mode,
    now_ms: i64,
) -> Result<Plan, SyncError> {
    after.digest = new.digest();
    after.entries = new.len();
    let before = catalogue::store::meta(conn)?;
    let old = catalogue::store::load(conn)?;
    let mut plan = diff(&old, &new, before, after)?;
    if mode.bound_changes {
        for change in &plan.changed {
            bound_change(change)?;
        }
    }
    // Resolve every model name of stored events before and after: before
    // through the stored table (its derived columns are the rules it was
    // written under), after through the new catalogue.
    let stored = catalogue::store::Stored(conn);
    let mut moved = Vec::new();
    for (model_id, name) in dims::names(conn, Dim::Model)? {
        let was = catalogue::resolve(&stored, &name)?.map(|r| r.entry);
        let will = catalogue::resolve(new.as_ref() as &dyn Lookup, &name)?.map(|r| r.entry);
        if was != will {
            moved.push((model_id, name, was, will));
        }
    }
    moved.sort_by(|a, b| a.1.cmp(&b.1));
    if mode.write {
        catalogue::store::replace(conn, &new, &plan.after, now_ms)?;
    }
    let book = PriceBook::with_catalogue(conn, new)?;
    let providers = dims::names(conn, Dim::Provider)?;
    let walker = Walker {
        book: &book,
        providers: &providers,
        walk: if plan.before.is_none() {
            Walk::FirstCatalogue
        } else {
            Walk::Catalogue
        },
        write: mode.write,
    };
    for (model_id, name, was, will) in moved {
        let outcome = walker.model(conn, (model_id, &name), 0)?;
        plan.models.push(ModelChange {
            model: name,
            before: was.map(|e| e.name),
            after: will.map(|e| e.name),
            outcome,
        });
    }
    plan.applied = mode.write;
    Ok(plan)
}

fn diff(
    old: &Catalogue,
    new: &Catalogue,
    before: Option<Meta>,
    after: Meta,
) -> Result<Plan, SyncError> {
    let mut plan = Plan {
        before,
        after,
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        unchanged: 0,
        models: Vec::new(),
        applied: false,
    };
    for entry in new.entries() {
        match old.get(&entry.name) {
            None => plan.added.push(entry.clone()),
            Some(was) if was == entry => plan.unchanged += 1,
            Some(was) => plan.changed.push(Changed {
                before: was.clone(),
                after: entry.clone(),
            }),
        }
    }
    plan.removed = old
        .entries()
        .iter()
        .filter(|e| new.get(&e.name).is_none())
        .cloned()
        .collect();
    Ok(plan)
}

/// Refuses a change of any one component by more than
/// [`MAX_CHANGE_FACTOR`] (between two prices that are not zero: a model
/// that becomes free, or stops being free, is a real change).
fn bound_change(change: &Changed) -> Result<(), Refusal> {
    let components = |e: &Entry| {
        let r = &e.rates;
        let tier = r.tier.map(|t| t.rates.all()).unwrap_or_default();
        let base = r.base.all();
        [
            ("input", base[0]),
            ("output", base[1]),
            ("cache read", base[2]),
            ("cache write", base[3]),
            ("1-hour cache write", base[4]),
            ("long-context input", tier[0]),
            ("long-context output", tier[1]),
            ("long-context cache read", tier[2]),
            ("long-context cache write", tier[3]),
            ("long-context 1-hour cache write", tier[4]),
            ("web search", r.web_search_per_request.unwrap_or(0)),
        ]
    };
    for ((what, was), (_, will)) in components(&change.before)
        .into_iter()
        .zip(components(&change.after))
    {
        let too_far = was > 0
            && will > 0
            && (i128::from(will) > i128::from(was) * i128::from(MAX_CHANGE_FACTOR)
                || i128::from(was) > i128::from(will) * i128::from(MAX_CHANGE_FACTOR));
        if too_far {
            return Err(Refusal::entry(
                &change.after.name,
                format!(
                    "its {what} price would change from {} to {} (more than {MAX_CHANGE_FACTOR}×); \
                     a unit mistake? If the price is right, set it as an admin price",
                    crate::model::format::decimal(was),
                    crate::model::format::decimal(will)
                ),
            ));
        }
    }
    Ok(())
}

/// The description of the embedded catalogue.
pub fn embedded_meta() -> Meta {
    Meta {
        origin: Origin::Embedded,
        source: EMBEDDED.source(),
        version: Some(EMBEDDED.version.to_owned()),
        date: EMBEDDED.date.to_owned(),
        digest: String::new(),
        entries: 0,
        rules: catalogue::resolve::RULES_VERSION,
    }
}

/// At start: loads the embedded catalogue when none is stored, when the
/// stored one is an older embedded one, or when it is a synced file older
/// than the embedded data; re-derives the stored one when the resolution
/// rules changed. Re-prices what that changes and records it in the audit
/// trail (`price.sync`, by `system:start`). `None` when nothing changed.
/// Runs in the caller's transaction.
pub fn ensure_embedded(conn: &Connection, now_ms: i64) -> Result<Option<Plan>, SyncError> {
    let stored = catalogue::store::meta(conn)?;
    let embedded = Arc::new(Catalogue::embedded()?);
    let digest = embedded.digest();
    let newer = match &stored {
        None => true,
        Some(meta) if meta.origin == Origin::Embedded => {
            meta.digest != digest && EMBEDDED.date >= meta.date.as_str()
        }
        Some(meta) => EMBEDDED.date > meta.date.as_str(),
    };
    let mode = Mode {
        write: true,
        bound_changes: false,
    };
    let plan = if newer {
        run(conn, embedded, embedded_meta(), mode, now_ms)?
    } else {
        match stored {
            Some(meta) if meta.rules != catalogue::resolve::RULES_VERSION => {
                // Same entries, keys and ranks under the new rules.
                let again = Arc::new(catalogue::store::load(conn)?);
                let meta = Meta {
                    rules: catalogue::resolve::RULES_VERSION,
                    ..meta
                };
                run(conn, again, meta, mode, now_ms)?
            }
            _ => return Ok(None),
        }
    };
    let entry = AuditEntry {
        target: Some("catalogue".into()),
        details: plan.audit_details(),
        ..AuditEntry::new(
            now_ms,
            Actor::System("start".into()),
            Action::PriceSync,
            Outcome::Success,
        )
    };
    chain::append(conn, &[entry])?;
    Ok(Some(plan))
}

/// [`ensure_embedded`] at a start ([`crate::db::Db::open_with`]), logging
/// what it changed.
pub fn prepare(conn: &Connection) -> Result<(), DbError> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    match ensure_embedded(conn, now_ms) {
        Ok(None) => Ok(()),
        Ok(Some(plan)) => {
            let total = plan.total();
            tracing::info!(
                catalogue = %plan.after.label(),
                entries = plan.after.entries,
                added = plan.added.len(),
                changed = plan.changed.len(),
                removed = plan.removed.len(),
                repriced = total.repriced,
                "loaded the price catalogue"
            );
            Ok(())
        }
        Err(SyncError::Db(e)) => Err(e),
        Err(SyncError::Refused(refusal)) => Err(DbError::Check(format!(
            "the embedded price catalogue: {refusal}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::rates::Rates;

    fn change(before: [i64; 4], after: [i64; 4]) -> Changed {
        let entry = |per_mtok: [i64; 4]| Entry {
            name: "m".into(),
            provider: "openai".into(),
            rates: Rates::flat(&per_mtok),
        };
        Changed {
            before: entry(before),
            after: entry(after),
        }
    }

    #[test]
    fn a_price_may_change_a_hundredfold_and_no_more() {
        assert!(bound_change(&change([1_000_000, 1, 0, 0], [100_000_000, 1, 0, 0])).is_ok());
        assert!(bound_change(&change([1_000_000, 1, 0, 0], [10_000, 1, 0, 0])).is_ok());
        let refused = bound_change(&change([1_000_000, 1, 0, 0], [100_000_001, 1, 0, 0]));
        assert!(refused.is_err_and(|r| r.reason.contains("input price")));
        let refused = bound_change(&change([1_000_000, 1, 0, 0], [1_000_000, 101, 0, 0]));
        assert!(refused.is_err_and(|r| r.reason.contains("output price")));
        // Becoming free, or stopping being free, is a real change.
        assert!(bound_change(&change([1_000_000, 1, 0, 0], [0, 1, 0, 0])).is_ok());
        assert!(bound_change(&change([0, 1, 0, 0], [1_000_000_000, 1, 0, 0])).is_ok());
    }
}
