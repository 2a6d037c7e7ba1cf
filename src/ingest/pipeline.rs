//! The steps every ingestion endpoint shares: parse each item of a body
//! into events (all or nothing), decide whose events they are, and store
//! them through the group-committing writer.

use std::collections::HashMap;

use serde_json::Value;

use super::IngestState;
use super::Sender;
use super::error::{FieldError, IngestError};
use super::event::{ApiEvent, Problem};
use crate::audit::chain;
use crate::auth::tokens::TokenGrant;
use crate::auth::users;
use crate::db::DbError;
use crate::model::UserId;
use crate::usage::store::{InsertOutcome, Inserter, NewEvent};

/// One item of a body: its NDJSON line (if any) and its JSON, or why the
/// line is not JSON.
pub type Item = (Option<usize>, Result<Value, String>);

/// What a producer's item turned into: an event, or nothing worth storing
/// (counted under its reason, e.g. a failed call with no tokens).
// Each value is moved once into a Vec of events; boxing would only add an
// allocation per event.
#[allow(clippy::large_enum_variant)]
pub enum Mapped {
    Event(ApiEvent),
    Skipped(&'static str),
}

/// Every item's event; any problem fails the whole request, listing each.
pub fn parse_items(
    items: Vec<Item>,
    max_events: usize,
    parse: impl Fn(&Value) -> Result<Mapped, Vec<Problem>>,
) -> Result<(Vec<ApiEvent>, HashMap<&'static str, usize>), IngestError> {
    if items.len() > max_events {
        return Err(IngestError::TooLarge(format!(
            "{} events in one request; send at most {max_events}",
            items.len()
        )));
    }
    let mut events = Vec::with_capacity(items.len());
    let mut skipped: HashMap<&'static str, usize> = HashMap::new();
    let mut errors = Vec::new();
    for (index, (line, value)) in items.into_iter().enumerate() {
        let mapped = match value {
            Ok(value) => parse(&value),
            Err(reason) => Err(vec![(None, reason)]),
        };
        match mapped {
            Ok(Mapped::Event(event)) => events.push(event),
            Ok(Mapped::Skipped(reason)) => *skipped.entry(reason).or_default() += 1,
            Err(problems) => {
                errors.extend(problems.into_iter().map(|(field, reason)| FieldError {
                    index,
                    line,
                    field,
                    reason,
                }))
            }
        }
    }
    if !errors.is_empty() {
        return Err(IngestError::Invalid(errors));
    }
    Ok((events, skipped))
}

/// What to do with an event that names a user the token may not send for,
/// or one that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// Refuse the request, naming the event (our own API: the sender
    /// chose the name).
    Strict,
    /// Attribute it to the token's owner and count it (a proxy's webhook,
    /// whose user ids need not be tokentally users: never lose its data).
    OwnerFallback,
}

/// Events with their users, and how many fell back to the token's owner.
pub struct Attributed {
    pub events: Vec<NewEvent>,
    pub unattributed: usize,
}

/// Whose events these are. A collector token's event that names an
/// identity is the identity's (`NewEvent::identity`; the store resolves
/// it); every other event is the token owner's or, for an admin's token
/// (a collector's included), the user it names. Identities from any other
/// token are dropped: a member's token always sends its owner's usage,
/// whoever the body names.
pub async fn attribute(
    state: &IngestState,
    grant: &TokenGrant,
    events: Vec<ApiEvent>,
    policy: Attribution,
) -> Result<Attributed, IngestError> {
    let owner = grant.user.clone();
    let by_identity = grant.attributes_by_identity();
    let is_owner = |name: &str| name.eq_ignore_ascii_case(&owner.username);
    // Each name once: a batch of a thousand events names a few users.
    let named: Vec<String> = events
        .iter()
        .filter(|e| !(by_identity && e.identity.is_some()))
        .filter_map(|e| e.user.as_deref())
        .filter(|name| !is_owner(name))
        .map(str::to_lowercase)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let known = if owner.is_admin() && !named.is_empty() {
        known_users(state, named).await?
    } else {
        HashMap::new()
    };
    let mut errors = Vec::new();
    let mut unattributed = 0;
    let mut attributed = Vec::with_capacity(events.len());
    let owned = |event: ApiEvent, user| NewEvent {
        identity: None,
        ..event.into_new_event(user)
    };
    for (index, event) in events.into_iter().enumerate() {
        if by_identity && event.identity.is_some() {
            // `user` is the owner; the store attributes it by the identity.
            attributed.push(event.into_new_event(owner.id));
            continue;
        }
        let user = match &event.user {
            None => Ok(owner.id),
            Some(name) if is_owner(name) => Ok(owner.id),
            Some(name) if owner.is_admin() => known
                .get(&name.to_lowercase())
                .copied()
                .ok_or_else(|| format!("no user named {name:?}")),
            Some(_) => Err(format!(
                "this token belongs to {:?} and may only send their events; only an admin's \
                 token may name other users",
                owner.username
            )),
        };
        match (user, policy) {
            (Ok(user), _) => attributed.push(owned(event, user)),
            (Err(_), Attribution::OwnerFallback) => {
                unattributed += 1;
                attributed.push(owned(event, owner.id));
            }
            (Err(reason), Attribution::Strict) => errors.push(FieldError {
                index,
                line: None,
                field: Some("user".into()),
                reason,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(IngestError::Invalid(errors));
    }
    Ok(Attributed {
        events: attributed,
        unattributed,
    })
}

async fn known_users(
    state: &IngestState,
    names: Vec<String>,
) -> Result<HashMap<String, UserId>, IngestError> {
    Ok(state
        .db
        .read(move |conn| {
            let mut known = HashMap::new();
            for name in names {
                if let Some(user) = users::by_name(conn, &name)? {
                    known.insert(name.to_lowercase(), user.id);
                }
            }
            Ok::<_, DbError>(known)
        })
        .await?)
}

/// Stores the events and the request's audit entry in one writer job;
/// answered after the commit.
pub async fn store(
    state: &IngestState,
    events: Vec<NewEvent>,
    sender: Sender,
    rejected: i64,
) -> Result<InsertOutcome, IngestError> {
    let (now, unusual) = (state.clock.now(), state.unusual.clone());
    let outcome = state
        .db
        .write(move |conn| {
            let outcome = if events.is_empty() {
                InsertOutcome::default()
            } else {
                Inserter::new(conn)?
                    .with_budget(sender.budget)
                    .insert(conn, &events)?
            };
            let alerts = crate::budgets::watch::after_insert(conn, now, &outcome, &unusual)?;
            chain::append(conn, &[sender.entry(outcome, rejected)])?;
            Ok::<_, DbError>((outcome, alerts))
        })
        .await?;
    let (outcome, alerts) = outcome;
    if alerts > 0 {
        state.alert_wake.notify_one();
    }
    state.metrics.ingested(outcome);
    Ok(outcome)
}
