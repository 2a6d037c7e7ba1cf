//! How every layer answers a database error — pages (`AppError`),
//! ingestion (`IngestError`) and the read API (`ReadError`) — checked side
//! by side. Here, in the composition root, because the cases span layers
//! that must not import each other (`error` sits below `ingest` and
//! `usage`).

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rusqlite::ffi;

use crate::db::DbError;
use crate::error::tests::answer;
use crate::error::{AppError, DbVerdict, OVERFLOW_REASON};

fn sqlite(code: i32) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
}

fn commit(code: i32) -> DbError {
    DbError::Commit(Arc::new(sqlite(code)))
}

/// What each layer answers for a database error, told by its SQLite
/// code (never by the text of a message) and by its variant: the
/// reason shown, the page's status, and ingestion's and the read API's
/// status and `Retry-After`.
#[tokio::test]
async fn database_errors_map_by_code() {
    use crate::ingest::error::IngestError;
    use crate::usage::api::ReadError;

    type Answer = (StatusCode, Option<u64>);
    let (unavailable, internal) = (
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    let retry_30: Answer = (unavailable, Some(30));
    let broken: Answer = (internal, None);
    let down: Answer = (unavailable, None);
    let refused: Answer = (StatusCode::UNPROCESSABLE_ENTITY, None);
    let full = "the disk is full, or the database reached its size limit (128 GiB)";
    let read_only = "the database is read-only";
    let io = "the disk reported an I/O error";
    #[rustfmt::skip]
    // name, error, reason shown, page, ingest, read
    type Case = (&'static str, fn() -> DbError, Option<&'static str>, StatusCode, Answer, Answer);
    let cases: Vec<Case> = vec![
        (
            "SQLITE_FULL",
            || DbError::Sqlite(sqlite(ffi::SQLITE_FULL)),
            Some(full),
            unavailable,
            retry_30,
            down,
        ),
        (
            "SQLITE_READONLY",
            || DbError::Sqlite(sqlite(ffi::SQLITE_READONLY)),
            Some(read_only),
            unavailable,
            retry_30,
            down,
        ),
        (
            "SQLITE_IOERR",
            || DbError::Sqlite(sqlite(ffi::SQLITE_IOERR)),
            Some(io),
            unavailable,
            retry_30,
            down,
        ),
        (
            "SQLITE_IOERR_FSYNC",
            || DbError::Sqlite(sqlite(ffi::SQLITE_IOERR_FSYNC)),
            Some(io),
            unavailable,
            retry_30,
            down,
        ),
        (
            "SQLITE_CONSTRAINT",
            || DbError::Sqlite(sqlite(ffi::SQLITE_CONSTRAINT)),
            None,
            internal,
            broken,
            broken,
        ),
        (
            "SQLITE_CORRUPT",
            || DbError::Sqlite(sqlite(ffi::SQLITE_CORRUPT)),
            None,
            internal,
            broken,
            broken,
        ),
        (
            "SQLITE_BUSY",
            || DbError::Sqlite(sqlite(ffi::SQLITE_BUSY)),
            None,
            internal,
            broken,
            broken,
        ),
        (
            "a message that only reads like trouble",
            || {
                DbError::Sqlite(rusqlite::Error::SqliteFailure(
                    ffi::Error::new(ffi::SQLITE_ERROR),
                    Some("database or disk is full; disk I/O error; readonly database".into()),
                ))
            },
            None,
            internal,
            broken,
            broken,
        ),
        (
            "COMMIT: SQLITE_FULL",
            || commit(ffi::SQLITE_FULL),
            Some("the disk is full"),
            unavailable,
            retry_30,
            down,
        ),
        (
            "COMMIT: SQLITE_READONLY",
            || commit(ffi::SQLITE_READONLY),
            Some(read_only),
            unavailable,
            retry_30,
            down,
        ),
        (
            "COMMIT: SQLITE_IOERR_WRITE",
            || commit(ffi::SQLITE_IOERR_WRITE),
            Some(io),
            unavailable,
            retry_30,
            down,
        ),
        (
            "COMMIT: SQLITE_CONSTRAINT_FOREIGNKEY",
            || commit(ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            None,
            internal,
            broken,
            broken,
        ),
        (
            "rolled back by SQLite",
            || DbError::RolledBack,
            Some("the disk is full or failing"),
            unavailable,
            retry_30,
            down,
        ),
        (
            "a total out of range",
            || DbError::Overflow(crate::model::Overflow),
            Some(OVERFLOW_REASON),
            unavailable,
            retry_30,
            down,
        ),
        (
            "refused",
            || DbError::Refused("too many".into()),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            refused,
            refused,
        ),
        (
            "over budget",
            || DbError::OverBudget {
                message: "wait".into(),
                retry_after_s: 60,
            },
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            (StatusCode::TOO_MANY_REQUESTS, Some(60)),
            (StatusCode::TOO_MANY_REQUESTS, Some(60)),
        ),
        (
            "writer gone",
            || DbError::WriterGone,
            None,
            internal,
            broken,
            broken,
        ),
        (
            "check",
            || DbError::Check("bad copy".into()),
            None,
            internal,
            broken,
            broken,
        ),
    ];
    let answered = |response: Response| -> Answer {
        let retry = response.headers().get(header::RETRY_AFTER).map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .expect("Retry-After in seconds")
        });
        (response.status(), retry)
    };
    for (name, error, reason, page, ingest, read) in cases {
        let shown = match DbVerdict::from(error()) {
            DbVerdict::Unavailable { reason, .. } => Some(reason),
            _ => None,
        };
        assert_eq!(shown, reason, "{name}: reason");
        let app = AppError::from(error());
        if let Some(reason) = reason {
            assert!(
                app.public_message().contains(reason),
                "{name}: page message"
            );
        }
        assert_eq!(app.into_response().status(), page, "{name}: page");
        let ingested = IngestError::from(error());
        if let Some(reason) = reason {
            assert!(
                ingested.to_string().contains(reason),
                "{name}: ingest message"
            );
        }
        assert_eq!(answered(ingested.into_response()), ingest, "{name}: ingest");
        let response = ReadError::from(error()).into_response();
        assert_eq!(answered(response), read, "{name}: read");
    }
}

/// Internal details stay in the log: the body says only where to look.
#[tokio::test]
async fn internal_errors_are_never_echoed() {
    let detail = "SELECT secret FROM t";
    let source = || DbError::Check(detail.to_owned());
    let responses = [
        AppError::from(source()).into_json_response(),
        crate::ingest::error::IngestError::from(source()).into_response(),
        crate::usage::api::ReadError::from(source()).into_response(),
    ];
    for response in responses {
        let (status, _, body) = answer(response).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains(detail), "{body}");
    }
    let page = AppError::from(source()).into_response();
    let bytes = axum::body::to_bytes(page.into_body(), usize::MAX)
        .await
        .expect("body");
    assert!(!String::from_utf8_lossy(&bytes).contains(detail));
}
