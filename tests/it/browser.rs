//! The dashboard in a real headless Chromium: sign in, change range and
//! bucket, sort and filter the events, follow a bar to its events, export
//! CSV and compare it with the table, toggle the dark theme, a keyboard-only
//! walk, axe-core on every page in both colour schemes, and no sideways
//! scrolling at 360 px. Screenshots go to `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them); without them the tests say so and pass, except in CI.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::common::browser::{self, Browser, keys};
use crate::common::{PASSWORD, TestApp};
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::clock::Clock as _;
use tokentally::demo::{self, Workload};
use tokentally::model::{IdentityKey, IdentityKind};
use tokentally::teams;
use tokentally::usage::identities;
use tokentally::usage::store::{Inserter, NewEvent};

const AXE: &str = include_str!("../vendor/axe-core/axe.min.js");

/// The app on a real socket with a month of two people's usage.
async fn served_app() -> (TestApp, String) {
    let app = TestApp::new().await;
    let ada = app.create_user("ada", Role::Admin).await;
    let grace = app.create_user("grace", Role::Member).await;
    let workload = Workload {
        events: 3_000,
        seed: 7,
        end: app.clock.now(),
        days: 60,
    };
    app.state
        .db
        .write(move |conn| demo::generate(conn, &[ada, grace], &workload))
        .await
        .expect("usage");
    // Identities for the identities page: one held, one linked to grace,
    // and one made a member (dora, who has no password yet).
    let now_ms = app.clock.now().as_millisecond();
    let now_s = app.clock.now().as_second();
    app.state
        .db
        .write(move |conn| {
            let events: Vec<NewEvent> = ["carol@example.com", "grace-laptop", "dora"]
                .into_iter()
                .enumerate()
                .map(|(i, name)| NewEvent {
                    extras: Default::default(),
                    ts_ms: now_ms - 3_600_000,
                    user: ada,
                    source: "otlp".into(),
                    external_id: format!("identity-{i}"),
                    model: "llama-local".into(),
                    provider: None,
                    activity: None,
                    project: None,
                    tokens: [100, 10, 0, 0],
                    reported_cost_micros: Some(1_000),
                    identity: Some(if i == 0 {
                        IdentityKey::new(IdentityKind::Email, name)
                    } else {
                        IdentityKey::new(IdentityKind::EndUser, name)
                    }),
                    session: None,
                    machine: None,
                })
                .collect();
            Inserter::new(conn)?.insert(conn, &events)?;
            let laptop = IdentityKey::new(IdentityKind::EndUser, "grace-laptop");
            let dora = IdentityKey::new(IdentityKind::EndUser, "dora");
            identities::link(conn, &laptop, "grace")
                .and_then(|_| identities::create_person(conn, &dora, "dora", now_s))
                .map_err(|e| match e {
                    identities::IdentityError::Db(e) => e,
                    other => panic!("{other}"),
                })?;
            Ok::<_, tokentally::db::DbError>(())
        })
        .await
        .expect("identities");
    // Teams for the team pages: ada's whole past is platform's; grace was
    // in platform and leads research from ten days ago.
    let moved_ms = now_ms - 10 * 86_400_000;
    app.state
        .db
        .write(move |conn| {
            for team in ["platform", "research"] {
                teams::store::create(conn, team, now_ms)?;
            }
            teams::membership::add_member(conn, "platform", "ada", true, None, now_ms)?;
            teams::membership::add_member(conn, "platform", "grace", false, None, now_ms)?;
            teams::membership::add_member(conn, "research", "grace", true, Some(moved_ms), now_ms)?;
            Ok::<_, teams::TeamError>(())
        })
        .await
        .expect("teams");
    // Budgets for the budgets page, the overview's card and the alerts:
    // a small monthly one (past its thresholds: alerted), each member's,
    // and one on research (grace leads it).
    let now = app.clock.now();
    app.state
        .db
        .write(move |conn| {
            use tokentally::budgets::store::{self as budgets, Measure, NewBudget};
            for (name, scope, measure, amount) in [
                ("monthly", "everyone", Measure::Cost, 1_000_000),
                ("each-member", "each-member", Measure::Tokens, 50_000_000),
                ("research", "team:research", Measure::Cost, 500_000_000),
            ] {
                let new = NewBudget {
                    name: name.into(),
                    period: "month".into(),
                    week_start: jiff::civil::Weekday::Monday,
                    zone: "Europe/Berlin".into(),
                    measure,
                    amount,
                    scope: scope.into(),
                    thresholds: vec![50, 80, 100],
                    channels: Vec::new(),
                    created_by: None,
                };
                let budget = budgets::create(conn, &new, now_ms)?;
                tokentally::budgets::watch::evaluate(conn, &budget, now, false)?;
            }
            Ok::<_, budgets::BudgetError>(())
        })
        .await
        .expect("budgets");
    let address = app.serve().await;
    (app, format!("http://{address}"))
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

fn sign_in(browser: &Browser, base: &str, username: &str) {
    browser.goto(&format!("{base}/login"));
    browser.type_into("#username", username);
    browser.type_into("#password", PASSWORD);
    browser.click("form[action='/login'] button[type=submit]");
    browser.wait_for("return !location.pathname.startsWith('/login')");
}

fn texts(browser: &Browser, css: &str) -> Vec<String> {
    let found = browser.script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim());",
        json!([css]),
    );
    found
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs axe-core's WCAG 2.1 A and AA rules on the current page; the
/// violations as "rule: targets" lines.
fn axe_violations(browser: &Browser) -> Vec<String> {
    browser.script(AXE, json!([]));
    let result = browser.script_async(
        "const done = arguments[arguments.length - 1];
         axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
            .then(r => done(r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
            .catch(e => done(['axe failed: ' + e]));",
        json!([]),
    );
    result
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Serves the app and runs `walk` (blocking WebDriver calls) against it.
async fn in_browser(walk: fn(&str)) {
    if !browser::available() {
        return;
    }
    let (app, base) = served_app().await;
    tokio::task::spawn_blocking(move || walk(&base))
        .await
        .expect("browser session");
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_main_tasks_work_in_a_real_browser() {
    in_browser(main_tasks).await;
}

fn main_tasks(base: &str) {
    let browser = Browser::start();
    sign_in(&browser, base, "ada");
    // The overview draws its chart on top of the table that is always there.
    browser.wait_for("return !!document.querySelector('#usage-chart .uplot canvas')");
    assert!(!texts(&browser, "#usage-chart-table tbody tr").is_empty());
    browser.screenshot(&screenshots().join("overview-desktop.png"));

    // Range and bucket.
    browser.click("nav[aria-label='Range presets'] a[href*='range=7d']");
    browser.wait_for("return location.search.includes('range=7d')");
    assert_eq!(
        texts(&browser, "#usage-chart-table tbody tr").len(),
        7,
        "7 days by day"
    );
    browser.click("nav[aria-label='Bucket'] a[href*='bucket=hour']");
    browser.wait_for("return location.search.includes('bucket=hour')");
    assert_eq!(
        texts(&browser, "#usage-chart-table tbody tr").len(),
        7 * 24,
        "hours"
    );
    browser.goto(&format!("{base}/?range=30d&bucket=week"));
    let weeks = texts(&browser, "#usage-chart-table tbody th");
    assert!(weeks.iter().all(|w| w.contains("-W")), "{weeks:?}");

    // A bar leads to its events: click the bottom of the last bar.
    browser.goto(&format!("{base}/?range=7d"));
    browser.wait_for("return !!document.querySelector('#usage-chart .u-over')");
    let size = browser.script(
        "const r = document.querySelector('#usage-chart .u-over').getBoundingClientRect(); return [r.width, r.height];",
        json!([]),
    );
    let (width, height) = (
        size[0].as_f64().unwrap_or(0.0),
        size[1].as_f64().unwrap_or(0.0),
    );
    let last_bar_x = (width * 6.5 / 7.0) as i64;
    browser.click_at("#usage-chart .u-over", last_bar_x, height as i64 - 3);
    browser.wait_for("return location.pathname === '/events'");
    let url = browser.url();
    assert!(
        url.contains("model=") && url.contains("from=") && url.contains("range=custom"),
        "{url}"
    );
    let model = url
        .split("model=")
        .nth(1)
        .and_then(|m| m.split('&').next())
        .map(|m| m.replace("%2F", "/"))
        .expect("a model filter");
    let models: BTreeSet<String> = texts(&browser, "#events-table tbody td:nth-child(3)")
        .into_iter()
        .collect();
    assert!(!models.is_empty(), "the bar had events");
    assert_eq!(
        models.len(),
        1,
        "only the clicked series: {models:?} for {model}"
    );

    // Sort by cost: descending, then ascending.
    browser.goto(&format!("{base}/events?range=30d"));
    browser.click("#events-table thead th:nth-child(11) a");
    browser.wait_for("return location.search.includes('sort=cost')");
    let costs = cost_column(&browser);
    assert!(
        costs.windows(2).all(|w| w[0] >= w[1]),
        "descending: {costs:?}"
    );
    browser.click("#events-table thead th:nth-child(11) a");
    browser.wait_for("return location.search.includes('order=asc')");
    let costs = cost_column(&browser);
    assert!(
        costs.windows(2).all(|w| w[0] <= w[1]),
        "ascending: {costs:?}"
    );

    // Filter by user, then export exactly this view.
    browser.goto(&format!("{base}/events?range=today"));
    browser.type_into("#filter-user", "grace");
    browser.click("form.filters button[type=submit]");
    browser.wait_for("return location.search.includes('user=grace')");
    let users: BTreeSet<String> = texts(&browser, "#events-table tbody td:nth-child(2)")
        .into_iter()
        .collect();
    assert!(
        users.len() <= 1 && users.iter().all(|u| u == "grace"),
        "{users:?}"
    );
    let table_ids: BTreeSet<String> = texts(&browser, "#events-table tbody td.id")
        .into_iter()
        .collect();
    let csv = browser.script_async(
        "const done = arguments[arguments.length - 1];
         fetch(document.querySelector('a[download]').href).then(r => r.text()).then(done);",
        json!([]),
    );
    let csv = csv.as_str().unwrap_or_default();
    let csv_ids: BTreeSet<String> = csv
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next().map(str::to_owned))
        .collect();
    assert_eq!(csv_ids, table_ids, "the export is the table");
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.split(',').nth(2) == Some("grace"))
    );

    // Dark theme: the toggle changes the colours and is remembered.
    browser.goto(&format!("{base}/"));
    let light = browser.script(
        "return getComputedStyle(document.body).backgroundColor",
        json!([]),
    );
    browser.click("#theme-toggle");
    browser.wait_for("return document.documentElement.dataset.theme === 'dark'");
    let dark = browser.script(
        "return getComputedStyle(document.body).backgroundColor",
        json!([]),
    );
    assert_ne!(light, dark);
    assert_eq!(
        browser.script(
            "return document.getElementById('theme-toggle').getAttribute('aria-pressed')",
            json!([])
        ),
        json!("true")
    );
    browser.goto(&format!("{base}/events"));
    assert_eq!(
        browser.script("return document.documentElement.dataset.theme", json!([])),
        json!("dark")
    );
    browser.screenshot(&screenshots().join("events-dark-desktop.png"));
    browser.click("#theme-toggle");
}

fn cost_column(browser: &Browser) -> Vec<f64> {
    texts(browser, "#events-table tbody td:nth-child(11)")
        .iter()
        .filter_map(|t| t.trim_start_matches('$').replace(',', "").parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyboard_alone_signs_in_and_reads_the_chart() {
    in_browser(keyboard_walk).await;
}

fn active(browser: &Browser) -> Value {
    browser.script(
        "const e = document.activeElement; return [e.tagName, e.id, e.getAttribute('data-chart'), e.textContent.trim().slice(0, 40)];",
        json!([]),
    )
}

fn keyboard_walk(base: &str) {
    let browser = Browser::start();
    browser.goto(&format!("{base}/login"));
    // The username field has focus on arrival.
    assert_eq!(active(&browser)[1], "username");
    browser.keys(&["ada", keys::TAB, PASSWORD, keys::ENTER]);
    browser.wait_for(
        "return location.pathname === '/' && !!document.querySelector('#usage-chart .uplot')",
    );
    // First Tab: the skip link; Enter jumps to the content.
    browser.keys(&[keys::TAB]);
    assert_eq!(active(&browser)[3], "Skip to content");
    browser.keys(&[keys::ENTER]);
    // Tab on until the chart has focus.
    let mut reached = false;
    for _ in 0..60 {
        browser.keys(&[keys::TAB]);
        if active(&browser)[2] == "usage-chart" {
            reached = true;
            break;
        }
    }
    assert!(reached, "the chart is reachable by Tab");
    browser.keys(&[keys::RIGHT, keys::RIGHT]);
    let announced = browser.script(
        "return document.getElementById('usage-chart-live').textContent",
        json!([]),
    );
    let announced = announced.as_str().unwrap_or_default().to_owned();
    let second_label = texts(&browser, "#usage-chart-table tbody th")[1].clone();
    assert!(
        announced.starts_with(&second_label),
        "{announced:?} names bar 2 ({second_label})"
    );
    browser.keys(&[keys::LEFT]);
    let first_label = texts(&browser, "#usage-chart-table tbody th")[0].clone();
    let announced = browser.script(
        "return document.getElementById('usage-chart-live').textContent",
        json!([]),
    );
    assert!(
        announced
            .as_str()
            .unwrap_or_default()
            .starts_with(&first_label)
    );
    // Enter opens that bucket's events.
    browser.keys(&[keys::ENTER]);
    browser.wait_for("return location.pathname === '/events'");
    // Sorting by keyboard: Tab to the Cost header link and press Enter.
    let mut on_cost = false;
    for _ in 0..80 {
        browser.keys(&[keys::TAB]);
        if active(&browser)[3]
            .as_str()
            .unwrap_or_default()
            .starts_with("Cost")
        {
            on_cost = true;
            break;
        }
    }
    assert!(on_cost, "the Cost header is reachable by Tab");
    browser.keys(&[keys::ENTER]);
    browser.wait_for("return location.search.includes('sort=cost')");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_connect_page_turns_green_when_the_first_event_arrives() {
    in_browser(connect).await;
}

/// Create a token on the Connect page, send one event with it from
/// outside the browser, and watch the check (polled by `connect.js`) say
/// so, in its live region, without a reload.
fn connect(base: &str) {
    let browser = Browser::start();
    sign_in(&browser, base, "ada");
    browser.goto(&format!("{base}/connect"));
    browser.click("form[action='/connect'] input[value=collector] ~ button[type=submit]");
    browser.wait_for("return !!document.querySelector('#new-token pre')");
    let secret = texts(&browser, "#new-token pre")
        .into_iter()
        .next()
        .expect("the token is shown");
    assert!(secret.starts_with("tt_"), "{secret}");
    assert_eq!(
        texts(&browser, "#connect-status .check.waiting"),
        vec!["Waiting for the first event from anyone…".to_owned()]
    );
    let location = browser.url();
    let event = json!([{"id": "from-the-connect-page", "timestamp": "2026-06-15T11:00:00Z",
                        "model": "m", "input_tokens": 3, "output_tokens": 1}]);
    let answer = crate::common::server::agent()
        .post(&format!("{base}/api/v1/events"))
        .header("authorization", &format!("Bearer {secret}"))
        .header("content-type", "application/json")
        .send(event.to_string().as_str())
        .expect("sent");
    assert_eq!(answer.status(), 200);
    browser.wait_for("return !!document.querySelector('#connect-status .check.received')");
    let said = texts(&browser, "#connect-status .check.received");
    assert!(
        said.first()
            .is_some_and(|t| t.starts_with("Received 1 event ")),
        "{said:?}"
    );
    assert_eq!(browser.url(), location, "no reload");
    browser.script(
        "document.getElementById('status').scrollIntoView()",
        json!([]),
    );
    browser.screenshot(&screenshots().join("connect-received.png"));
    browser.viewport(360, 780);
    browser.script(
        "document.getElementById('claude-code').scrollIntoView()",
        json!([]),
    );
    browser.screenshot(&screenshots().join("connect-360.png"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_passes_axe_in_both_schemes_and_fits_360_px() {
    in_browser(accessibility).await;
}

fn accessibility(base: &str) {
    let browser = Browser::start();
    let pages = [
        "/",
        "/?split=activity&metric=cost",
        "/events",
        "/events?sort=cost&order=asc",
        "/?split=team&view=everyone",
        "/team",
        "/?view=team:research",
        "/admin/prices",
        "/admin/prices?q=claude-sonnet",
        "/admin/users",
        "/admin/identities",
        "/admin/identities?show=unassigned",
        "/events?identity=unassigned",
        "/admin/teams",
        "/admin/audit",
        "/profile",
        "/tokens",
        "/connect",
        "/budgets",
        "/alerts",
        "/invite/not-a-setup-link",
    ];
    let mut problems = Vec::new();
    for scheme in ["light", "dark"] {
        browser.color_scheme(scheme);
        browser.goto(&format!("{base}/login"));
        for violation in axe_violations(&browser) {
            problems.push(format!("/login ({scheme}): {violation}"));
        }
        sign_in(&browser, base, "ada");
        for page in pages {
            browser.goto(&format!("{base}{page}"));
            for violation in axe_violations(&browser) {
                problems.push(format!("{page} ({scheme}): {violation}"));
            }
        }
        // A fresh setup link for dora (the page that shows it once), and
        // the page it opens.
        browser.goto(&format!("{base}/admin/users"));
        browser.click("form[action='/admin/users/dora/invite'] button");
        browser.wait_for("return !!document.getElementById('issued-link')");
        for violation in axe_violations(&browser) {
            problems.push(format!("/admin/users/dora/invite ({scheme}): {violation}"));
        }
        let link = texts(&browser, "#issued-link")[0].clone();
        assert!(link.starts_with("/invite/"), "{link}");
        browser.goto(&format!("{base}{link}"));
        browser.wait_for("return !!document.getElementById('password_confirm')");
        for violation in axe_violations(&browser) {
            problems.push(format!("/invite/… ({scheme}): {violation}"));
        }
        browser.goto(&format!("{base}/"));
        browser.click("form[action='/logout'] button");
        // Signed out before the next round opens /login (which redirects
        // a signed-in browser away).
        browser.wait_for("return location.pathname === '/login'");
        // A team lead's pages: their team, and its usage.
        sign_in(&browser, base, "grace");
        for page in [
            "/team",
            "/?view=team:research",
            "/events?view=team:research",
            "/budgets",
            "/alerts",
        ] {
            browser.goto(&format!("{base}{page}"));
            for violation in axe_violations(&browser) {
                problems.push(format!("{page} as a lead ({scheme}): {violation}"));
            }
        }
        browser.goto(&format!("{base}/"));
        browser.click("form[action='/logout'] button");
        browser.wait_for("return location.pathname === '/login'");
    }
    assert!(problems.is_empty(), "axe found:\n{}", problems.join("\n"));
    // Under the strict CSP nothing was refused and no script failed (axe
    // itself is injected through WebDriver, which CSP does not govern).
    let console: Vec<String> = browser
        .console()
        .into_iter()
        .filter(|m| m.contains("SEVERE") || m.contains("Content Security Policy"))
        .filter(|m| !m.contains("favicon"))
        // The page of a wrong setup link is a 404 on purpose.
        .filter(|m| !m.contains("/invite/not-a-setup-link - Failed to load resource"))
        .collect();
    assert!(console.is_empty(), "console:\n{}", console.join("\n"));

    // 360 px wide (a phone), and 640 px (a 1280 px window at 200 % zoom):
    // nothing scrolls sideways but the tables, in their box, and every
    // link of the navigation is in view.
    browser.color_scheme("light");
    sign_in(&browser, base, "ada");
    for (width, height) in [(640, 450), (360, 780)] {
        browser.viewport(width, height);
        for page in [
            "/",
            "/events",
            "/team",
            "/admin/users",
            "/admin/identities",
            "/admin/teams",
            "/admin/audit",
            "/admin/prices?q=claude-sonnet",
            "/tokens",
            "/connect",
            "/profile",
            "/budgets",
            "/alerts",
        ] {
            browser.goto(&format!("{base}{page}"));
            let overflow = browser.script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                json!([]),
            );
            assert!(
                overflow.as_i64().unwrap_or(1) <= 0,
                "{page} scrolls sideways by {overflow} px at {width}"
            );
            let hidden = browser.script(
                "const width = document.documentElement.clientWidth;
                 return Array.from(document.querySelectorAll('.site-header nav a'))
                   .filter(a => { const r = a.getBoundingClientRect(); return r.left < 0 || r.right > width; })
                   .map(a => a.textContent.trim());",
                json!([]),
            );
            assert_eq!(hidden, json!([]), "{page} at {width}: links out of view");
        }
    }
    browser.goto(&format!("{base}/"));
    browser.wait_for("return !!document.querySelector('#usage-chart .uplot')");
    browser.screenshot(&screenshots().join("overview-360.png"));
    browser.goto(&format!("{base}/events"));
    browser.screenshot(&screenshots().join("events-360.png"));
    browser.goto(&format!("{base}/budgets"));
    // The monthly budget's chart: used, the dashed forecast, the amount.
    browser.wait_for("return !!document.querySelector('[data-burn] .uplot canvas')");
    browser.screenshot(&screenshots().join("budgets-360.png"));
    browser.viewport(1280, 900);
    browser.script(
        "document.querySelector('[data-burn]').scrollIntoView()",
        json!([]),
    );
    browser.screenshot(&screenshots().join("budgets-desktop.png"));
    browser.viewport(360, 780);
    browser.goto(&format!("{base}/admin/prices?q=claude-sonnet"));
    browser.script(
        "document.getElementById('search-title').scrollIntoView()",
        json!([]),
    );
    browser.screenshot(&screenshots().join("prices-search-360.png"));
    browser.viewport(1280, 900);
    browser.script(
        "document.getElementById('seen-title').scrollIntoView()",
        json!([]),
    );
    browser.screenshot(&screenshots().join("prices-desktop.png"));
}
