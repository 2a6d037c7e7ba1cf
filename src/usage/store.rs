//! Writing events: dimension ids, price and dedup, in the caller's
//! transaction (run it through the database writer). The rollups follow
//! later (`rollup::roll`); reads add the events they do not hold yet.

use rusqlite::{Connection, params};

use super::dims::{Interner, Label};
use super::limits;
use super::prices::PriceBook;
use super::rates::{Extras, Usage};
use super::rollup::{self, Delta, Dim, DimValues};
use crate::db::DbError;
use crate::model::IdentityKey;
use crate::model::UserId;

pub use super::rollup::{CostOrigin, event_metrics};

/// An event as a producer describes it, validated and attributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub ts_ms: i64,
    pub user: UserId,
    pub source: String,
    /// The producer's id of the call: the dedup key with source and user.
    pub external_id: String,
    pub model: String,
    pub provider: Option<String>,
    pub activity: Option<String>,
    pub project: Option<String>,
    /// Input (without cache), output, cache read, cache write.
    pub tokens: [i64; 4],
    /// The 1-hour share of cache writes, web searches, one request or
    /// several: what a price needs beyond the four counts.
    pub extras: Extras,
    /// The producer's own cost, if it sent one.
    pub reported_cost_micros: Option<i64>,
    /// Where the call was made: the producer's session and the machine.
    /// Stored on the raw event only, never rolled up; not part of what
    /// makes a re-sent event a conflict (the same call seen from another
    /// machine is still the same call).
    pub session: Option<String>,
    pub machine: Option<String>,
    /// The producer's name for the person (collector tokens): when set,
    /// the store attributes the event by it — to the account it is linked
    /// to, or held as unassigned — instead of to `user`.
    pub identity: Option<IdentityKey>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Events stored by this call.
    pub accepted: usize,
    /// The earliest and latest time of the events stored (`None` when
    /// none was): what budgets watching the current period look at.
    pub span: Option<(i64, i64)>,
    /// Events whose dedup key was already stored: acknowledged, not counted.
    pub duplicates: usize,
    /// Of the duplicates, those whose content differs from what is stored
    /// under their id (time, names, counts or reported cost): the stored
    /// version stands; the sender is told, since it is likely a bug in how
    /// it makes ids.
    pub conflicts: usize,
}

impl InsertOutcome {
    /// Adds what another insert did (of the same transaction).
    pub fn merge(&mut self, other: &InsertOutcome) {
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.conflicts += other.conflicts;
        if let Some((first, last)) = other.span {
            self.widen(first);
            self.widen(last);
        }
    }

    /// Widens the span of stored times to `ts_ms`.
    fn widen(&mut self, ts_ms: i64) {
        self.span = Some(match self.span {
            None => (ts_ms, ts_ms),
            Some((first, last)) => (first.min(ts_ms), last.max(ts_ms)),
        });
    }
}

/// Inserts batches of events; keeps dimension ids and prices between
/// batches of one transaction.
pub struct Inserter {
    interner: Interner,
    prices: PriceBook,
    /// Identities resolved by this inserter: (identity id, owner).
    identities: std::collections::HashMap<IdentityKey, (i64, UserId)>,
    /// Per identity id, the earliest and latest event time this inserter
    /// stored for it since the last `insert` ended.
    seen: std::collections::HashMap<i64, (i64, i64)>,
}

impl Inserter {
    pub fn new(conn: &Connection) -> Result<Inserter, DbError> {
        Ok(Inserter {
            interner: Interner::default(),
            prices: PriceBook::load(conn)?,
            identities: Default::default(),
            seen: Default::default(),
        })
    }

    /// Charges the new names this inserter creates to `budget`.
    pub fn with_budget(mut self, budget: super::budget::NameBudget) -> Inserter {
        self.interner.budget = Some(budget);
        self
    }

    /// Stores `events` that are new. They reach the rollups when the
    /// roller folds them (reads count them before that).
    pub fn insert(
        &mut self,
        conn: &Connection,
        events: &[NewEvent],
    ) -> Result<InsertOutcome, DbError> {
        let mut insert = conn.prepare_cached(
            "INSERT OR IGNORE INTO events (ts_ms, user_id, source_id, external_id, model_id,
                 provider_id, activity_id, project_id, input_tokens, output_tokens,
                 cache_read_tokens, cache_write_tokens, cost_micros, cost_origin,
                 session_id, machine_id, identity_id, cache_write_1h_tokens,
                 web_search_requests, one_request)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20)",
        )?;
        let mut outcome = InsertOutcome::default();
        let watermark = rollup::watermark(conn)?;
        // Events that got an id the roller has passed already (SQLite
        // reuses the highest ids when they were deleted): folded now.
        let mut deltas = Vec::new();
        for event in events {
            check_limits(event)?;
            let (identity, owner) = self.owner(conn, event)?;
            let mut dims = self.dim_values(conn, event)?;
            dims.user = owner.0;
            let (cost, origin) = self.cost_of(conn, event)?;
            let session = self
                .interner
                .label_id(conn, Label::Session, event.session.as_deref())?;
            let machine = self
                .interner
                .label_id(conn, Label::Machine, event.machine.as_deref())?;
            let null_if_none = |id: i64| (id != 0).then_some(id);
            let stored = insert.execute(params![
                event.ts_ms,
                dims.user,
                dims.source,
                event.external_id,
                dims.model,
                null_if_none(dims.provider),
                null_if_none(dims.activity),
                null_if_none(dims.project),
                event.tokens[0],
                event.tokens[1],
                event.tokens[2],
                event.tokens[3],
                cost,
                origin as i64,
                session,
                machine,
                identity,
                event.extras.cache_write_1h,
                event.extras.web_search_requests,
                event.extras.one_request,
            ])?;
            if stored == 0 {
                outcome.duplicates += 1;
                if differs_from_stored(conn, event, &dims)? {
                    outcome.conflicts += 1;
                }
                continue;
            }
            outcome.accepted += 1;
            outcome.widen(event.ts_ms);
            if conn.last_insert_rowid() <= watermark {
                deltas.push(Delta {
                    ts_ms: event.ts_ms,
                    dims,
                    metrics: event_metrics(&event.tokens, cost, origin),
                });
            }
        }
        rollup::apply(conn, &deltas)?;
        for (id, (first_ms, last_ms)) in self.seen.drain() {
            super::identities::seen(conn, id, first_ms, last_ms)?;
        }
        Ok(outcome)
    }

    /// Whose event it is: `event.user`, or the account its identity's
    /// usage goes to (resolved once per identity and inserter).
    fn owner(
        &mut self,
        conn: &Connection,
        event: &NewEvent,
    ) -> Result<(Option<i64>, UserId), DbError> {
        let Some(key) = &event.identity else {
            return Ok((None, event.user));
        };
        let (id, owner) = match self.identities.get(key) {
            Some(&resolved) => resolved,
            None => {
                let budget = self.interner.budget.as_ref();
                let resolved = super::identities::resolve(conn, key, event.ts_ms, budget)?;
                self.identities.insert(key.clone(), resolved);
                resolved
            }
        };
        let seen = self.seen.entry(id).or_insert((event.ts_ms, event.ts_ms));
        *seen = (seen.0.min(event.ts_ms), seen.1.max(event.ts_ms));
        Ok((Some(id), owner))
    }

    fn dim_values(&mut self, conn: &Connection, event: &NewEvent) -> Result<DimValues, DbError> {
        let interner = &mut self.interner;
        Ok(DimValues {
            user: event.user.0,
            model: interner.id(conn, Dim::Model, &event.model)?,
            activity: interner.optional_id(conn, Dim::Activity, event.activity.as_deref())?,
            project: interner.optional_id(conn, Dim::Project, event.project.as_deref())?,
            source: interner.id(conn, Dim::Source, &event.source)?,
            provider: interner.optional_id(conn, Dim::Provider, event.provider.as_deref())?,
        })
    }

    /// The event's cost and its origin: the producer's report, else the
    /// price book's ([`PriceBook::cost`] decides who wins).
    fn cost_of(&self, conn: &Connection, event: &NewEvent) -> Result<(i64, CostOrigin), DbError> {
        if let Some(reported) = event.reported() {
            return Ok((reported, CostOrigin::Reported));
        }
        self.prices.cost(
            conn,
            &event.model,
            event.provider.as_deref(),
            event.ts_ms,
            &Usage::of_event(&event.tokens, &event.extras),
        )
    }
}

impl NewEvent {
    /// The reported cost pricing counts ([`super::prices::reported_cost`]:
    /// a reported 0 for a call with tokens is none).
    pub fn reported(&self) -> Option<i64> {
        super::prices::reported_cost(self.reported_cost_micros, &self.tokens)
    }
}

/// Whether the event stored under `event`'s dedup key says something else.
fn differs_from_stored(
    conn: &Connection,
    event: &NewEvent,
    dims: &DimValues,
) -> Result<bool, DbError> {
    let stored = conn
        .prepare_cached(
            "SELECT ts_ms, model_id, COALESCE(provider_id, 0), COALESCE(activity_id, 0),
                    COALESCE(project_id, 0), input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens, CASE cost_origin WHEN 2 THEN cost_micros END,
                    cache_write_1h_tokens, web_search_requests
             FROM events WHERE source_id = ?1 AND user_id = ?2 AND external_id = ?3",
        )?
        .query_row(params![dims.source, dims.user, event.external_id], |row| {
            (0..12)
                .map(|i| row.get::<_, Option<i64>>(i))
                .collect::<Result<Vec<_>, _>>()
        })?;
    let sent = [
        Some(event.ts_ms),
        Some(dims.model),
        Some(dims.provider),
        Some(dims.activity),
        Some(dims.project),
        Some(event.tokens[0]),
        Some(event.tokens[1]),
        Some(event.tokens[2]),
        Some(event.tokens[3]),
        event.reported(),
        Some(event.extras.cache_write_1h),
        Some(event.extras.web_search_requests),
    ];
    Ok(stored != sent)
}

/// The last line of defence of [`limits`]: every event the store writes is
/// within the per-event maximums, whichever path built it.
fn check_limits(event: &NewEvent) -> Result<(), DbError> {
    let counts = event.tokens.iter().map(|n| limits::check_tokens(*n));
    let extras = [
        limits::check_tokens(event.extras.cache_write_1h),
        limits::check_web_searches(event.extras.web_search_requests),
    ];
    let share = (event.extras.cache_write_1h > event.tokens[3])
        .then(|| Err("the 1-hour cache writes exceed the cache writes".to_owned()));
    let cost = event.reported_cost_micros.map(limits::check_cost);
    match counts
        .chain(extras)
        .chain(share)
        .chain(cost)
        .find_map(Result::err)
    {
        Some(reason) => Err(DbError::Refused(format!(
            "event {:?}: a count or the cost {reason}",
            event.external_id
        ))),
        None => Ok(()),
    }
}
