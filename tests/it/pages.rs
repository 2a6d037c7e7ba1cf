//! The dashboard's pages over the real router: every page renders its
//! numbers (without JavaScript), the URL carries the state, the events
//! table pages and sorts like the CSV export, and a price change says what
//! it re-priced.

use crate::common::{self, PASSWORD, TestApp};
use axum::http::StatusCode;
use serde_json::json;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

async fn app_with_events() -> (TestApp, String) {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("root", TokenScope::Ingest).await;
    let mut events = Vec::new();
    for i in 0..120 {
        events.push(json!({
            "id": format!("e{i:03}"),
            "timestamp": format!("2026-06-{:02}T{:02}:00:00Z", 1 + i % 14, i % 24),
            "user": if i % 3 == 0 { "ada" } else { "root" },
            "model": if i % 2 == 0 { "alpha-model" } else { "beta-model" },
            "activity": if i % 5 == 0 { "review" } else { "chat" },
            "input_tokens": 1000 + i, "output_tokens": 10 * i,
        }));
    }
    let response = app
        .post_bytes(
            "/api/v1/events",
            Some(&token),
            &[("content-type", "application/json")],
            serde_json::Value::Array(events).to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let cookie = app.login("root", PASSWORD).await;
    (app, cookie)
}

#[tokio::test]
async fn every_page_shows_its_numbers_without_javascript() {
    let (app, cookie) = app_with_events().await;
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    let cases = [
        (
            format!("/?{range}"),
            vec![
                "Everyone",
                "alpha-model",
                "beta-model",
                "Table of this chart",
                "<dd>120</dd>",
            ],
        ),
        (
            format!("/?{range}&split=activity&metric=cost"),
            vec!["review", "chat", "By activity"],
        ),
        (format!("/?{range}&view=ada"), vec!["<dd>40</dd>"]),
        (
            format!("/events?{range}"),
            vec!["e119", "Export CSV", "Next page"],
        ),
        (
            format!("/team?{range}"),
            vec!["ada", "root", "Usage per user"],
        ),
        ("/admin/prices".to_owned(), vec!["Add or change a price"]),
    ];
    for (path, expected) in cases {
        let page = app.get(&path, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for text in expected {
            assert!(page.body.contains(text), "{path} lacks {text:?}");
        }
        assert!(!page.body.contains("style="), "{path}: no inline style");
    }
    let bad = app.get("/?range=forever", Some(&cookie)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("range"));
}

#[tokio::test]
async fn the_events_table_pages_through_everything_once_in_the_chosen_order() {
    let (app, cookie) = app_with_events().await;
    let mut path =
        "/events?range=custom&from=2026-06-01&to=2026-06-15&sort=input_tokens&order=asc".to_owned();
    let mut inputs = Vec::new();
    for _ in 0..10 {
        let page = app.get(&path, Some(&cookie)).await;
        let body = page
            .body
            .split("<tbody>")
            .nth(1)
            .and_then(|b| b.split("</tbody>").next())
            .unwrap_or("");
        for cell in body.split("<td class=\"num\">").skip(1).step_by(5) {
            let number: String = cell
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .collect();
            inputs.push(number.replace(',', "").parse::<i64>().expect("a number"));
        }
        let Some(next) = page.body.split("href=\"").find_map(|s| {
            let href = s.split('"').next()?;
            (href.contains("after=") && s.contains("rel=\"next\""))
                .then(|| href.replace("&amp;", "&"))
        }) else {
            break;
        };
        path = next;
    }
    assert_eq!(inputs.len(), 120, "every call once");
    assert!(inputs.windows(2).all(|w| w[0] <= w[1]), "ascending");
    // The CSV has the same rows in the same order.
    let csv = app
        .get("/api/v1/usage/events.csv?range=custom&from=2026-06-01&to=2026-06-15&sort=input_tokens&order=asc", Some(&cookie))
        .await;
    let from_csv: Vec<i64> = csv
        .body
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(8)
                .and_then(|n| n.parse().ok())
                .expect("input_tokens")
        })
        .collect();
    assert_eq!(from_csv, inputs);
}

#[tokio::test]
async fn a_price_change_reprices_and_says_how_many() {
    let (app, _) = app_with_events().await;
    let root = app.login_browser("root", PASSWORD).await;
    let saved = app
        .submit(
            "/admin/prices",
            &root,
            &[
                ("model", "alpha-model"),
                ("provider", ""),
                ("from", ""),
                ("input", "2"),
                ("output", "4"),
                ("cache_read", ""),
                ("cache_write", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = app.get("/admin/prices", Some(&root.cookie)).await;
    assert!(
        page.body
            .contains("60 of 60 events of this model were re-priced."),
        "{}",
        page.body
    );
    assert!(page.body.contains("alpha-model"));
    app.assert_rollups_exact().await;
    let refused = app
        .submit(
            "/admin/prices",
            &root,
            &[("model", "x"), ("input", "cheap"), ("output", "1")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("input:"));
    let removed = app
        .submit(
            "/admin/prices/remove",
            &root,
            &[("model", "alpha-model"), ("provider", ""), ("from_ms", "0")],
        )
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let outcomes = |entries: Vec<tokentally::audit::StoredEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.outcome).collect()
    };
    // The refused attempt is audited too, as a failure.
    assert_eq!(
        outcomes(app.audit_entries("price.set").await),
        ["success", "failure"]
    );
    assert_eq!(
        outcomes(app.audit_entries("price.remove").await),
        ["success"]
    );
    app.assert_rollups_exact().await;
}

#[tokio::test]
async fn responses_carry_the_security_headers() {
    let app = TestApp::new().await;
    let page = app.get("/login", None).await;
    let csp = page.headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["referrer-policy"], "same-origin");
}

/// Pages, JSON and CSV go gzipped to clients that take it, and unpack to
/// what an uncompressed client gets; the CSRF token in a page is masked
/// afresh each time, so no secret repeats in compressed pages (BREACH),
/// and a masked token still passes.
#[tokio::test]
async fn answers_are_gzipped_when_asked_and_csrf_tokens_never_repeat() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use std::io::Read;
    let (app, cookie) = app_with_events().await;
    let fetch = |path: &str, gzip: bool| {
        let mut request = Request::get(path).header(header::COOKIE, cookie.as_str());
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip, deflate, br");
        }
        app.request(request.body(Body::empty()).expect("request"))
    };
    let unpack = |raw: &[u8]| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_string(&mut text)
            .expect("gzip");
        text
    };
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    for path in [
        format!("/api/v1/usage?{range}&group_by=model"),
        format!("/api/v1/events.csv?{range}"),
        format!("/api/v1/events?{range}&limit=50"),
    ] {
        let plain = fetch(&path, false).await;
        let packed = fetch(&path, true).await;
        assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(packed.headers[header::CONTENT_ENCODING], "gzip", "{path}");
        assert!(packed.raw.len() < plain.raw.len(), "{path}");
        assert_eq!(unpack(&packed.raw), plain.body, "{path}");
    }

    let page = fetch(&format!("/?{range}"), true).await;
    assert_eq!(page.headers[header::CONTENT_ENCODING], "gzip");
    let first = unpack(&page.raw);
    let again = unpack(&fetch(&format!("/?{range}"), true).await.raw);
    assert!(first.contains("alpha-model"));
    let (token_1, token_2) = (
        common::csrf_token(&first).expect("a token"),
        common::csrf_token(&again).expect("a token"),
    );
    assert_ne!(token_1, token_2, "masked afresh on every page");
    // Either masked form signs the user out (the layout's logout form).
    let response = app
        .post_form("/logout", Some(&cookie), &[("csrf_token", &token_1)])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
}

#[tokio::test]
async fn a_bucket_that_would_make_a_huge_page_is_coarsened_with_a_note() {
    let (app, cookie) = app_with_events().await;
    // A year by hour is 8,000+ bars: shown by week, and the page says so.
    let year = app
        .get(
            "/?range=custom&from=2025-06-15&to=2026-06-15&bucket=hour",
            Some(&cookie),
        )
        .await;
    assert_eq!(year.status, StatusCode::OK);
    assert!(
        year.body
            .contains("By hour this range has more than 400 bars"),
        "{}",
        year.body
    );
    let rows = year.body.matches("<tr").count();
    assert!(rows <= 400, "{rows} table rows");
    assert!(
        year.body.contains("<dd>120</dd>"),
        "every event still counted"
    );
    // Two weeks by hour (336 bars) are shown as asked.
    let fortnight = app
        .get(
            "/?range=custom&from=2026-06-01&to=2026-06-15&bucket=hour",
            Some(&cookie),
        )
        .await;
    assert_eq!(fortnight.status, StatusCode::OK);
    assert!(!fortnight.body.contains("bars; shown by"));
    assert!(fortnight.body.matches("<tr").count() > 336);
}
