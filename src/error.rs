//! The error type of the web layer. What a user reads is kept apart from
//! what is logged: internal details go to the log, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A form or upload over its size limit; the string is shown.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// A form whose input is refused; the string is shown.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// The storage refuses writes for now (disk full, read-only).
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// Something broke on our side; the string is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e.storage_trouble() {
            Some(reason) => {
                tracing::error!(error = %e, "request refused: storage trouble");
                AppError::Unavailable(reason)
            }
            None => match e {
                DbError::Refused(message) | DbError::OverBudget { message, .. } => {
                    AppError::Unprocessable(message)
                }
                other => AppError::Internal(other.to_string()),
            },
        }
    }
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The sentence shown to the user.
    fn public_message(&self) -> String {
        match self {
            AppError::NotFound => "There is nothing at this address.".into(),
            AppError::Forbidden => "Your account may not open this page.".into(),
            AppError::BadRequest(why)
            | AppError::PayloadTooLarge(why)
            | AppError::Unprocessable(why) => why.clone(),
            AppError::Unavailable(reason) => format!(
                "The server cannot save changes right now ({reason}). Nothing was changed; try again later."
            ),
            AppError::Internal(_) => {
                "Something went wrong on our side. The details are in the server log.".into()
            }
        }
    }
}

impl AppError {
    /// The same error for a program (the API, `/metrics`): JSON with the
    /// user-facing message, never the logged detail.
    pub fn into_json_response(self) -> Response {
        if let AppError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let message = match &self {
            AppError::Forbidden => "your account may not read this".to_owned(),
            other => other.public_message(),
        };
        let body = axum::Json(serde_json::json!({ "error": message }));
        (self.status(), body).into_response()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let status = self.status();
        (status, error_page(status, &self.public_message())).into_response()
    }
}

/// A bare error page: the error may come from the very parts (session,
/// database) that the full layout needs.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tokentally" }
            }
            body {
                main {
                    h1 { (title) }
                    p { (message) }
                    p { a href="/" { "Back to the dashboard" } }
                }
            }
        }
    }
}
