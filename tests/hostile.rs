//! A corpus of malformed and hostile requests over the real router: each
//! gets a clear 4xx, none writes anything, nothing is reflected unescaped
//! into a page. Names that carry SQL or HTML are valid data: they are
//! stored as given (parameters, never SQL text) and always shown escaped.

mod common;

use axum::http::StatusCode;
use common::{PASSWORD, TestApp, TestResponse};
use serde_json::json;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

const XSS: &str = "<script>alert(1)</script>";

struct Fixture {
    app: TestApp,
    token: String,
    cookie: String,
}

async fn fixture() -> Fixture {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let token = app.create_token("root", TokenScope::Ingest).await;
    let cookie = app.login("root", PASSWORD).await;
    Fixture { app, token, cookie }
}

fn event() -> serde_json::Value {
    json!({"id": "h1", "timestamp": "2026-06-10T10:00:00Z", "model": "m",
           "input_tokens": 10, "output_tokens": 1})
}

fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut event = event();
    event[field] = value;
    json!([event]).to_string().into_bytes()
}

async fn post(f: &Fixture, path: &str, content_type: &str, body: Vec<u8>) -> TestResponse {
    f.app
        .post_bytes(
            path,
            Some(&f.token),
            &[("content-type", content_type)],
            body,
        )
        .await
}

async fn events_stored(f: &Fixture) -> i64 {
    f.app.stored_by_user().await.iter().map(|(_, n, _)| n).sum()
}

#[tokio::test]
async fn malformed_events_get_a_4xx_naming_the_problem_and_write_nothing() {
    let f = fixture().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("huge number", "application/json", with("input_tokens", json!(1e30)), 422, "input_tokens"),
        ("number past i64", "application/json", br#"[{"id":"h1","timestamp":"2026-06-10T10:00:00Z","model":"m","input_tokens":99999999999999999999999,"output_tokens":1}]"#.to_vec(), 422, "input_tokens"),
        ("negative tokens", "application/json", with("output_tokens", json!(-5)), 422, "output_tokens"),
        ("fractional tokens", "application/json", with("input_tokens", json!(1.5)), 422, "input_tokens"),
        ("far-future timestamp", "application/json", with("timestamp", json!("2099-01-01T00:00:00Z")), 422, "timestamp"),
        ("year zero", "application/json", with("timestamp", json!("0000-01-01T00:00:00Z")), 422, "timestamp"),
        ("timestamp not a time", "application/json", with("timestamp", json!(XSS)), 422, "timestamp"),
        ("negative cost", "application/json", with("cost", json!("-1")), 422, "cost"),
        ("cost not a number", "application/json", with("cost", json!("1e999")), 422, "cost"),
        ("control characters", "application/json", with("model", json!("m\u{0}\u{7}")), 422, "model"),
        ("very long name", "application/json", with("project", json!("p".repeat(10_000))), 422, "project"),
        ("wrong type", "application/json", with("model", json!({"nested": [1, 2]})), 422, "model"),
        ("unknown field", "application/json", with("__proto__", json!(1)), 422, "__proto__"),
        ("invalid UTF-8", "application/json", b"[{\"id\":\"\xff\xfe\"}]".to_vec(), 400, "not valid JSON"),
        ("deeply nested JSON", "application/json", deep.into_bytes(), 400, "JSON"),
        ("not JSON at all", "application/json", b"DROP TABLE events;".to_vec(), 400, "JSON"),
        ("NDJSON with a bad line", "application/x-ndjson", b"{\"id\":\"a\"}\n{oops\n".to_vec(), 422, "line"),
        ("wrong media type", "text/html", format!("<html>{XSS}</html>").into_bytes(), 415, "Content-Type"),
        ("empty array", "application/json", b"[]".to_vec(), 400, "no events"),
    ];
    for (what, content_type, body, status, mention) in cases {
        let response = post(&f, "/api/v1/events", content_type, body).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{what}: {}",
            response.body
        );
        assert!(
            response.body.contains(mention),
            "{what}: {mention:?} not in {}",
            response.body
        );
        // A JSON answer may quote what was sent; it is never a page.
        assert_eq!(
            response.headers["content-type"], "application/json",
            "{what}"
        );
        assert_eq!(
            response.headers["x-content-type-options"], "nosniff",
            "{what}"
        );
        assert_eq!(events_stored(&f).await, 0, "{what} wrote something");
    }
    // OTLP and LiteLLM: garbage in, 4xx out.
    for (path, content_type, body) in [
        (
            "/v1/metrics",
            "application/x-protobuf",
            vec![0xff, 0xff, 0xff, 0x0f, 0x01],
        ),
        (
            "/v1/traces",
            "application/json",
            b"{\"resourceSpans\": 5}".to_vec(),
        ),
        (
            "/v1/logs",
            "application/x-protobuf",
            b"\x0a\xff\xff\xff\xff\x0f".to_vec(),
        ),
        (
            "/api/v1/ingest/litellm",
            "application/json",
            b"{\"id\": [".to_vec(),
        ),
    ] {
        let response = post(&f, path, content_type, body).await;
        assert!(
            response.status.is_client_error(),
            "{path}: {}",
            response.status
        );
        assert_eq!(events_stored(&f).await, 0, "{path} wrote something");
    }
    f.app.assert_rollups_exact().await;
}

#[tokio::test]
async fn sql_and_html_in_names_are_stored_as_data_and_shown_escaped() {
    let f = fixture().await;
    let names = [
        "x'); DROP TABLE events;--",
        XSS,
        "\" onmouseover=\"alert(1)",
        "</td></tr><img src=x onerror=alert(1)>",
    ];
    let events: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({"id": format!("{name}-{i}"), "timestamp": "2026-06-10T10:00:00Z", "model": name,
                   "activity": name, "project": name, "provider": name,
                   "input_tokens": 10, "output_tokens": 1})
        })
        .collect();
    let response = post(
        &f,
        "/api/v1/events",
        "application/json",
        serde_json::Value::Array(events).to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(
        events_stored(&f).await,
        4,
        "the table is still there, with all four"
    );
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    for path in [
        format!("/?{range}"),
        format!("/?{range}&split=activity"),
        format!("/events?{range}"),
        format!("/events?{range}&model={}", common::form_encode(XSS)),
        format!("/team?{range}"),
        format!("/admin/audit?actor={}", common::form_encode(XSS)),
    ] {
        let page = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for raw in ["<script>alert", "<img src=x", "\" onmouseover=\""] {
            assert!(!page.body.contains(raw), "{path} shows {raw:?} unescaped");
        }
    }
    // The chart's JSON data block cannot be closed from inside.
    let overview = f.app.get(&format!("/?{range}"), Some(&f.cookie)).await;
    let data = overview
        .body
        .split("id=\"usage-chart-data\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the chart's data block");
    assert!(
        !data.contains('<') && data.contains("\\u003cscript"),
        "{data}"
    );
}

#[tokio::test]
async fn hostile_urls_and_parameters_get_a_clear_4xx() {
    let f = fixture().await;
    let cases = [
        ("/assets/../Cargo.toml", 404),
        ("/assets/..%2f..%2fCargo.toml", 404),
        ("/assets/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/assets/app.css%00.png", 404),
        ("/events?sort=input_tokens;DROP%20TABLE%20events", 400),
        ("/events?limit=-1", 400),
        ("/events?after=n1.1'%20OR%201=1", 400),
        ("/?from=%3Cscript%3Ealert(1)%3C/script%3E&range=custom", 400),
        ("/?zone=../../etc/passwd", 400),
        (
            "/?bucket=hour&range=custom&from=1900-01-01&to=2100-01-01",
            400,
        ),
        ("/api/v1/usage?group_by=%3Cb%3E", 400),
        ("/api/v1/usage?view=nobody-at-all", 400),
    ];
    for (path, status) in cases {
        let response = f.app.get(path, Some(&f.cookie)).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{path}: {}",
            response.body
        );
        assert!(
            !response.body.contains("<script>"),
            "{path} reflected a script"
        );
    }
    // (Header size limits are the listener's: tests/edge.rs.)
}

// ---------------------------------------------------------------------
// CSV formula injection: a name planted by a member or a User-Agent sent
// by anyone never reaches the admin's spreadsheet as a formula.
// ---------------------------------------------------------------------

/// What a spreadsheet would run if a cell started with it.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cells of a CSV export, as a spreadsheet reads them: a header and
/// records, keyed by column name.
fn csv_records(body: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a well-formed record");
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn assert_no_formula(record: &std::collections::BTreeMap<String, String>, columns: &[&str]) {
    for column in columns {
        let cell = &record[*column];
        assert!(
            !cell.starts_with(FORMULA_STARTS),
            "{column} cell {cell:?} would be a formula"
        );
    }
}

#[tokio::test]
async fn events_csv_cells_from_names_are_never_formulas() {
    let f = fixture().await;
    let planted = [
        ("id", "=1+2"),
        ("model", "=HYPERLINK(\"http://evil\",\"x\")"),
        ("activity", "+1+1"),
        ("project", "-2+3"),
        ("provider", "@SUM(A1)"),
        ("source", "-cmd"),
    ];
    let mut event = event();
    for (field, value) in planted {
        event[field] = json!(value);
    }
    event["cost"] = json!("0.5");
    let body = json!([event]).to_string().into_bytes();
    let response = post(&f, "/api/v1/events", "application/json", body).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);

    for path in [
        "/api/v1/events.csv?range=custom&from=2026-06-01&to=2026-06-15",
        // The events page's "Export CSV".
        "/api/v1/usage/events.csv?range=custom&from=2026-06-01&to=2026-06-15",
    ] {
        let export = f.app.get(path, Some(&f.cookie)).await;
        assert_eq!(export.status, StatusCode::OK, "{path}: {}", export.body);
        let records = csv_records(&export.body);
        assert_eq!(records.len(), 1, "{path}: {}", export.body);
        let record = &records[0];
        assert_no_formula(
            record,
            &[
                "id", "user", "model", "provider", "activity", "project", "source",
            ],
        );
        // The value is all there, made text by one leading quote.
        for (field, value) in planted {
            assert_eq!(record[field], format!("'{value}"), "{path}: {field}");
        }
        assert_eq!(record["user"], "root");
        // Numbers we write stay numbers.
        assert_eq!(record["input_tokens"], "10");
        assert_eq!(record["output_tokens"], "1");
        assert_eq!(record["cost"], "0.500000");
        assert_eq!(record["timestamp"], "2026-06-10T10:00:00Z");
    }
}

#[tokio::test]
async fn audit_csv_cells_from_requests_are_never_formulas() {
    let f = fixture().await;
    let agent = "=cmd|' /C calc'!A0";
    // Not signed in: a failed sign-in is audited with its User-Agent.
    let page = f.app.get("/login", None).await;
    let cookie = page.session_cookie().expect("a session");
    let csrf = common::csrf_token(&page.body).expect("a CSRF token");
    let form = format!(
        "username=%3D1%2B1&password=wrong&csrf_token={}",
        common::form_encode(&csrf)
    );
    let request = axum::http::Request::post("/login")
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", agent)
        .body(axum::body::Body::from(form))
        .expect("request");
    assert_eq!(
        f.app.request(request).await.status,
        StatusCode::UNAUTHORIZED
    );
    f.app.state.audit.flush().await;

    let export = f
        .app
        .get("/admin/audit.csv?action=login.failure", Some(&f.cookie))
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    let records = csv_records(&export.body);
    assert!(!records.is_empty(), "{}", export.body);
    for record in &records {
        assert_no_formula(
            record,
            &[
                "actor",
                "target",
                "route",
                "client_addr",
                "user_agent",
                "details",
            ],
        );
        assert!(record["seq"].parse::<u64>().is_ok(), "seq stays a number");
    }
    assert!(
        records
            .iter()
            .any(|r| r["user_agent"] == format!("'{agent}")),
        "the User-Agent is kept, as text: {}",
        export.body
    );
}

// ---------------------------------------------------------------------
// Open redirect after sign-in: `next` only ever leads to a path on this
// site; what a browser would strip or turn into `//` leads to `/`.
// ---------------------------------------------------------------------

const HOSTILE_NEXT: [&str; 17] = [
    "//evil.example",
    "/\\evil.example",
    "/\t/evil.example",
    "/\tevil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/%09/evil.example",
    "/%2f%2fevil.example",
    "/%2F/evil.example",
    "/%5cevil.example",
    "https://evil.example",
    "javascript:alert(1)",
    "evil.example",
    "\\\\evil.example",
    "/ /evil.example",
    "/\u{1}x",
    "/\u{7f}x",
];

const LOCAL_NEXT: [&str; 4] = [
    "/events?range=30d&model=gpt-5",
    "/",
    "/team?sort=cost&order=asc",
    "/?range=custom&from=2026-06-01&to=2026-06-15&split=activity",
];

#[tokio::test]
async fn sign_in_never_redirects_to_another_site() {
    let f = fixture().await;
    for next in HOSTILE_NEXT {
        let response = f
            .app
            .login_form(&[("username", "root"), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(response.location(), Some("/"), "{next:?}");
    }
    for next in LOCAL_NEXT {
        let response = f
            .app
            .login_form(&[("username", "root"), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(response.location(), Some(next), "{next:?}");
    }
    // Signed in already, the login page sends you on at once: same rule.
    for (next, location) in HOSTILE_NEXT
        .iter()
        .map(|n| (*n, "/"))
        .chain(LOCAL_NEXT.iter().map(|n| (*n, *n)))
    {
        let path = format!("/login?next={}", common::form_encode(next));
        let response = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(response.location(), Some(location), "{next:?}");
    }
}

// ---------------------------------------------------------------------
// Misspelt query parameters: refused with a 400 naming the parameter and
// the known ones, never silently ignored; every parameter the pages put
// in their own links and GET forms is still accepted.
// ---------------------------------------------------------------------

#[tokio::test]
async fn unknown_query_parameters_are_refused_by_name() {
    let f = fixture().await;
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    // Pages: the error page names the parameter and lists the known ones.
    for (path, name, known) in [
        (format!("/?{range}&modle=gpt-5"), "modle", "model"),
        (format!("/events?{range}&sortt=cost"), "sortt", "sort"),
        (format!("/events?{range}&split=model"), "split", "after"),
        (format!("/team?{range}&metrc=cost"), "metrc", "metric"),
        ("/admin/prices?model=x".to_owned(), "model", "none"),
        ("/admin/audit?actr=root".to_owned(), "actr", "actor"),
        (
            "/admin/audit.csv?acton=login.failure".to_owned(),
            "acton",
            "action",
        ),
    ] {
        let page = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains(&format!("{name}: unknown parameter")),
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains(known),
            "{path} lists {known}: {}",
            page.body
        );
    }
    // The read API: JSON naming the field, in the API's error shape.
    for path in [
        format!("/api/v1/usage?{range}&grup_by=model"),
        format!("/api/v1/events?{range}&limt=5"),
        format!("/api/v1/usage/events?{range}&limt=5"),
        format!("/api/v1/events.csv?{range}&limt=5"),
        format!("/api/v1/usage/events.csv?{range}&limt=5"),
    ] {
        let response = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
        let body = response.json();
        let name = path.rsplit('&').next().and_then(|p| p.split('=').next());
        assert_eq!(body["field"].as_str(), name, "{path}: {body}");
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("unknown parameter"), "{path}: {body}");
        for known in ["range", "from", "to", "group_by", "limit", "after", "view"] {
            assert!(reason.contains(known), "{path} lists {known}: {body}");
        }
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with(name.unwrap_or("?")))
        );
    }
}

/// The `href`s of a page that lead to one of its own pages or the API.
fn own_links(body: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .filter(|href| href.starts_with('/') && !href.starts_with("/assets/"))
        .collect()
}

/// What submitting each GET form of a page requests: its action with every
/// named field at its value (a select at its first option).
fn get_form_submissions(body: &str) -> Vec<String> {
    let attribute = |tag: &str, name: &str| {
        tag.split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(|v| v.replace("&amp;", "&"))
    };
    let mut out = Vec::new();
    for form in body.split("<form").skip(1) {
        let form = form.split("</form>").next().unwrap_or("");
        let open = form.split('>').next().unwrap_or("");
        if attribute(open, "method").as_deref() != Some("get") {
            continue;
        }
        let action = attribute(open, "action").unwrap_or_default();
        let mut fields = Vec::new();
        for tag in form.split('<').skip(1) {
            let Some(name) = attribute(tag, "name") else {
                continue;
            };
            let value = if tag.starts_with("select") {
                form.split(&format!("name=\"{name}\""))
                    .nth(1)
                    .and_then(|rest| attribute(rest, "value"))
                    .unwrap_or_default()
            } else {
                attribute(tag, "value").unwrap_or_default()
            };
            fields.push(format!(
                "{}={}",
                common::form_encode(&name),
                common::form_encode(&value)
            ));
        }
        out.push(format!("{action}?{}", fields.join("&")));
    }
    out
}

#[tokio::test]
async fn every_parameter_the_pages_write_is_accepted() {
    let f = fixture().await;
    let response = post(
        &f,
        "/api/v1/events",
        "application/json",
        with("activity", json!("chat")),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let range = "range=custom&from=2026-06-01&to=2026-06-15";
    let mut checked = 0;
    for start in [
        format!("/?{range}&split=activity&metric=cost&view=me&zone=Europe/Berlin"),
        format!(
            "/events?{range}&model=m&sort=input_tokens&order=asc&limit=1&bucket=week&week_start=sunday"
        ),
        format!("/team?{range}&metric=cost&sort=calls&order=asc&bucket=day"),
        "/admin/audit?actor=root&from=2026-06-01&to=2026-06-30".to_owned(),
        "/admin/prices".to_owned(),
    ] {
        let page = f.app.get(&start, Some(&f.cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{start}: {}", page.body);
        let targets = own_links(&page.body)
            .into_iter()
            .chain(get_form_submissions(&page.body));
        for target in targets {
            if target.starts_with("/logout") {
                continue;
            }
            let response = f.app.get(&target, Some(&f.cookie)).await;
            assert_ne!(
                response.status,
                StatusCode::BAD_REQUEST,
                "{start} leads to {target}: {}",
                response.body
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} links and forms followed");
}

// ---------------------------------------------------------------------
// Out-of-range dates: the 400 names the parameter and says what is wrong
// in our own words, never the time library's message.
// ---------------------------------------------------------------------

#[tokio::test]
async fn impossible_dates_are_refused_in_our_own_words() {
    let f = fixture().await;
    let cases = [
        ("from=2026-02-30&to=2026-03-01", "from", "no day 30"),
        ("from=2026-13-01&to=2026-03-01", "from", "no month 13"),
        (
            "from=99999-01-01&to=2026-03-01",
            "from",
            "year must be from",
        ),
        ("from=2026-01-01&to=9999-12-31", "to", "year must be from"),
        (
            "from=9999-12-31&to=9999-12-31T00:00:00Z",
            "from",
            "year must be from",
        ),
        ("from=-009999-01-01&to=2026-01-01", "from", "neither a date"),
        ("from=2026-06-01&to=2026-02-29T00:00:00Z", "to", "no day 29"),
        ("from=2026-00-10&to=2026-03-01", "from", "no month 0"),
    ];
    // What only the time library says.
    let internal = [
        "overflowed",
        "Unix timestamp",
        "parameter '",
        "jiff",
        "parsing",
    ];
    for (query, field, says) in cases {
        let path = format!("/api/v1/usage?range=custom&{query}");
        let response = f.app.get(&path, Some(&f.cookie)).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
        let body = response.json();
        assert_eq!(body["field"], field, "{path}: {body}");
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(says), "{path}: {body}");
        for path in [
            format!("/?range=custom&{query}"),
            format!("/events?range=custom&{query}"),
            format!("/api/v1/events.csv?range=custom&{query}"),
        ] {
            let response = f.app.get(&path, Some(&f.cookie)).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(response.body.contains(says), "{path}: {}", response.body);
            for word in internal {
                assert!(!response.body.contains(word), "{path}: {}", response.body);
            }
        }
    }
    // The audit log's date filters: the same words.
    for (query, says) in [
        ("from=2026-02-30", "no day 30"),
        ("to=9999-12-31", "year must be from"),
        ("from=-009999-01-01", "neither a date"),
        ("from=99999-01-01", "year must be from"),
    ] {
        for path in [
            format!("/admin/audit?{query}"),
            format!("/admin/audit.csv?{query}"),
        ] {
            let response = f.app.get(&path, Some(&f.cookie)).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(response.body.contains(says), "{path}: {}", response.body);
            for word in internal {
                assert!(!response.body.contains(word), "{path}: {}", response.body);
            }
        }
    }
}
