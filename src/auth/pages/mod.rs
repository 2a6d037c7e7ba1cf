//! The account pages: profile, my API tokens, and the admin's user list.
//! Every change answers with a redirect and a one-time notice (or, for a
//! secret shown once, the page itself), and leaves an audit note.

pub mod admin;
pub mod profile;
pub mod tokens;

use maud::{Markup, html};
use tower_sessions::Session;

use super::session::session_error;
use crate::error::AppError;

const FLASH_KEY: &str = "flash";

/// Leaves a notice for the next page the session opens.
pub(super) async fn flash(session: &Session, message: impl Into<String>) -> Result<(), AppError> {
    session
        .insert(FLASH_KEY, message.into())
        .await
        .map_err(session_error)
}

/// The waiting notice, removed as it is shown.
pub(super) async fn take_flash(session: &Session) -> Result<Option<String>, AppError> {
    session
        .remove::<String>(FLASH_KEY)
        .await
        .map_err(session_error)
}

/// The notice (success) and error boxes at the top of a page.
pub(super) fn notices(flash: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = flash {
            p.notice role="status" { (message) }
        }
        @if let Some(message) = error {
            p.notice.error role="alert" { (message) }
        }
    }
}

/// A date and time for lists ("2026-06-15 12:00 UTC"), or a dash.
pub(super) fn when(unix: Option<i64>) -> String {
    unix.and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".to_owned())
}
