//! Budgets: an amount of money or tokens per calendar period (day, week,
//! month) in a stated time zone, for a scope (everyone, a team, a user, a
//! model, or each member on their own), with thresholds that alert once
//! each per period, and a forecast of the period's end.
//!
//! * [`period`]: the period's edges in its zone (DST, any first weekday);
//! * [`store`]: the budgets and their rules;
//! * [`status`]: where a budget stands (used, remaining, percentage,
//!   forecast, next reset), from the rollups;
//! * [`forecast`]: the projection rule;
//! * [`unusual`]: usage far above a person's own baseline;
//! * [`watch`]: evaluation after usage is stored, recording alerts in the
//!   same transaction (the outbox, `crate::alerts`).
//!
//! Above `usage` and `teams` (it reads usage by scope), below `ingest` and
//! `import` (which call [`watch::after_usage`] where they store events).

pub mod access;
pub mod board;
pub mod forecast;
pub mod period;
pub mod status;
pub mod store;
pub mod unusual;
pub mod watch;

pub use period::{Period, Window};
pub use status::{Standing, standings};
pub use store::{Budget, BudgetError, BudgetScope, Measure, NewBudget};
pub use unusual::{UnusualRule, UnusualWatch};
