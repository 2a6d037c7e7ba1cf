//! Test fixtures: [`TestApp`] (the real router over a real temporary
//! database, driven in-process, each request from a peer address as the
//! accept loop would give it: [`DEFAULT_PEER`] or one chosen with
//! [`TestApp::client_at`]) and [`Server`] (the real binary).

#![allow(dead_code)] // helpers no test calls yet (today only `Browser::set_window`)

pub mod browser;
pub mod catalogue;
pub mod cli;
pub mod clients;
pub mod otlp;
pub mod powercut;
pub mod server;
pub mod store;
pub mod webhook;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use jiff::Timestamp;
use tempfile::TempDir;
use tokentally::app::{self, AppOptions, AppState};
use tokentally::auth::tokens::{self, TokenScope};
use tokentally::auth::users::{self, NewUser};
use tokentally::auth::{HashCost, Role, UserId};
use tokentally::clock::ManualClock;
use tokentally::db::DbOptions;
use tower::ServiceExt;

pub const PASSWORD: &str = "a long enough password";

/// The peer address of requests whose test chose none (TEST-NET-1).
pub const DEFAULT_PEER: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 50000));

/// The app over a fresh database in a temporary directory.
pub struct TestApp {
    pub dir: TempDir,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    router: Router,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as text (lossy), for pages and JSON.
    pub body: String,
    /// The body as sent, for binary answers (protobuf).
    pub raw: Vec<u8>,
}

impl TestResponse {
    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The `name=value` part of the session cookie this response sets.
    pub fn session_cookie(&self) -> Option<String> {
        session_cookie_in(&self.headers)
    }
}

/// The `name=value` part of the session cookie that `headers` set.
pub fn session_cookie_in(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tokentally_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

impl TestApp {
    pub async fn new() -> TestApp {
        TestApp::with_options(|_| {}).await
    }

    /// The app with `configure` applied to the options the tests use
    /// (e.g. trusted proxies, secure cookies).
    pub async fn with_options(configure: impl FnOnce(&mut AppOptions)) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary directory");
        let clock = Arc::new(ManualClock::new(
            "2026-06-15T12:00:00Z"
                .parse::<Timestamp>()
                .expect("timestamp"),
        ));
        let mut options = AppOptions {
            db_path: dir.path().join("tokentally.db"),
            db: DbOptions {
                readers: 2,
                ..DbOptions::default()
            },
            hash_cost: HashCost::cheapest(),
            clock: clock.clone(),
            secure_cookies: false,
            claude_code_signal: Default::default(),
            sessions: Default::default(),
            time_zone: None,
            ingest_rate_per_token: 0,
            name_limits: Default::default(),
            unusual: Default::default(),
            trusted_proxies: Vec::new(),
            public_url: None,
            unit: Default::default(),
        };
        configure(&mut options);
        let state = tokio::task::spawn_blocking(move || AppState::open(options))
            .await
            .expect("join")
            .expect("app state");
        let router = app::router(state.clone());
        TestApp {
            dir,
            state,
            clock,
            router,
        }
    }

    /// Serves the router on a loopback port (for clients that need a real
    /// socket); returns its address. Needs a multi-threaded runtime.
    pub async fn serve(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let service = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        address
    }

    /// Builds the router again from `state` (after a test changed it).
    pub fn rebuild_router(&mut self) {
        self.router = app::router(self.state.clone());
    }

    /// Requests from `peer` (the TCP peer address the server sees).
    pub fn client_at(&self, peer: SocketAddr) -> Peer<'_> {
        Peer {
            app: self,
            peer,
            headers: Vec::new(),
        }
    }

    /// Sends `request` as it is, from [`DEFAULT_PEER`] unless the request
    /// already carries a `ConnectInfo`.
    pub async fn request(&self, mut request: Request<Body>) -> TestResponse {
        if request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_none()
        {
            request.extensions_mut().insert(ConnectInfo(DEFAULT_PEER));
        }
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        TestResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            raw: bytes.to_vec(),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> TestResponse {
        self.client_at(DEFAULT_PEER).get(path, cookie).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        self.client_at(DEFAULT_PEER)
            .post_form(path, cookie, fields)
            .await
    }

    /// Creates a user with [`PASSWORD`] through the real user store.
    pub async fn create_user(&self, username: &str, role: Role) -> UserId {
        let hash = self
            .state
            .passwords
            .hash(PASSWORD.to_owned())
            .await
            .expect("hash");
        let name = username.to_owned();
        self.state
            .db
            .write(move |conn| {
                users::insert(
                    conn,
                    &NewUser {
                        username: &name,
                        display_name: None,
                        role,
                        password_hash: &hash,
                    },
                    0,
                )
            })
            .await
            .expect("user created")
    }

    /// Creates an API token through the real token store; returns its secret.
    pub async fn create_token(&self, username: &str, scope: TokenScope) -> String {
        let (name, now) = (username.to_owned(), self.state.now_unix());
        self.state
            .db
            .write(move |conn| tokens::create(conn, &name, scope, "test", now))
            .await
            .expect("token created")
            .secret
    }

    /// POSTs `body` with a bearer token and extra headers.
    pub async fn post_bytes(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> TestResponse {
        self.client_at(DEFAULT_PEER)
            .post_bytes(path, token, headers, body)
            .await
    }
    /// (username, events, sum of input tokens) from the raw rows.
    pub async fn stored_by_user(&self) -> Vec<(String, i64, i64)> {
        self.state
            .db
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT u.username, COUNT(*), SUM(e.input_tokens) FROM events e
                     JOIN users u ON u.id = e.user_id GROUP BY 1 ORDER BY 1",
                )?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, tokentally::db::DbError>(rows)
            })
            .await
            .expect("stored events")
    }

    /// Panics naming the first rollup row that disagrees with the events:
    /// as they stand (the router alone runs no roller, so events wait past
    /// the watermark), then after folding every waiting event.
    pub async fn assert_rollups_exact(&self) {
        use tokentally::usage::rollup;
        self.assert_rollups_exact_unfolded().await;
        rollup::fold_pending(&self.state.db, rollup::CHUNK)
            .await
            .expect("fold");
        self.assert_rollups_exact_unfolded().await;
    }

    /// Panics naming the first rollup row that disagrees with the events
    /// up to the watermark, folding nothing (the database may refuse
    /// writes).
    pub async fn assert_rollups_exact_unfolded(&self) {
        let mismatch = self
            .state
            .db
            .read(tokentally::usage::rollup::verify)
            .await
            .expect("verify");
        assert!(
            mismatch.is_none(),
            "{}",
            mismatch.map(|m| m.to_string()).unwrap_or_default()
        );
    }

    /// Logs in through the login form; returns the session cookie.
    pub async fn login(&self, username: &str, password: &str) -> String {
        self.client_at(DEFAULT_PEER).login(username, password).await
    }

    /// Opens the login page (for its session and CSRF token) and posts the
    /// form, as a browser does; returns the signed-in browser.
    pub async fn login_browser(&self, username: &str, password: &str) -> Browser {
        self.client_at(DEFAULT_PEER)
            .login_browser(username, password)
            .await
    }

    /// One login attempt through the form, with a fresh anonymous session.
    pub async fn try_login(&self, username: &str, password: &str) -> TestResponse {
        self.client_at(DEFAULT_PEER)
            .try_login(username, password)
            .await
    }

    /// Opens the login page and posts `fields` (plus its CSRF token).
    pub async fn login_form(&self, fields: &[(&str, &str)]) -> TestResponse {
        self.client_at(DEFAULT_PEER).login_form(fields).await
    }

    /// Posts a form as `browser`, with its CSRF token.
    pub async fn submit(
        &self,
        path: &str,
        browser: &Browser,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        self.client_at(DEFAULT_PEER)
            .submit(path, browser, fields)
            .await
    }
    /// The audit entries with this action code, after flushing the queue.
    pub async fn audit_entries(&self, action: &str) -> Vec<tokentally::audit::StoredEntry> {
        self.state.audit.flush().await;
        let action = action.to_owned();
        self.state
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT seq, at_ms, actor_kind, actor_id, actor_name, action, target, \
                     client_addr, user_agent, route, outcome, details, prev_hash, hash \
                     FROM audit_log WHERE action = ?1 ORDER BY seq",
                )?;
                let rows = stmt
                    .query_map([action], |r| {
                        Ok(tokentally::audit::StoredEntry {
                            seq: r.get(0)?,
                            at_ms: r.get(1)?,
                            actor_kind: r.get(2)?,
                            actor_id: r.get(3)?,
                            actor_name: r.get(4)?,
                            action: r.get(5)?,
                            target: r.get(6)?,
                            client_addr: r.get(7)?,
                            user_agent: r.get(8)?,
                            route: r.get(9)?,
                            outcome: r.get(10)?,
                            details: r.get(11)?,
                            prev_hash: r.get(12)?,
                            hash: r.get(13)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, tokentally::db::DbError>(rows)
            })
            .await
            .expect("audit entries")
    }
}

/// Requests from one client of a [`TestApp`]: the TCP peer address the
/// server sees and headers every request carries (e.g. `X-Forwarded-For`
/// as a proxy would add it).
#[derive(Clone)]
pub struct Peer<'a> {
    app: &'a TestApp,
    peer: SocketAddr,
    headers: Vec<(String, String)>,
}

impl Peer<'_> {
    /// Adds a header to every request this client sends.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `X-Forwarded-For: value` on every request.
    pub fn forwarded_for(self, value: &str) -> Self {
        self.header("x-forwarded-for", value)
    }

    /// Sends `request` from this peer, with this client's headers.
    pub async fn request(&self, mut request: Request<Body>) -> TestResponse {
        for (name, value) in &self.headers {
            request.headers_mut().append(
                header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                header::HeaderValue::from_str(value).expect("header value"),
            );
        }
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.app.request(request).await
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> TestResponse {
        self.send(Method::GET, path, cookie, None).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(Method::POST, path, cookie, Some(body)).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<String>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(cookie) = cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        let body = match form {
            Some(form) => {
                builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form)
            }
            None => Body::empty(),
        };
        self.request(builder.body(body).expect("request")).await
    }

    /// POSTs `body` with a bearer token and extra headers.
    pub async fn post_bytes(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(Method::POST).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.request(builder.body(Body::from(body)).expect("request"))
            .await
    }

    /// Logs in through the login form; returns the session cookie.
    pub async fn login(&self, username: &str, password: &str) -> String {
        self.login_browser(username, password).await.cookie
    }

    /// Opens the login page (for its session and CSRF token) and posts the
    /// form, as a browser does; returns the signed-in browser.
    pub async fn login_browser(&self, username: &str, password: &str) -> Browser {
        let response = self.try_login(username, password).await;
        assert_eq!(
            response.status,
            StatusCode::SEE_OTHER,
            "login of {username} failed: {}",
            response.body
        );
        let cookie = response
            .session_cookie()
            .expect("login sets a session cookie");
        let page = self.get("/profile", Some(&cookie)).await;
        Browser {
            csrf: csrf_token(&page.body).expect("pages carry a CSRF token"),
            cookie,
        }
    }

    /// One login attempt through the form, with a fresh anonymous session.
    pub async fn try_login(&self, username: &str, password: &str) -> TestResponse {
        self.login_form(&[("username", username), ("password", password)])
            .await
    }

    /// Opens the login page and posts `fields` (plus its CSRF token).
    pub async fn login_form(&self, fields: &[(&str, &str)]) -> TestResponse {
        let page = self.get("/login", None).await;
        let cookie = page
            .session_cookie()
            .expect("the login page starts a session");
        let csrf = csrf_token(&page.body).expect("the login form has a CSRF token");
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &csrf));
        self.post_form("/login", Some(&cookie), &fields).await
    }

    /// Posts a form as `browser`, with its CSRF token.
    pub async fn submit(
        &self,
        path: &str,
        browser: &Browser,
        fields: &[(&str, &str)],
    ) -> TestResponse {
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &browser.csrf));
        self.post_form(path, Some(&browser.cookie), &fields).await
    }
}

/// A signed-in browser: its session cookie and the CSRF token its pages carry.
#[derive(Debug, Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// The CSRF token in a page's forms.
pub fn csrf_token(page: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

pub fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
