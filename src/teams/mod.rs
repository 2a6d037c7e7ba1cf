//! Teams: who belongs together for chargeback, with their history, and
//! who leads them.
//!
//! A membership is an interval `[since_ms, until_ms)` of one user in one
//! team; a user's intervals never overlap, so at any instant a user is in
//! one team or in none, and every event belongs to exactly one team (the
//! one its user was in when it happened) or to none. A user's first
//! membership covers their whole past, so a team set up today groups last
//! month's usage; joining another team later is a move, which ends the old
//! membership where the new one starts.
//!
//! Team is not a rollup dimension: the query layer (`usage::segments`)
//! splits a read's ranges at the membership changes inside them
//! ([`timeline::Timeline`]) and reads each piece by user, which the
//! planner answers exactly for any boundary.
//!
//! A store below `auth` (which asks it whether a user leads a team, for
//! `view=team:NAME`) and `usage` (which reads the memberships); it imports
//! only `db` and `model`.

pub mod membership;
pub mod store;
pub mod timeline;

pub use membership::{Added, MemberAdded};
pub use store::{Membership, Team, TeamError};
pub use timeline::Timeline;
