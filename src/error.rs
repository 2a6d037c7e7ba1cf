//! How an HTTP error is written, in one place: [`ApiError`] is the JSON
//! error of every API path, [`error_page`] the page of every page, and
//! [`DbVerdict`] what a database error means for whoever asked. What a
//! user reads is kept apart from what is logged: internal details go to
//! the log (once, where the response is made), never to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::{Map, Value};

use crate::db::DbError;

/// Any error, kept whole for the log.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What an API answers when something of ours broke; the details are
/// logged.
pub const INTERNAL_MESSAGE: &str = "internal error; the details are in the server log";

/// The error of a page (HTML through [`IntoResponse`]), which also has a
/// JSON form for programs ([`AppError::into_api`]).
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
    /// The storage refuses writes for now (disk full, read-only): the
    /// reason is shown, the error it came from logged.
    #[error("unavailable: {reason}")]
    Unavailable {
        reason: &'static str,
        source: DbError,
    },
    /// Something broke on our side; the error is for the log only.
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match DbVerdict::from(e) {
            DbVerdict::Unavailable { reason, source } => AppError::Unavailable { reason, source },
            // A page offers no retry: the message says what to do.
            DbVerdict::Refused(message) | DbVerdict::OverBudget { message, .. } => {
                AppError::Unprocessable(message)
            }
            DbVerdict::Internal(source) => AppError::internal(source),
        }
    }
}

impl AppError {
    /// Something of ours broke: `source` is logged, never shown.
    pub fn internal(source: impl Into<BoxError>) -> AppError {
        AppError::Internal(source.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The sentence shown to the user.
    pub(crate) fn public_message(&self) -> String {
        match self {
            AppError::NotFound => "There is nothing at this address.".into(),
            AppError::Forbidden => "Your account may not open this page.".into(),
            AppError::BadRequest(why)
            | AppError::PayloadTooLarge(why)
            | AppError::Unprocessable(why) => why.clone(),
            AppError::Unavailable { reason, .. } => format!(
                "The server cannot save changes right now ({reason}). Nothing was changed; try again later."
            ),
            AppError::Internal(_) => {
                "Something went wrong on our side. The details are in the server log.".into()
            }
        }
    }

    /// What goes to the log rather than to the user.
    fn into_logged(self) -> Option<Logged> {
        match self {
            AppError::Internal(source) => Some(Logged::new("request failed", source)),
            AppError::Unavailable { source, .. } => Some(Logged::new(
                "request refused: storage trouble",
                Box::new(source),
            )),
            _ => None,
        }
    }

    /// The same error for a program (the API, `/metrics`): JSON with the
    /// user-facing message, never the logged detail.
    pub fn into_api(self) -> ApiError {
        let message = match &self {
            AppError::Forbidden => "your account may not read this".to_owned(),
            other => other.public_message(),
        };
        let mut api = ApiError::new(self.status(), message);
        api.log = self.into_logged();
        api
    }

    /// [`AppError::into_api`], answered.
    pub fn into_json_response(self) -> Response {
        self.into_api().into_response()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.public_message();
        if let Some(logged) = self.into_logged() {
            logged.emit();
        }
        (status, error_page(status, &message)).into_response()
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

/// The error a program gets from any API path: its status, the body
/// `{"error": message}` (with `"field"` and `"reason"` when one field is at
/// fault, and any further members), `WWW-Authenticate` on a missing or
/// refused credential and `Retry-After` when waiting helps. What caused it
/// is logged when the response is made, never sent.
#[derive(Debug)]
#[must_use]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
    reason: Option<String>,
    more: Map<String, Value>,
    www_authenticate: Option<&'static str>,
    retry_after_s: Option<u64>,
    log: Option<Logged>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
            reason: None,
            more: Map::new(),
            www_authenticate: None,
            retry_after_s: None,
            log: None,
        }
    }

    /// 401 with the `Bearer` challenge: a token or a session is needed.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            www_authenticate: Some("Bearer"),
            ..ApiError::new(StatusCode::UNAUTHORIZED, message)
        }
    }

    /// 500: something of ours broke. `source` is logged under `event`;
    /// the client reads [`INTERNAL_MESSAGE`].
    pub fn internal(event: &'static str, source: impl Into<BoxError>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_MESSAGE).logged(event, source)
    }

    /// The field at fault and why (`"field"` and `"reason"` of the body).
    pub fn field(mut self, field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self.reason = Some(reason.into());
        self
    }

    /// One more member of the body.
    pub fn with(mut self, key: &str, value: Value) -> ApiError {
        self.more.insert(key.to_owned(), value);
        self
    }

    /// `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_s = Some(seconds);
        self
    }

    /// Logs `source` under `event` when the response is made.
    pub fn logged(mut self, event: &'static str, source: impl Into<BoxError>) -> ApiError {
        self.log = Some(Logged::new(event, source.into()));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(logged) = &self.log {
            logged.emit();
        }
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.message));
        if let Some(field) = self.field {
            body.insert("field".into(), Value::String(field));
        }
        if let Some(reason) = self.reason {
            body.insert("reason".into(), Value::String(reason));
        }
        body.extend(self.more);
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        e.into_api()
    }
}

/// An error for the log only, with what it stopped.
#[derive(Debug)]
struct Logged {
    event: &'static str,
    source: BoxError,
}

impl Logged {
    fn new(event: &'static str, source: BoxError) -> Logged {
        Logged { event, source }
    }

    fn emit(&self) {
        tracing::error!(error = %self.source, "{}", self.event);
    }
}

/// `source` with what was being done ("csv", "session"), for the log; the
/// error itself stays its source.
pub fn context(what: &'static str, source: impl Into<BoxError>) -> BoxError {
    Box::new(Context {
        what,
        source: source.into(),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
struct Context {
    what: &'static str,
    source: BoxError,
}

/// What a stored total out of range means for the client (only a database
/// written before the per-event limits can hold one).
pub(crate) const OVERFLOW_REASON: &str = "a stored total is out of range (a database written by an older \
                               release); an administrator must run `tokentally verify --repair`";

/// What a database error means for whoever asked, decided here once for
/// pages, ingestion and reads; each says it in its own words.
#[derive(Debug)]
pub enum DbVerdict {
    /// Nothing was changed and nothing can be for now: the storage refuses
    /// writes (disk full or at its size limit, read-only, I/O error) or a
    /// stored total is out of range. `reason` is shown, `source` logged.
    Unavailable {
        reason: &'static str,
        source: DbError,
    },
    /// Refused for what it asks (a limit): the message is for the client.
    Refused(String),
    /// Over a budget that renews after `retry_after_s`.
    OverBudget { message: String, retry_after_s: u64 },
    /// Anything else is ours to fix: logged, never shown.
    Internal(DbError),
}

impl From<DbError> for DbVerdict {
    fn from(e: DbError) -> Self {
        if let Some(reason) = e.storage_trouble() {
            return DbVerdict::Unavailable { reason, source: e };
        }
        match e {
            DbError::Overflow(_) => DbVerdict::Unavailable {
                reason: OVERFLOW_REASON,
                source: e,
            },
            DbError::Refused(message) => DbVerdict::Refused(message),
            DbError::OverBudget {
                message,
                retry_after_s,
            } => DbVerdict::OverBudget {
                message,
                retry_after_s,
            },
            other => DbVerdict::Internal(other),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {

    use super::*;

    pub(crate) async fn answer(response: Response) -> (StatusCode, Vec<(String, String)>, Value) {
        let status = response.status();
        let mut headers: Vec<_> = response
            .headers()
            .iter()
            .filter(|(name, _)| *name != header::CONTENT_TYPE)
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().expect("ASCII").to_owned(),
                )
            })
            .collect();
        headers.sort();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "JSON"
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes).expect("a JSON body");
        (status, headers, body)
    }

    fn header_list(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn api_errors_have_one_shape() {
        // name, error, status, headers but Content-Type, body
        type Case = (
            &'static str,
            ApiError,
            StatusCode,
            &'static [(&'static str, &'static str)],
            Value,
        );
        let cases: Vec<Case> = vec![
            (
                "error only",
                ApiError::new(StatusCode::FORBIDDEN, "no"),
                StatusCode::FORBIDDEN,
                &[],
                serde_json::json!({"error": "no"}),
            ),
            (
                "field and reason",
                ApiError::new(StatusCode::BAD_REQUEST, "view: no user named \"x\"")
                    .field("view", "no user named \"x\""),
                StatusCode::BAD_REQUEST,
                &[],
                serde_json::json!({"error": "view: no user named \"x\"",
                                   "field": "view", "reason": "no user named \"x\""}),
            ),
            (
                "WWW-Authenticate",
                ApiError::unauthorized("login required"),
                StatusCode::UNAUTHORIZED,
                &[("www-authenticate", "Bearer")],
                serde_json::json!({"error": "login required"}),
            ),
            (
                "Retry-After",
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "slow down").retry_after(7),
                StatusCode::TOO_MANY_REQUESTS,
                &[("retry-after", "7")],
                serde_json::json!({"error": "slow down"}),
            ),
            (
                "more members",
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid")
                    .with("errors_truncated", Value::Bool(false)),
                StatusCode::UNPROCESSABLE_ENTITY,
                &[],
                serde_json::json!({"error": "invalid", "errors_truncated": false}),
            ),
            (
                "internal: the source is logged, never sent",
                ApiError::internal("test failed", "secret detail"),
                StatusCode::INTERNAL_SERVER_ERROR,
                &[],
                serde_json::json!({"error": INTERNAL_MESSAGE}),
            ),
        ];
        for (name, error, status, headers, body) in cases {
            let got = answer(error.into_response()).await;
            assert_eq!(got, (status, header_list(headers), body), "{name}");
        }
    }

    #[tokio::test]
    async fn app_errors_in_json_keep_their_messages() {
        let cases: Vec<(AppError, StatusCode, &str)> = vec![
            (
                AppError::Forbidden,
                StatusCode::FORBIDDEN,
                "your account may not read this",
            ),
            (
                AppError::NotFound,
                StatusCode::NOT_FOUND,
                "There is nothing at this address.",
            ),
            (
                AppError::internal("the detail"),
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. The details are in the server log.",
            ),
        ];
        for (error, status, message) in cases {
            let got = answer(error.into_json_response()).await;
            assert_eq!(got, (status, vec![], serde_json::json!({"error": message})));
        }
    }
}
