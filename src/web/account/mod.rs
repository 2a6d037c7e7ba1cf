//! The account pages: sign-in and setup, a member's setup link, profile,
//! my API tokens, and the admin's user list.
//! Every change answers with a redirect and a one-time notice (or, for a
//! secret shown once, the page itself), and leaves an audit note.

pub mod admin;
pub mod invite;
pub mod login;
mod login_views;
pub mod profile;
pub mod tokens;

pub(super) use crate::web::flash::{flash, notices};

/// A date and time for lists ("2026-06-15 12:00 UTC"), or a dash.
pub(super) fn when(unix: Option<i64>) -> String {
    unix.and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".to_owned())
}
