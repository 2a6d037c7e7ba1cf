//! The audit trail: every access and data retrieval, every login, admin
//! action, token and price change, as an append-only, hash-chained table.
//!
//! Requests are recorded by one middleware ([`trail`]) from what the
//! handler noted ([`Note`]) and what the request was (route, address,
//! user agent, status). Entries go to a queue that a background task
//! writes in batches through the single writer, so a request pays for a
//! channel send, not for a commit. Commands run from the shell (CLI) append
//! their entry in the same transaction as their change.

pub mod chain;
pub mod head;
/// The audit key lives with the connections that install it.
pub use crate::db::audit_key as key;
mod queue;
pub mod sample;
mod trail;

use serde_json::{Value, json};

pub use chain::{BrokenLink, ChainReport, StoredEntry};
pub use queue::Audit;
pub use trail::{ActorSlot, Note, RequestMeta, TrailState, trail};

pub use crate::model::{Action, Actor, Outcome};

/// One audit entry before it is chained.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at_ms: i64,
    pub actor: Actor,
    pub action: Action,
    pub target: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub route: Option<String>,
    pub outcome: Outcome,
    pub details: Value,
}

impl Entry {
    pub fn new(at_ms: i64, actor: Actor, action: Action, outcome: Outcome) -> Entry {
        Entry {
            at_ms,
            actor,
            action,
            target: None,
            client_addr: None,
            user_agent: None,
            route: None,
            outcome,
            details: json!({}),
        }
    }

    /// An entry for a change made from the command line, by the operator.
    pub fn from_cli(
        at_ms: i64,
        action: Action,
        target: impl Into<String>,
        details: Value,
    ) -> Entry {
        Entry {
            target: Some(target.into()),
            details,
            ..Entry::new(at_ms, Actor::System("cli".into()), action, Outcome::Success)
        }
    }
}

/// Records a change made from the command line, in the change's own
/// transaction (so the change and its entry land together or not at all).
pub fn record_cli(
    conn: &rusqlite::Connection,
    action: Action,
    target: impl Into<String>,
    details: Value,
) -> Result<(), crate::db::DbError> {
    let at_ms = jiff::Timestamp::now().as_millisecond();
    chain::append(conn, &[Entry::from_cli(at_ms, action, target, details)])
}
