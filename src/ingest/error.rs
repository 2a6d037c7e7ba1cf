//! The error type of ingestion endpoints: what went wrong, answered as an
//! [`ApiError`] (JSON that names what is wrong, since the clients are
//! programs). Internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::db::DbError;
use crate::error::{ApiError, BoxError, DbVerdict};

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
    /// The storage refuses writes for now (disk full, read-only): the
    /// reason is shown, the error it came from logged.
    #[error(
        "the server cannot store events right now: {reason}; nothing of this request was stored, send it again later"
    )]
    Unavailable {
        reason: &'static str,
        source: DbError,
    },
    /// Too much is being decoded at once: try again shortly.
    #[error("{0}")]
    Busy(String),
    /// For the log only.
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

/// Seconds a client is asked to wait before retrying after a 503.
const RETRY_AFTER_S: u64 = 30;
/// …and after a 503 because too much was being decoded at once.
const BUSY_RETRY_AFTER_S: u64 = 2;

impl From<DbError> for IngestError {
    fn from(e: DbError) -> Self {
        match DbVerdict::from(e) {
            DbVerdict::Unavailable { reason, source } => {
                IngestError::Unavailable { reason, source }
            }
            DbVerdict::Refused(message) => IngestError::Refused(message),
            DbVerdict::OverBudget {
                message,
                retry_after_s,
            } => IngestError::OverBudget {
                message,
                retry_after_s,
            },
            DbVerdict::Internal(source) => IngestError::internal(source),
        }
    }
}

impl IngestError {
    /// Something of ours broke: `source` is logged, never sent.
    pub fn internal(source: impl Into<BoxError>) -> IngestError {
        IngestError::Internal(source.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            IngestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IngestError::Forbidden(_) => StatusCode::FORBIDDEN,
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::Invalid(_) | IngestError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Unavailable { .. } | IngestError::Busy(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            IngestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let status = e.status();
        let message = e.to_string();
        match e {
            IngestError::Internal(source) => ApiError::internal("ingest request failed", source),
            IngestError::Invalid(errors) => {
                ApiError::new(status, "invalid events; nothing of this request was stored")
                    .with(
                        "invalid_events",
                        json!(
                            errors
                                .iter()
                                .map(|e| e.index)
                                .collect::<std::collections::BTreeSet<_>>()
                                .len()
                        ),
                    )
                    .with(
                        "errors",
                        json!(errors.iter().take(MAX_LISTED_ERRORS).collect::<Vec<_>>()),
                    )
                    .with("errors_truncated", json!(errors.len() > MAX_LISTED_ERRORS))
            }
            IngestError::Unauthorized(_) => ApiError::unauthorized(message),
            IngestError::OverBudget { retry_after_s, .. } => {
                ApiError::new(status, message).retry_after(retry_after_s)
            }
            IngestError::Unavailable { source, .. } => ApiError::new(status, message)
                .retry_after(RETRY_AFTER_S)
                .logged("ingest refused: storage trouble", source),
            IngestError::Busy(_) => ApiError::new(status, message).retry_after(BUSY_RETRY_AFTER_S),
            _ => ApiError::new(status, message),
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
