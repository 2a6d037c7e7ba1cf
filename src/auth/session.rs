//! What a signed-in session holds and how long it lives.
//!
//! tower-sessions keeps the cookie and its idle expiry; on top of that the
//! session records when it was signed in and when it was last seen (by
//! the injected clock), so both the idle and the absolute timeout are
//! enforced here, testably, whatever the cookie says.

use tower_sessions::Session;

use super::UserId;
use crate::error::AppError;

/// The session key that holds the logged-in user's id.
pub const USER_ID_KEY: &str = "user_id";
const SIGNED_IN_AT_KEY: &str = "signed_in_at";
const SEEN_AT_KEY: &str = "seen_at";
/// "Last seen" is rewritten at most this often (each write is a commit).
const SEEN_PRECISION_S: i64 = 60;

/// Session timeouts, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Ended after this long without a request.
    pub idle_s: i64,
    /// Ended this long after sign-in, however active.
    pub absolute_s: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_s: 12 * 3600,
            absolute_s: 7 * 24 * 3600,
        }
    }
}

impl SessionPolicy {
    /// The cookie's own idle expiry.
    pub fn idle_cookie(&self) -> time::Duration {
        time::Duration::seconds(self.idle_s)
    }
}

pub(crate) fn session_error(e: tower_sessions::session::Error) -> AppError {
    AppError::internal(crate::error::context("session", e))
}

/// Binds the session to `user`, under a new session id: an id planted
/// before login (session fixation) is worthless afterwards.
pub async fn sign_in(session: &Session, user: UserId, now: i64) -> Result<(), AppError> {
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(USER_ID_KEY, user)
        .await
        .map_err(session_error)?;
    session
        .insert(SIGNED_IN_AT_KEY, now)
        .await
        .map_err(session_error)?;
    session
        .insert(SEEN_AT_KEY, now)
        .await
        .map_err(session_error)
}

/// The user this session is signed in as, if it is still within both
/// timeouts; marks it seen. An expired session is ended.
pub(super) async fn signed_in_user(
    session: &Session,
    policy: &SessionPolicy,
    now: i64,
) -> Result<Option<UserId>, AppError> {
    let Some(user) = session
        .get::<UserId>(USER_ID_KEY)
        .await
        .map_err(session_error)?
    else {
        return Ok(None);
    };
    let signed_in_at = get_i64(session, SIGNED_IN_AT_KEY).await?.unwrap_or(0);
    let seen_at = get_i64(session, SEEN_AT_KEY).await?.unwrap_or(0);
    if now - signed_in_at > policy.absolute_s || now - seen_at > policy.idle_s {
        session.flush().await.map_err(session_error)?;
        return Ok(None);
    }
    if now - seen_at >= SEEN_PRECISION_S {
        session
            .insert(SEEN_AT_KEY, now)
            .await
            .map_err(session_error)?;
    }
    Ok(Some(user))
}

async fn get_i64(session: &Session, key: &str) -> Result<Option<i64>, AppError> {
    session.get::<i64>(key).await.map_err(session_error)
}
