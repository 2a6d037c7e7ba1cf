//! What every page is rendered with, obtained once per request (the way
//! GoatCounter's handlers get their globals): the assets, who is looking
//! with the CSRF token for the page's forms, the unit money is shown in,
//! and the one-time notice.
//! Render functions take this and the data they show, never the
//! application state.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::WebState;
use super::assets::AssetIndex;
use super::flash;
use crate::auth::{Viewer, csrf};
use crate::error::AppError;
use crate::model::Unit;
use crate::teams::{self, Team};

/// A signed-in page's context: the assets, the viewer (the signed-in
/// user and the CSRF token masked for this page) and the notice shown at
/// the top, if the page shows one.
///
/// The notice is not taken by the extractor: taking it removes it from
/// the session, and most requests that build a context (the data pages,
/// changes that re-render their form or redirect) must leave it for the
/// page it was meant for. The pages that show notices call
/// [`PageContext::take_flash`] where they took it before.
pub struct PageContext {
    pub assets: Arc<AssetIndex>,
    pub viewer: Viewer,
    /// The teams the viewer leads now (empty for admins, who see every
    /// team anyway): the navigation offers them the team page.
    pub leads: Vec<Team>,
    /// The unit money is shown in: every amount on a page goes through it.
    pub unit: Arc<Unit>,
    /// The one-time notice, once [`PageContext::take_flash`] took it.
    pub flash: Option<String>,
    session: Session,
}

impl PageContext {
    /// Takes the waiting notice out of the session into [`Self::flash`].
    pub async fn take_flash(&mut self) -> Result<(), AppError> {
        self.flash = flash::take_flash(&self.session).await?;
        Ok(())
    }
}

impl FromRequestParts<WebState> for PageContext {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        let session = session(parts, state).await?;
        let leads = match viewer.user.is_admin() {
            true => Vec::new(),
            false => {
                let (user, now_ms) = (viewer.user.id, state.clock.now().as_millisecond());
                state
                    .db
                    .read(move |conn| teams::store::led_by(conn, user, now_ms))
                    .await
                    .map_err(|e| AppError::from(e).into_response())?
            }
        };
        Ok(PageContext {
            assets: state.assets.clone(),
            viewer,
            leads,
            unit: state.unit.clone(),
            flash: None,
            session,
        })
    }
}

/// A public page's context (sign-in, setup): the assets, and no user.
///
/// The CSRF token is minted by [`PublicPageContext::csrf`], not by the
/// extractor: minting it on a fresh session is a session write (a new
/// cookie), which a visitor sent away (already signed in, setup done) or
/// refused (a spent setup link) must not get.
pub struct PublicPageContext {
    pub assets: Arc<AssetIndex>,
    session: Session,
}

impl PublicPageContext {
    /// The session's CSRF token masked for this page's form, created on
    /// first use.
    pub async fn csrf(&self) -> Result<String, AppError> {
        csrf::token(&self.session).await
    }
}

impl FromRequestParts<WebState> for PublicPageContext {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let session = session(parts, state).await?;
        Ok(PublicPageContext {
            assets: state.assets.clone(),
            session,
        })
    }
}

async fn session(parts: &mut Parts, state: &WebState) -> Result<Session, Response> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(status, message)| (status, message).into_response())
}
