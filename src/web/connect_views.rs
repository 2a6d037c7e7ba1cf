//! The Connect page's markup: the token, the address, the check, then one
//! section per producer with its blocks to paste (the blocks' text is made
//! in [`super::connect_snippets`]). Every block is a labelled `figure`
//! around a `pre` that scrolls sideways on its own (and takes keyboard
//! focus, so it can be scrolled without a mouse); `ui/connect.js` adds copy
//! buttons and polls the check.

use maud::{Markup, html};

use super::connect_snippets::{self as snippets, Snippets};
use super::flash::notices;
use super::layout;
use super::page::PageContext;
use crate::auth::tokens::{CreatedToken, TokenScope};
use crate::usage::arrivals::Arrivals;

/// This instance's address, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseUrl {
    /// `public_url`, as configured (without a trailing `/`).
    Configured(String),
    /// Made from the request's `Host` header: what this browser used,
    /// which may not be what other machines can reach.
    Guessed(String),
    /// Neither: a placeholder.
    Unknown,
}

/// Shown when the address cannot be told.
pub const PLACEHOLDER_URL: &str = "https://tokentally.example.com";

impl BaseUrl {
    pub fn url(&self) -> &str {
        match self {
            BaseUrl::Configured(url) | BaseUrl::Guessed(url) => url,
            BaseUrl::Unknown => PLACEHOLDER_URL,
        }
    }
}

/// What the check says: nothing yet, or the events that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The time the page was opened (the `since` of the status URL).
    pub since_ms: i64,
    /// The events that arrived; `None` before the first check.
    pub arrivals: Option<Arrivals>,
}

impl Check {
    pub fn received(&self) -> bool {
        self.arrivals.is_some_and(|a| a.events > 0)
    }

    /// The sentence the page and the status answer show.
    pub fn text(&self, admin: bool, zone: &jiff::tz::TimeZone) -> String {
        match self.arrivals {
            Some(Arrivals { events, last_ms }) if events > 0 => {
                let noun = if events == 1 { "event" } else { "events" };
                let whose = if admin { "" } else { " of yours" };
                let latest = last_ms
                    .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                    .map(|t| {
                        format!(
                            " (the latest call: {})",
                            t.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M %Z")
                        )
                    })
                    .unwrap_or_default();
                format!("Received {events} {noun}{whose} since this page was opened{latest}.")
            }
            _ if admin => "Waiting for the first event from anyone…".to_owned(),
            _ => "Waiting for your first event…".to_owned(),
        }
    }
}

/// What the page shows.
pub struct ConnectView<'a> {
    pub context: &'a PageContext,
    pub base: &'a BaseUrl,
    /// The token just created, shown once and filled into every block.
    pub token: Option<&'a CreatedToken>,
    /// Why a token could not be created.
    pub error: Option<&'a str>,
    pub check: &'a Check,
    pub zone: jiff::tz::TimeZone,
    pub claude_code_logs: bool,
}

pub fn render(view: &ConnectView<'_>) -> Markup {
    let admin = view.context.viewer.user.is_admin();
    let s = Snippets {
        url: view.base.url(),
        token: view
            .token
            .map_or(snippets::PLACEHOLDER_TOKEN, |t| t.secret.as_str()),
        username: &view.context.viewer.user.username,
        claude_code_logs: view.claude_code_logs,
    };
    let collector = view
        .token
        .is_some_and(|t| t.info.scope == TokenScope::Collector);
    let body = html! {
        h1 { "Connect a producer" }
        p.subtitle {
            "Send usage here from the tools you use: create a token, paste the block of your \
             tool, use it once, and watch the check below turn green."
        }
        (notices(None, view.error))
        (token_card(view, admin))
        (address_card(view.base))
        (check_card(view, admin))
        nav.card aria-labelledby="producers-title" {
            h2 #producers-title { "Producers" }
            ul.producer-list {
                li { a href="#claude-code" { "Claude Code" } }
                li { a href="#gemini-cli" { "Gemini CLI" } }
                li { a href="#codex" { "Codex" } }
                li { a href="#otel-sdk" { "An OpenTelemetry SDK" } }
                li { a href="#litellm" { "LiteLLM proxy" } }
                li { a href="#import" { "tokentally import" } }
            }
        }
        (claude_code(&s, admin))
        (gemini(&s, admin))
        (codex(&s, admin))
        (otel_sdk(&s, admin))
        (litellm(&s, admin, collector))
        (import(&s, admin))
        script src=(view.context.assets.url("connect.js")) defer {}
    };
    layout::page(view.context, "Connect", body)
}

/// One block to paste: a label, then the text. `name` is the block's
/// short name, for its copy button ("Copy: Codex configuration").
fn snippet(id: &str, name: &str, label: Markup, text: &str) -> Markup {
    html! {
        figure.snippet #(id) data-name=(name) {
            figcaption { (label) }
            pre tabindex="0" { code { (text) } }
        }
    }
}

fn token_card(view: &ConnectView<'_>, admin: bool) -> Markup {
    let csrf = &view.context.viewer.csrf;
    html! {
        section.card #token aria-labelledby="token-title" {
            @if let Some(created) = view.token {
                h2 #token-title { "Your new token: copy it now" }
                p {
                    "A " strong { (created.info.scope.as_str()) } " token named “" (created.info.name)
                    "”. It is filled into every block below. This is the only time it is shown: it is \
                     stored only as a digest, and reloading this page will not show it again (revoke it \
                     on " a href="/tokens" { "API tokens" } " if it is lost)."
                }
                (snippet("new-token", "the token", html! { "The token" }, &created.secret))
            } @else {
                h2 #token-title { "A token" }
                p {
                    "Producers prove who they are with an API token. The blocks below say "
                    code { (snippets::PLACEHOLDER_TOKEN) } ": create one here and they are filled in, or \
                     use a token you have (tokens are listed, and made for other uses, on "
                    a href="/tokens" { "API tokens" } ")."
                }
                form method="post" action="/connect" {
                    (layout::csrf_field(csrf))
                    @if admin {
                        input type="hidden" name="kind" value="collector";
                        button type="submit" { "Create a collector token" }
                    } @else {
                        button type="submit" { "Create a token" }
                    }
                }
                @if admin {
                    form.secondary method="post" action="/connect" {
                        (layout::csrf_field(csrf))
                        input type="hidden" name="kind" value="personal";
                        button.link type="submit" { "Or a personal token, for your own machines only" }
                    }
                }
            }
            @if admin {
                h3 { "Collector or personal?" }
                p {
                    "A " strong { "collector" } " token (admins only) is the one token of a shared set-up: \
                     Claude Code's managed settings, Gemini CLI's system settings, a LiteLLM proxy. \
                     Each event goes to the person it names — the first present of "
                    code { "enduser.id" } " (set per person through " code { "OTEL_RESOURCE_ATTRIBUTES" }
                    "), " code { "user.email" } " (sent with an account login), the account id, the \
                     install id, LiteLLM's end user or key. An email equal to a user's profile email is \
                     theirs at once; any other identity is held as unassigned until you link it on "
                    a href="/admin/identities" { "Identities" } ". Events that name no one are yours \
                     (set your own email on your " a href="/profile" { "profile" } " so that your own \
                     usage links to you)."
                }
                p {
                    "A " strong { "personal" } " (ingest) token puts everything it sends on its owner, \
                     whatever the events say: right for one person's own machines, and what each member \
                     gets from this page."
                }
            } @else {
                p.hint {
                    "Your token sends usage as yours only: whatever a producer reports (an email, a \
                     user name), what it sends through your token is counted as your usage."
                }
            }
        }
    }
}

fn address_card(base: &BaseUrl) -> Markup {
    html! {
        section.card #address aria-labelledby="address-title" {
            h2 #address-title { "This instance's address" }
            @match base {
                BaseUrl::Configured(url) => {
                    p { "The blocks send to " code { (url) } ", the configured public URL." }
                }
                BaseUrl::Guessed(url) => {
                    p.notice role="note" {
                        "The blocks send to " code { (url) } ", guessed from the address your browser \
                         used: other machines may need another. An admin makes it certain with "
                        code { "--public-url" } " (" code { "TOKENTALLY_PUBLIC_URL" } ")."
                    }
                }
                BaseUrl::Unknown => {
                    p.notice role="note" {
                        "This instance's address could not be told: the blocks say "
                        code { (base.url()) } "; put the address the producers reach it at instead. \
                         An admin sets it with " code { "--public-url" } " ("
                        code { "TOKENTALLY_PUBLIC_URL" } ")."
                    }
                }
            }
        }
    }
}

fn check_card(view: &ConnectView<'_>, admin: bool) -> Markup {
    let check = view.check;
    let since = check.since_ms;
    let received = check.received();
    html! {
        section.card #status aria-labelledby="status-title" {
            h2 #status-title { "Is it working?" }
            p {
                "Once a producer is set up, use it once (ask it something). Usage arrives within about a \
                 minute: Claude Code exports its metrics every 60 seconds, Gemini CLI every 10, LiteLLM \
                 every 60 seconds or 100 calls. "
                @if admin {
                    "This counts everyone's events stored since this page was opened."
                } @else {
                    "This counts your events stored since this page was opened."
                }
            }
            div #connect-status role="status" aria-live="polite"
                data-status-url={ "/connect/status?since=" (since) }
                data-received=(if received { "true" } else { "false" }) {
                p.check.received[received].waiting[!received] {
                    (check.text(admin, &view.zone))
                    @if received { " " a href="/" { "See the overview" } }
                }
            }
            p.check-again {
                a href={ "/connect?since=" (since) "#status" } { "Check again" }
            }
        }
    }
}

fn claude_code(s: &Snippets<'_>, admin: bool) -> Markup {
    let (counted, other) = if s.claude_code_logs {
        ("log events", "metrics")
    } else {
        ("metrics", "log events")
    };
    html! {
        section.card #claude-code aria-labelledby="claude-code-title" {
            h2 #claude-code-title { "Claude Code" }
            p {
                "Claude Code sends its usage over OTLP with these variables. This server counts its "
                (counted) ", so only that exporter is on: its " (other) " describe the same requests \
                 and would be refused."
            }
            @if admin {
                (snippet("claude-code-managed", "Claude Code managed settings", html! {
                    "For everyone on a machine, the managed settings file:"
                    ul.paths {
                        li { code { "/etc/claude-code/managed-settings.json" } " (Linux)" }
                        li { code { "/Library/Application Support/ClaudeCode/managed-settings.json" } " (macOS)" }
                        li { code { r"C:\ProgramData\ClaudeCode\managed-settings.json" } " (Windows)" }
                    }
                }, &s.claude_code_settings()))
                p {
                    "People whose Claude Code knows no account (API-key, Bedrock or Vertex sessions) \
                     send no email: name them in their own settings (or their shell's environment):"
                }
                (snippet("claude-code-person", "Claude Code per-person settings", html! {
                    "Per person, in " code { "~/.claude/settings.json" }
                }, &snippets::claude_code_person()))
                p.hint {
                    code { "host.name" } " names the machine on the events page. For projects, Claude Code \
                     sends the repository with " code { "OTEL_METRICS_INCLUDE_REPOSITORY=true" }
                    ", or set " code { "project.name" } " in " code { "OTEL_RESOURCE_ATTRIBUTES" } "."
                }
            } @else {
                (snippet("claude-code-user", "Claude Code settings", html! {
                    "In " code { "~/.claude/settings.json" } " (or export the same variables in your shell)"
                }, &s.claude_code_settings()))
            }
        }
    }
}

fn gemini(s: &Snippets<'_>, admin: bool) -> Markup {
    html! {
        section.card #gemini-cli aria-labelledby="gemini-cli-title" {
            h2 #gemini-cli-title { "Gemini CLI" }
            p {
                "Gemini CLI sends its token metric over OTLP/HTTP with these settings; it reads the \
                 token's header from the environment only."
            }
            (snippet("gemini-settings", "Gemini CLI settings", html! {
                @if admin {
                    code { "/etc/gemini-cli/settings.json" } " (everyone on the machine) or "
                    code { "~/.gemini/settings.json" }
                } @else {
                    code { "~/.gemini/settings.json" }
                }
            }, &s.gemini_settings()))
            (snippet("gemini-env", "Gemini CLI environment", html! {
                "In the environment Gemini CLI runs in (a shell profile"
                @if admin { ", or " code { "/etc/profile.d/" } " for everyone" } ")"
            }, &s.gemini_env(admin)))
            @if admin {
                p.hint {
                    "Gemini CLI sends " code { "user.email" } " only with a Google-account login; for \
                     the others, keep the " code { "enduser.id" } " line, set per person."
                }
            }
        }
    }
}

fn codex(s: &Snippets<'_>, admin: bool) -> Markup {
    html! {
        section.card #codex aria-labelledby="codex-title" {
            h2 #codex-title { "Codex" }
            p {
                "Codex sends its token metric (" code { "codex.turn.token_usage" } ") through its \
                 metrics exporter. Its " code { "[otel]" } " section is read from each person's own \
                 configuration."
            }
            (snippet("codex-config", "Codex configuration", html! { code { "~/.codex/config.toml" } }, &s.codex_config()))
            @if admin {
                p.hint {
                    "The token metric names no person: through a collector token every Codex event is \
                     yours unless the person's environment sets "
                    code { "OTEL_RESOURCE_ATTRIBUTES=enduser.id=…" } ". A personal token per person \
                     (each member can make one on this page) is simpler."
                }
            }
        }
    }
}

fn otel_sdk(s: &Snippets<'_>, admin: bool) -> Markup {
    html! {
        section.card #otel-sdk aria-labelledby="otel-sdk-title" {
            h2 #otel-sdk-title { "An OpenTelemetry SDK" }
            p {
                "An application that follows the GenAI conventions — spans with "
                code { "gen_ai.usage.*" } ", or the " code { "gen_ai.client.token.usage" } " metric — \
                 sends to " code { "/v1/traces" } ", " code { "/v1/metrics" } " and " code { "/v1/logs" }
                " under this address, with the standard variables. Export the spans or the metric, not \
                 both: they describe the same calls."
            }
            (snippet("otel-sdk-env", "OpenTelemetry SDK environment", html! { "The application's environment" }, &s.otel_sdk_env(admin)))
        }
    }
}

fn litellm(s: &Snippets<'_>, admin: bool, collector: bool) -> Markup {
    html! {
        section.card #litellm aria-labelledby="litellm-title" {
            h2 #litellm-title { "LiteLLM proxy" }
            p {
                "The proxy's " code { "generic_api" } " logging callback sends every call to "
                code { (snippets::LITELLM_PATH) } " (as " code { "json_array" } ", " code { "ndjson" }
                " or " code { "single" } ")."
            }
            (snippet("litellm-config", "LiteLLM configuration", html! { "The proxy's " code { "config.yaml" } }, &s.litellm_config()))
            @if admin {
                p.hint {
                    @if collector { "Through this collector token" } @else { "Through a collector token" }
                    " each call goes to its end user, its key's user or its key; a personal token puts \
                     every call on its owner."
                }
            }
        }
    }
}

fn import(s: &Snippets<'_>, admin: bool) -> Markup {
    html! {
        section.card #import aria-labelledby="import-title" {
            h2 #import-title { "tokentally import" }
            p {
                "Claude Code's transcripts (" code { "~/.claude/projects" } "), or files of our own events \
                 (CSV, JSONL), read by the " code { "tokentally" } " binary. From any machine, through \
                 the event API; each event carries the machine's name, and a re-run sends only what is new:"
            }
            (snippet("import-remote", "import to this server", html! { "On the machine with the files" }, &s.import_remote()))
            p.hint {
                code { "--token" } " does the same as " code { "TOKENTALLY_TOKEN" } ", but a token on the \
                 command line shows in the process list and the shell's history."
                @if admin {
                    " A collector token sends these as yours: give each person a personal token for their \
                     own transcripts."
                }
            }
            p { "On the server itself, with access to its data directory, no token is needed:" }
            (snippet("import-local", "import on the server", html! { "On the server, as the service's user" }, &s.import_local()))
        }
    }
}
