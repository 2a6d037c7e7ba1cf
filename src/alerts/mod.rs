//! Alerts: what watching usage found (a budget's threshold crossed, a
//! projection past the budget, unusual usage), recorded once and delivered
//! to people.
//!
//! # Exactly once
//!
//! An alert is a row of `alerts` with a unique idempotency key that names
//! what it is about (`threshold:7:r1:u0:1764547200000:80`: budget 7, its
//! first revision, everyone, the period starting then, 80 %). [`record`]
//! inserts it in the caller's transaction — the one that stores the usage
//! that crossed the line — and ignores a second insert of the same key, so
//! a crossing is recorded once however many requests see it. With the
//! alert, one `alert_deliveries` row per destination is written (the
//! outbox). The delivery worker sends each and records it as delivered; a
//! delivery carries the alert's key (`Idempotency-Key`), so a receiver can
//! drop the rare repeat when the process dies between sending and
//! recording. Nothing here updates or deletes an alert.
//!
//! # Delivery
//!
//! [`channels`] are where alerts go (webhooks, email addresses);
//! [`formats`] says what a delivery carries (the signed `json` body, the
//! chat formats, an email's text); [`deliver`] sends one (HTTP with ureq,
//! SMTP with [`email`]); [`worker`] takes what is due from the outbox,
//! sends it and records the outcome, with backoff and a retry window.

pub mod channels;
pub mod deliver;
pub mod email;
pub mod formats;
pub mod store;
pub mod worker;

pub use store::{AlertKind, AlertRow, Destination, NewAlert, record};
