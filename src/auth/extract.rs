//! Access as a type: handlers ask for a [`CurrentUser`] or a
//! [`RequireAdmin`], and cannot be reached without one.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::gate::Gate;
use super::tokens::{self, TokenGrant, TokenScope};
use super::{User, csrf, users};
use crate::audit::{ActorSlot, Note};
use crate::error::{ApiError, AppError};
use crate::model::team::VIEW_PREFIX;
use crate::model::{Access, Action, CurrentUser, Scope};
use crate::teams::{self, Team};

/// A logged-in admin; any other user gets 403.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub User);

impl<S: Send + Sync> FromRequestParts<S> for RequireAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(RequireAdmin(user))
        } else {
            Err(AppError::Forbidden.into_response())
        }
    }
}

/// A valid, unrevoked API token that may send events (the `ingest` scope,
/// or `collector` while its owner is an admin) whose user is enabled, from
/// `Authorization: Bearer …`.
#[derive(Debug, Clone)]
pub struct IngestToken(pub TokenGrant);

impl<S> FromRequestParts<S> for IngestToken
where
    S: Send + Sync,
    Gate: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = Gate::from_ref(state);
        let grant = bearer_grant(parts, &state).await?;
        if !grant.scope.sends_events() {
            return Err(token_error(
                StatusCode::FORBIDDEN,
                "this token has the read scope; sending events needs an ingest token",
            ));
        }
        // The role is read at each use: a collector token whose owner was
        // demoted would otherwise put a whole team's usage on one member
        // (who would then see it as theirs).
        if grant.scope == TokenScope::Collector && !grant.attributes_by_identity() {
            return Err(token_error(
                StatusCode::FORBIDDEN,
                &format!(
                    "this collector token belongs to {:?}, who is no longer an admin; a \
                     collector token works only for an admin: create a new one",
                    grant.user.username
                ),
            ));
        }
        let now_ms = state.clock.now().as_millisecond();
        if let Err(wait_s) = state.ingest_limit.take(grant.token, now_ms) {
            let message = format!(
                "rate limit: at most {} requests per second per token (bursts of twice that); \
                 retry after {wait_s} s",
                state.ingest_limit.rate()
            );
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
                .retry_after(wait_s)
                .into_response());
        }
        Ok(IngestToken(grant))
    }
}

pub(super) fn has_bearer(parts_headers: &axum::http::HeaderMap) -> bool {
    parts_headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("bearer "))
}

/// The grant of the request's bearer token; records its use.
async fn bearer_grant(parts: &Parts, state: &Gate) -> Result<TokenGrant, Response> {
    let presented = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|v| v.trim().to_owned());
    let Some(presented) = presented else {
        return Err(token_error(
            StatusCode::UNAUTHORIZED,
            "an API token is required: send Authorization: Bearer <token>",
        ));
    };
    let grant = state
        .db
        .read(move |conn| tokens::authenticate(conn, &presented))
        .await
        .map_err(|e| AppError::from(e).into_response())?;
    let Some(grant) = grant else {
        return Err(token_error(
            StatusCode::UNAUTHORIZED,
            "the API token is unknown or revoked, or its user is disabled",
        ));
    };
    if let Some(slot) = parts.extensions.get::<ActorSlot>() {
        slot.set(grant.actor());
    }
    let now = state.now_unix();
    if grant
        .last_used_at
        .is_none_or(|at| at <= now - tokens::LAST_USED_PRECISION_S)
    {
        // Not awaited: "last used" must never slow or fail the request.
        let db = state.db.clone();
        let token = grant.token;
        tokio::spawn(async move {
            if let Err(e) = db.write(move |conn| tokens::touch(conn, token, now)).await {
                tracing::warn!(error = %e, "cannot record a token's last use");
            }
        });
    }
    Ok(grant)
}

/// A refused token: 401 with the `Bearer` challenge, or 403.
pub(super) fn token_error(status: StatusCode, message: &str) -> Response {
    match status {
        StatusCode::UNAUTHORIZED => ApiError::unauthorized(message),
        _ => ApiError::new(status, message),
    }
    .into_response()
}

/// Where to go after login: only a path on this site, never another one.
/// `//evil.example` or `https://…` would be an open redirect, and browsers
/// also strip tabs and newlines from a URL and read `\` as `/`, so
/// `/\t/evil.example` and `/\evil.example` leave the site too. Accepted:
/// one `/`, then anything but `/` or `\`, in visible ASCII without
/// backslashes, and the path still so once percent-decoded (`/%2f%2f…`,
/// `/%5c…`, `/%09/…`). Anything else goes to `/`. The answer is always a
/// valid `Location` value.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.bytes().all(|b| b.is_ascii_graphic())
                && is_local_path(path.as_bytes())
                && is_local_path(&decoded_path(path)) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `/`, or `/` then a byte that is not `/` or `\`; no control bytes,
/// spaces or backslashes anywhere (decoded bytes past ASCII may be part
/// of a name in UTF-8; the raw value is visible ASCII only).
fn is_local_path(path: &[u8]) -> bool {
    let plain = |b: &u8| *b >= 0x80 || (b.is_ascii_graphic() && *b != b'\\');
    let start = match path {
        [b'/'] => true,
        [b'/', second, ..] => *second != b'/' && *second != b'\\',
        _ => false,
    };
    start && path.iter().all(plain)
}

/// The path part of `next` (before `?` or `#`) with `%XX` decoded.
fn decoded_path(next: &str) -> Vec<u8> {
    let path = next.split(['?', '#']).next().unwrap_or("");
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// A signed-in user looking at a page, with the session's CSRF token for
/// the page's forms.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    pub csrf: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(status, message)| (status, message).into_response())?;
        let csrf = csrf::token(&session)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Viewer { user, csrf })
    }
}

/// Whose usage a data read may see, decided in one place from who asks
/// and what they asked to view (`?view=`): a member sees only their own
/// usage; an admin sees everyone's by default, their own with `view=me`,
/// or one user's with `view=NAME` (audited as such). A team's usage
/// (`view=team:NAME`) is for admins and the team's current leads.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The person or token owner asking.
    pub user: User,
    pub scope: Scope,
    /// The user an admin chose to view, when not themself.
    pub viewing: Option<User>,
    /// The team viewed (`view=team:NAME`).
    pub team: Option<Team>,
    /// What `view` was, to keep it in links.
    pub view: Option<String>,
}

impl Reader {
    /// The audit note of a read, naming the viewed user or team as its
    /// target.
    pub fn note(&self, action: Action) -> Note {
        match (&self.viewing, &self.team) {
            (Some(user), _) => Note::new(action).target(format!("user:{}", user.username)),
            (None, Some(team)) => Note::new(action).target(format!("team:{}", team.name)),
            (None, None) => Note::new(action),
        }
    }
}

impl<S> FromRequestParts<S> for Reader
where
    S: Send + Sync,
    Gate: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = &Gate::from_ref(state);
        let user = match parts.extensions.get::<CurrentUser>() {
            Some(CurrentUser(user)) => user.clone(),
            None => {
                let grant = bearer_grant(parts, state).await?;
                if grant.scope != TokenScope::Read {
                    return Err(token_error(
                        StatusCode::FORBIDDEN,
                        &format!(
                            "this token has the {} scope; reading usage needs a read token",
                            grant.scope.as_str()
                        ),
                    ));
                }
                grant.user
            }
        };
        let view = view_param(parts.uri.query());
        // Programs (the read group) get JSON; pages get a page.
        let api = parts.extensions.get::<Access>().is_some_and(|a| a.is_api());
        resolve_view(state, user, view).await.map_err(|refusal| {
            // Pages get an error page; programs get JSON naming `view`.
            match refusal {
                ViewRefusal::App(e) if api => e.into_json_response(),
                ViewRefusal::App(e) => e.into_response(),
                ViewRefusal::NoSuchUser(name) if api => {
                    let reason = format!("no user named {name:?}");
                    ApiError::new(StatusCode::BAD_REQUEST, format!("view: {reason}"))
                        .field("view", reason)
                        .into_response()
                }
                ViewRefusal::NoSuchUser(name) => {
                    AppError::BadRequest(format!("view: no user named {name:?}")).into_response()
                }
                ViewRefusal::NoSuchTeam(name) if api => {
                    let reason = format!("no team named {name:?}");
                    ApiError::new(StatusCode::BAD_REQUEST, format!("view: {reason}"))
                        .field("view", reason)
                        .into_response()
                }
                ViewRefusal::NoSuchTeam(name) => {
                    AppError::BadRequest(format!("view: no team named {name:?}")).into_response()
                }
            }
        })
    }
}

/// Why a `view` is refused.
enum ViewRefusal {
    App(AppError),
    NoSuchUser(String),
    NoSuchTeam(String),
}

fn view_param(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(name, _)| name == "view")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

async fn resolve_view(
    state: &Gate,
    user: User,
    view: Option<String>,
) -> Result<Reader, ViewRefusal> {
    let own = |view| Reader {
        scope: Scope::User(user.id),
        viewing: None,
        team: None,
        view,
        user: user.clone(),
    };
    if let Some(team) = view.as_deref().and_then(|v| v.strip_prefix(VIEW_PREFIX)) {
        let team = resolve_team(state, &user, team).await?;
        return Ok(Reader {
            scope: Scope::Team(team.id),
            viewing: None,
            team: Some(team),
            view: view.clone(),
            user,
        });
    }
    match view.as_deref() {
        None if user.is_admin() => Ok(Reader {
            scope: Scope::Everyone,
            viewing: None,
            team: None,
            view: None,
            user: user.clone(),
        }),
        None | Some("me") => Ok(own(view.clone())),
        Some(name) if name.eq_ignore_ascii_case(&user.username) => Ok(own(view.clone())),
        Some("everyone") if user.is_admin() => Ok(Reader {
            scope: Scope::Everyone,
            viewing: None,
            team: None,
            view: view.clone(),
            user: user.clone(),
        }),
        Some(_) if !user.is_admin() => Err(ViewRefusal::App(AppError::Forbidden)),
        Some(name) => {
            let lookup = name.to_owned();
            let viewed = state
                .db
                .read(move |conn| users::by_name(conn, &lookup))
                .await
                .map_err(|e| ViewRefusal::App(AppError::from(e)))?
                .ok_or_else(|| ViewRefusal::NoSuchUser(name.to_owned()))?;
            Ok(Reader {
                scope: Scope::User(viewed.id),
                viewing: Some(viewed),
                team: None,
                view: view.clone(),
                user: user.clone(),
            })
        }
    }
}

/// The team `view=team:NAME` names, if `user` may read it: an admin any
/// team (an unknown one is a bad request), anyone else only a team they
/// lead now. A team they do not lead is refused whether it exists or not,
/// as a user's name is, so that the refusal tells nothing of other teams.
async fn resolve_team(state: &Gate, user: &User, name: &str) -> Result<Team, ViewRefusal> {
    let name = name.trim().to_owned();
    if crate::model::team::check_name(&name).is_err() {
        return Err(ViewRefusal::NoSuchTeam(name));
    }
    let now_ms = state.clock.now().as_millisecond();
    let (admin, id) = (user.is_admin(), user.id);
    let lookup = name.clone();
    let team = state
        .db
        .read(move |conn| match admin {
            true => teams::store::by_name(conn, &lookup),
            false => Ok(teams::store::led_by(conn, id, now_ms)?
                .into_iter()
                .find(|team| team.name.eq_ignore_ascii_case(&lookup))),
        })
        .await
        .map_err(|e| ViewRefusal::App(AppError::from(e)))?;
    match team {
        Some(team) => Ok(team),
        None if admin => Err(ViewRefusal::NoSuchTeam(name)),
        None => Err(ViewRefusal::App(AppError::Forbidden)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/events?user=ada")), "/events?user=ada");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn next_refuses_what_browsers_would_take_to_another_site() {
        for hostile in [
            "/\tevil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/%09/evil.example",
            "/%2f%2fevil.example",
            "/%2F/evil.example",
            "/%5cevil.example",
            "/%5C%5Cevil.example",
            "/ /evil.example",
            "/x\u{0}y",
            "/x\u{7f}",
            "/caf\u{e9}",
            "javascript:alert(1)",
            "https://evil.example",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        for local in [
            "/",
            "/events?range=30d&model=gpt-5",
            "/events?model=a%20b&view=me",
            "/?range=custom&from=2026-06-01&to=2026-06-15",
            "/team#top",
        ] {
            assert_eq!(safe_next(Some(local)), local);
        }
    }

    proptest::proptest! {
        // `PROPTEST_CASES` when set, else 4,000.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(4000)
        ))]

        #[test]
        fn next_is_always_a_same_origin_path(
            next in proptest::prelude::prop_oneof![
                proptest::prelude::any::<String>(),
                "[/\\\\%0-9a-fA-F\t\n\r :.?#=&a-z]{0,12}",
                "/[/\\\\%0-9a-fA-F\t\n\r .]{0,8}evil",
            ]
        ) {
            let safe = safe_next(Some(&next));
            proptest::prop_assert!(safe.starts_with('/'));
            proptest::prop_assert!(!safe.starts_with("//") && !safe.starts_with("/\\"));
            // Building the redirect never panics (a valid `Location`).
            let response = axum::response::Redirect::to(&safe).into_response();
            proptest::prop_assert!(response.status().is_redirection());
        }
    }
}
