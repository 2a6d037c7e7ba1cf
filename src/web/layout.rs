//! The one base layout every page is rendered in.

use maud::{DOCTYPE, Markup, html};

use super::assets::AssetIndex;
use super::page::{PageContext, PublicPageContext};
use crate::auth::Viewer;
use crate::auth::csrf;

/// The hidden field that carries the session's CSRF token in a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(token); }
}

/// Wraps a signed-in page's `content` in the document, header and
/// navigation.
pub fn page(page: &PageContext, title: &str, content: Markup) -> Markup {
    let nav = Nav {
        viewer: &page.viewer,
        team: page.viewer.user.is_admin() || !page.leads.is_empty(),
    };
    document(&page.assets, Some(nav), title, content)
}

/// Who the navigation is for, and whether it offers the team page (to
/// admins and to team leads).
struct Nav<'a> {
    viewer: &'a Viewer,
    team: bool,
}

/// Wraps a public page's `content` (login, setup) in the document and a
/// header without navigation.
pub fn public_page(page: &PublicPageContext, title: &str, content: Markup) -> Markup {
    document(&page.assets, None, title, content)
}

/// The document, header and navigation. `nav` is for the signed-in user,
/// or `None` on public pages.
fn document(assets: &AssetIndex, nav: Option<Nav<'_>>, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · tokentally" }
                link rel="stylesheet" href=(assets.url("vendor/uplot/uPlot.min.css"));
                link rel="stylesheet" href=(assets.url("app.css"));
                link rel="icon" type="image/svg+xml" href=(assets.url("favicon.svg"));
                // Before the body renders, so a chosen theme never flashes.
                script src=(assets.url("theme.js")) {}
                script src=(assets.url("vendor/uplot/uPlot.iife.min.js")) defer {}
                script src=(assets.url("app.js")) defer {}
            }
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.site-header {
                    a.brand href="/" { "tokentally" }
                    @if let Some(Nav { viewer, team }) = nav {
                        @let user = &viewer.user;
                        nav aria-label="Main" {
                            a href="/" { "Overview" }
                            a href="/events" { "Events" }
                            @if team {
                                a href="/team" { "Team" }
                            }
                            a href="/budgets" { "Budgets" }
                            @if user.is_admin() {
                                a href="/admin/prices" { "Prices" }
                                a href="/admin/users" { "Users" }
                                a href="/admin/identities" { "Identities" }
                                a href="/admin/audit" { "Audit log" }
                            }
                            a href="/tokens" { "API tokens" }
                            a href="/connect" { "Connect" }
                        }
                        div.account {
                            button.theme-toggle #theme-toggle type="button" aria-pressed="false" hidden { "Dark theme" }
                            a.who href="/profile" {
                                (user.shown_name())
                                @if user.is_admin() { " " span.badge { "admin" } }
                            }
                            form method="post" action="/logout" {
                                (csrf_field(&viewer.csrf))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (content) }
                footer.site-footer {
                    "tokentally " (env!("CARGO_PKG_VERSION"))
                }
            }
        }
    }
}
