//! The pages people look at — the dashboard, events, team, prices, the
//! audit log, identities, teams, sign-in, setup, invites, profile, tokens,
//! users and Connect — with the page
//! context each is rendered with, the shared layout, embedded assets, the
//! URL state and time controls every data page shares, and the charts.

pub mod account;
mod alerts;
pub mod assets;
mod audit;
mod budget_views;
mod budgets;
mod chart;
pub mod connect;
mod connect_snippets;
mod connect_views;
mod controls;
mod events;
pub mod flash;
pub use crate::model::format;
pub mod headers;
mod identities;
pub mod layout;
mod overview;
pub mod page;
mod prices;
mod prices_catalogue;
mod team;
mod team_cards;
mod teams_admin;
pub mod url;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

use crate::auth::{Gate, LoginThrottle, Passwords, access};
use crate::clock::Clock;
use crate::db::Db;
use assets::AssetIndex;

/// What the pages need, handed out by the application (`app`).
#[derive(Clone)]
pub struct WebState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub assets: Arc<AssetIndex>,
    pub passwords: Passwords,
    /// Failed sign-ins per account and per address.
    pub throttle: LoginThrottle,
    /// The instance's time zone, for users without their own.
    pub time_zone: Option<String>,
    /// The address and signals the Connect page's blocks name.
    pub connect: connect::ConnectSettings,
    /// The base of setup links (`public_url`, else the listening address);
    /// `None`: links are shown as paths.
    pub link_base: Option<String>,
    /// The unit money is shown in.
    pub unit: Arc<crate::model::Unit>,
    pub gate: Gate,
}

impl WebState {
    /// Unix seconds from the injected clock.
    pub fn now_unix(&self) -> i64 {
        self.clock.now().as_second()
    }
}

impl FromRef<WebState> for Gate {
    fn from_ref(state: &WebState) -> Gate {
        state.gate.clone()
    }
}

/// Every page, in its access group.
pub fn routes(state: WebState) -> Router {
    let gate = &state.gate;
    let public = Router::new()
        .route(
            "/login",
            get(account::login::login_page).post(account::login::login),
        )
        .route(
            "/setup",
            get(account::login::setup_page).post(account::login::setup),
        )
        .route(
            "/invite/{token}",
            get(account::invite::page).post(account::invite::accept),
        )
        .route("/assets/{*path}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon));
    let signed_in = Router::new()
        .route("/", get(overview::page))
        .route("/events", get(events::page))
        .route("/logout", post(account::login::logout))
        .route(
            "/profile",
            get(account::profile::page).post(account::profile::update),
        )
        .route("/profile/password", post(account::profile::change_password))
        .route(
            "/profile/sessions/revoke",
            post(account::profile::sign_out_everywhere),
        )
        .route(
            "/tokens",
            get(account::tokens::page).post(account::tokens::create),
        )
        .route("/tokens/{id}/revoke", post(account::tokens::revoke))
        .route("/connect", get(connect::page).post(connect::create))
        .route("/connect/status", get(connect::status))
        // Admins and team leads; the handler refuses anyone else.
        .route("/team", get(team::page))
        .route("/budgets", get(budgets::page).post(budgets::create))
        .route("/budgets/remove", post(budgets::remove))
        .route("/alerts", get(alerts::page));
    let admin = Router::new()
        .route("/admin/prices", get(prices::page).post(prices::set))
        .route("/admin/prices/remove", post(prices::remove))
        .route("/admin/audit", get(audit::page))
        .route("/admin/audit.csv", get(audit::export))
        .route("/admin/identities", get(identities::page))
        .route("/admin/identities/link", post(identities::link))
        .route("/admin/identities/unlink", post(identities::unlink))
        .route("/admin/identities/create", post(identities::create))
        .route("/admin/identities/ignore", post(identities::ignore))
        .route("/admin/identities/unignore", post(identities::unignore))
        .route(
            "/admin/teams",
            get(teams_admin::page).post(teams_admin::create),
        )
        .route("/admin/teams/members", post(teams_admin::add_member))
        .route(
            "/admin/teams/members/remove",
            post(teams_admin::remove_member),
        )
        .route(
            "/admin/users",
            get(account::admin::page).post(account::admin::create),
        )
        .route(
            "/admin/users/{username}/{action}",
            post(account::admin::act),
        );
    Router::new()
        .merge(access::public(public, gate))
        .merge(access::signed_in(signed_in, gate))
        .merge(access::admin(admin, gate))
        .with_state(state)
}
