//! What every capability shares: ids, users and roles, the scope of a
//! read, sums of usage and their limits, the audit vocabulary, how
//! numbers and money become text, and the unit money is shown in.
//!
//! A leaf: nothing here imports a capability module (`auth`, `usage`,
//! `audit`, `ingest`, `web`, …); they all depend downwards on it.
//! `.ci/modgraph.py` prints the import graph and fails on a cycle.

pub mod access;
pub mod action;
pub mod format;
pub mod identity;
pub mod limits;
pub mod names;
pub mod team;
pub mod totals;
pub mod unit;
pub mod user;

pub use access::Access;
pub use action::{Action, Actor, Outcome};
pub use identity::{IdentityFilter, IdentityKey, IdentityKind};
pub use team::TeamId;
pub use totals::{Overflow, Totals};
pub use unit::Unit;
pub use user::{CurrentUser, Role, Scope, TokenId, User, UserId};
