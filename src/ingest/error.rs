//! The error type of ingestion endpoints: JSON bodies that name what is
//! wrong, since the clients are programs. Internal details are logged,
//! never sent.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::db::DbError;

/// At most this many problems are listed in one answer.
pub const MAX_LISTED_ERRORS: usize = 100;

/// One problem with one event of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Position of the event in the request: 0-based in a JSON array,
    /// and for NDJSON the same index with its 1-based `line`.
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The field at fault, or null when the whole event is.
    pub field: Option<String>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    BadRequest(String),
    /// Refused for what it asks (a limit); the message names the limit.
    #[error("{0}")]
    Refused(String),
    /// Over a budget that renews; retry after this many seconds.
    #[error("{message}")]
    OverBudget { message: String, retry_after_s: u64 },
    #[error("{} invalid event(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// The storage refuses writes for now (disk full, read-only).
    #[error(
        "the server cannot store events right now: {0}; nothing of this request was stored, send it again later"
    )]
    Unavailable(&'static str),
    /// Too much is being decoded at once: try again shortly.
    #[error("{0}")]
    Busy(String),
    /// For the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Seconds a client is asked to wait before retrying after a 503.
const RETRY_AFTER_S: u32 = 30;
/// …and after a 503 because too much was being decoded at once.
const BUSY_RETRY_AFTER_S: u32 = 2;

impl From<DbError> for IngestError {
    fn from(e: DbError) -> Self {
        match e.storage_trouble() {
            Some(reason) => {
                tracing::error!(error = %e, "ingest refused: storage trouble");
                IngestError::Unavailable(reason)
            }
            None => match e {
                DbError::Refused(message) => IngestError::Refused(message),
                DbError::OverBudget {
                    message,
                    retry_after_s,
                } => IngestError::OverBudget {
                    message,
                    retry_after_s,
                },
                other => IngestError::Internal(other.to_string()),
            },
        }
    }
}

impl IngestError {
    fn status(&self) -> StatusCode {
        match self {
            IngestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IngestError::Forbidden(_) => StatusCode::FORBIDDEN,
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::Invalid(_) | IngestError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Unavailable(_) | IngestError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            IngestError::Internal(detail) => {
                tracing::error!(error = %detail, "ingest request failed");
                json!({"error": "internal error; the details are in the server log"})
            }
            IngestError::Invalid(errors) => json!({
                "error": "invalid events; nothing of this request was stored",
                "invalid_events": errors.iter().map(|e| e.index).collect::<std::collections::BTreeSet<_>>().len(),
                "errors": errors.iter().take(MAX_LISTED_ERRORS).collect::<Vec<_>>(),
                "errors_truncated": errors.len() > MAX_LISTED_ERRORS,
            }),
            other => json!({"error": other.to_string()}),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let IngestError::OverBudget { retry_after_s, .. } = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_s),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let seconds = match self {
                IngestError::Busy(_) => BUSY_RETRY_AFTER_S,
                _ => RETRY_AFTER_S,
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}
