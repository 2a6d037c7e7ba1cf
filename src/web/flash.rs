//! One-time notices ("Your details are saved."): left in the session by a
//! change, shown by the next page and removed as they are shown; and the
//! notice and error boxes at the top of a page.

use maud::{Markup, html};
use tower_sessions::Session;

use crate::auth::session_error;
use crate::error::AppError;

const FLASH_KEY: &str = "flash";

/// Leaves a notice for the next page the session opens.
pub async fn flash(session: &Session, message: impl Into<String>) -> Result<(), AppError> {
    session
        .insert(FLASH_KEY, message.into())
        .await
        .map_err(session_error)
}

/// The waiting notice, removed as it is shown.
pub async fn take_flash(session: &Session) -> Result<Option<String>, AppError> {
    session
        .remove::<String>(FLASH_KEY)
        .await
        .map_err(session_error)
}

/// The notice (success) and error boxes at the top of a page.
pub fn notices(flash: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = flash {
            p.notice role="status" { (message) }
        }
        @if let Some(message) = error {
            p.notice.error role="alert" { (message) }
        }
    }
}
