//! The login and setup pages.

use maud::{Markup, html};

use crate::auth::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use crate::web::layout;
use crate::web::page::PublicPageContext;

fn error_box(error: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = error {
            p.notice.error role="alert" id="form-error" { (message) }
        }
    }
}

fn username_field(username: &str) -> Markup {
    html! {
        label for="username" { "Username" }
        input #username type="text" name="username" value=(username)
            autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus;
    }
}

/// What the login form shows.
pub struct LoginView<'a> {
    pub csrf: &'a str,
    pub next: &'a str,
    pub error: Option<&'a str>,
    pub username: &'a str,
}

pub fn login_page(page: &PublicPageContext, view: &LoginView<'_>) -> Markup {
    let body = html! {
        section.card.narrow aria-labelledby="login-title" {
            h1 #login-title { "Sign in" }
            (error_box(view.error))
            form method="post" action="/login" {
                (layout::csrf_field(view.csrf))
                input type="hidden" name="next" value=(view.next);
                (username_field(view.username))
                label for="password" { "Password" }
                input #password type="password" name="password"
                    autocomplete="current-password" required maxlength=(MAX_PASSWORD_LEN);
                button type="submit" { "Sign in" }
            }
        }
    };
    layout::public_page(page, "Sign in", body)
}

pub fn setup_page(
    page: &PublicPageContext,
    csrf: &str,
    token: &str,
    error: Option<&str>,
    username: &str,
) -> Markup {
    let body = html! {
        section.card.narrow aria-labelledby="setup-title" {
            h1 #setup-title { "Create the first admin" }
            p { "This account manages users and sees everyone's usage. The link that brought you here works once." }
            (error_box(error))
            form method="post" action="/setup" {
                (layout::csrf_field(csrf))
                input type="hidden" name="token" value=(token);
                (username_field(username))
                label for="password" { "Password" }
                p.hint #password-hint { "At least " (MIN_PASSWORD_LEN) " characters." }
                input #password type="password" name="password" aria-describedby="password-hint"
                    autocomplete="new-password" required minlength=(MIN_PASSWORD_LEN) maxlength=(MAX_PASSWORD_LEN);
                label for="password_confirm" { "Password, again" }
                input #password_confirm type="password" name="password_confirm"
                    autocomplete="new-password" required minlength=(MIN_PASSWORD_LEN) maxlength=(MAX_PASSWORD_LEN);
                button type="submit" { "Create admin and sign in" }
            }
        }
    };
    layout::public_page(page, "Set up tokentally", body)
}

pub fn setup_invalid(page: &PublicPageContext) -> Markup {
    let body = html! {
        section.card.narrow aria-labelledby="setup-title" {
            h1 #setup-title { "This setup link does not work" }
            p { "It is wrong, or it was already used. Restart tokentally to log a new setup link, or create an admin from the command line:" }
            pre { code { "tokentally user add NAME --role admin" } }
        }
    };
    layout::public_page(page, "Set up tokentally", body)
}
