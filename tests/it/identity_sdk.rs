//! Issue 14's check with the real OpenTelemetry SDK and its OTLP/HTTP
//! exporters, as a team's managed settings would send: one collector
//! token, three people named three ways — Ada's `user.email` on the data
//! points (log records), Grace's on the resource, jdoe by an admin's
//! `enduser.id` on the resource — and Carol, whose email no account has.
//! Each person's usage lands on their account; Carol's is held as
//! unassigned, then an admin links it and her past moves exactly: per-day
//! totals per user, before and after, equal an oracle built from what the
//! SDK was given, in two zones, through the read API.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use crate::common::{self, Browser, PASSWORD, TestApp};
use crate::otlp_exporter::client;
use axum::http::StatusCode;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use opentelemetry::KeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use tokentally::app::AppOptions;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::auth::users::{self, Profile};
use tokentally::clock::Clock as _;
use tokentally::ingest::otlp::ClaudeCodeSignal;

/// Where a person's identity is put.
#[derive(Debug, Clone, Copy)]
enum Named {
    /// `user.email` on each data point or log record.
    EmailOnItems(&'static str),
    /// `user.email` on the resource.
    EmailOnResource(&'static str),
    /// `enduser.id` on the resource.
    EndUser(&'static str),
}

/// The people of the check: who sends, how they are named, and the
/// account their usage belongs to once Carol is linked.
const PEOPLE: [(Named, &str); 4] = [
    (Named::EmailOnItems("Ada@Example.com"), "ada"),
    (Named::EmailOnResource("grace@example.com"), "grace"),
    (Named::EndUser("jdoe"), "jdoe"),
    (Named::EmailOnResource("carol@example.com"), "carol"),
];

/// Carol's holder account, as the read API names it while she is unknown.
const CAROL_HELD: &str = "~email-";

impl Named {
    fn resource(self) -> Resource {
        let mut builder = Resource::builder().with_service_name("claude-code");
        match self {
            Named::EmailOnResource(email) => {
                builder = builder.with_attribute(KeyValue::new("user.email", email));
            }
            Named::EndUser(name) => {
                builder = builder.with_attribute(KeyValue::new("enduser.id", name));
            }
            Named::EmailOnItems(_) => {}
        }
        builder.build()
    }

    fn on_items(self) -> Vec<(&'static str, String)> {
        match self {
            Named::EmailOnItems(email) => vec![("user.email", email.to_owned())],
            _ => Vec::new(),
        }
    }
}

/// Per (account, local day): events and the four token counts.
type Table = BTreeMap<(String, String), [i64; 5]>;

/// An admin `root` with a collector token, the three people with their
/// accounts (Ada and Grace with their emails on their profiles), and no
/// Carol yet; served on a real port, its clock the SDK's real time.
async fn team(signal: ClaudeCodeSignal) -> (TestApp, String, HashMap<String, String>) {
    let app = TestApp::with_options(|o: &mut AppOptions| o.claude_code_signal = signal).await;
    app.clock.set(Timestamp::now());
    app.create_user("root", Role::Admin).await;
    for (name, email) in [
        ("ada", Some("ada@example.com")),
        ("grace", Some("grace@example.com")),
        ("jdoe", None),
    ] {
        let id = app.create_user(name, Role::Member).await;
        let profile = Profile {
            display_name: None,
            email: email.map(str::to_owned),
            time_zone: None,
        };
        app.state
            .db
            .write(move |conn| users::update_profile(conn, id, &profile, 0))
            .await
            .expect("profile");
    }
    let token = app.create_token("root", TokenScope::Collector).await;
    let address = app.serve().await;
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {token}"))]);
    (app, format!("http://{address}"), headers)
}

fn meter_provider(base: &str, headers: &HashMap<String, String>, named: Named) -> SdkMeterProvider {
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_http_client(client())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/metrics"))
        .with_headers(headers.clone())
        .build()
        .expect("metric exporter");
    SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter).build())
        .with_resource(named.resource())
        .build()
}

fn logger_provider(
    base: &str,
    headers: &HashMap<String, String>,
    named: Named,
) -> SdkLoggerProvider {
    let exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_http_client(client())
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{base}/v1/logs"))
        .with_headers(headers.clone())
        .build()
        .expect("log exporter");
    SdkLoggerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(named.resource())
        .build()
}

/// The tokens person `index` uses in request `n`: distinct per person and
/// request, so a misattributed or doubled request shows.
fn tokens(index: usize, n: usize) -> [i64; 4] {
    let (p, n) = (index as i64 + 1, n as i64 + 1);
    [100 * p + n, 10 * p + n, 1000 * p, 7 * n]
}

fn local_day(ts: Timestamp, zone: &TimeZone) -> String {
    ts.to_zoned(zone.clone()).date().to_string()
}

fn add(table: &mut Table, account: &str, day: String, [a, b, c, d]: [i64; 4]) {
    let cell = table.entry((account.to_owned(), day)).or_default();
    for (total, value) in cell.iter_mut().zip([1, a, b, c, d]) {
        *total += value;
    }
}

/// Per-day totals per user through `/api/v1/usage` (the rollups and the
/// planner), as the admin reads them in `zone`.
async fn answered(app: &TestApp, admin: &str, zone: &str) -> Table {
    let now = app.clock.now();
    let from = local_day(
        now - jiff::SignedDuration::from_hours(24 * 9),
        &TimeZone::UTC,
    );
    let to = local_day(now + jiff::SignedDuration::from_hours(48), &TimeZone::UTC);
    let answer = app
        .get(
            &format!(
                "/api/v1/usage?group_by=user&bucket=day&zone={zone}&range=custom&from={from}&to={to}"
            ),
            Some(admin),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let mut table = Table::new();
    for row in answer.json()["rows"].as_array().expect("rows") {
        let events = row["events"].as_i64().expect("events");
        if events == 0 {
            continue;
        }
        let mut user = row["group"].as_str().expect("a user").to_owned();
        if user.starts_with(CAROL_HELD) {
            user = CAROL_HELD.to_owned();
        }
        let amount = |name: &str| row[name].as_i64().expect("a count");
        table.insert(
            (user, row["bucket"].as_str().expect("bucket").to_owned()),
            [
                events,
                amount("input_tokens"),
                amount("output_tokens"),
                amount("cache_read_tokens"),
                amount("cache_write_tokens"),
            ],
        );
    }
    table
}

/// The oracle: per (account, local day), what the SDK was given, with
/// Carol's usage on `carol_account`.
fn expected(made: &[(usize, Timestamp, [i64; 4])], carol_account: &str, zone: &str) -> Table {
    let zone = TimeZone::get(zone).expect("zone");
    let mut table = Table::new();
    for (person, ts, amounts) in made {
        let account = match PEOPLE[*person].1 {
            "carol" => carol_account,
            name => name,
        };
        add(&mut table, account, local_day(*ts, &zone), *amounts);
    }
    table
}

/// Creates Carol's account and links her email on the Identities page,
/// as an admin would.
async fn link_carol(app: &TestApp, admin: &Browser) {
    app.create_user("carol", Role::Member).await;
    let page = app.get("/admin/identities", Some(&admin.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("carol@example.com"), "Carol is listed");
    let on_page = Browser {
        cookie: admin.cookie.clone(),
        csrf: common::csrf_token(&page.body).expect("CSRF token"),
    };
    let fields = [
        ("kind", "email"),
        ("value", "carol@example.com"),
        ("user", "carol"),
    ];
    let linked = app
        .submit("/admin/identities/link", &on_page, &fields)
        .await;
    assert_eq!(linked.status, StatusCode::SEE_OTHER, "{}", linked.body);
}

/// Before and after Carol is linked, in two zones, the API answers the
/// oracle, and the rollups equal the raw events.
/// `count_events`: compare the number of events too, not only tokens.
async fn check_held_then_linked(
    app: &TestApp,
    made: &[(usize, Timestamp, [i64; 4])],
    count_events: bool,
) {
    let only_tokens = |mut table: Table| {
        if !count_events {
            table.values_mut().for_each(|cell| cell[0] = 0);
        }
        table
    };
    let admin = app.login_browser("root", PASSWORD).await;
    for zone in ["UTC", "America/New_York"] {
        assert_eq!(
            only_tokens(answered(app, &admin.cookie, zone).await),
            only_tokens(expected(made, CAROL_HELD, zone)),
            "held, {zone}"
        );
    }
    app.assert_rollups_exact().await;
    link_carol(app, &admin).await;
    for zone in ["UTC", "America/New_York"] {
        assert_eq!(
            only_tokens(answered(app, &admin.cookie, zone).await),
            only_tokens(expected(made, "carol", zone)),
            "linked, {zone}"
        );
    }
    app.assert_rollups_exact().await;
    let entries = app.audit_entries("identity.link").await;
    assert_eq!(entries.len(), 1, "the link is audited once");
}

/// Claude Code's token counters through the SDK's metric exporter
/// (cumulative, protobuf), two exports per person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_s_metrics_of_three_people_through_one_collector_land_on_each() {
    let (app, base, headers) = team(ClaudeCodeSignal::Metrics).await;
    let mut made = Vec::new();
    for (index, (named, _)) in PEOPLE.iter().enumerate() {
        let provider = meter_provider(&base, &headers, *named);
        for n in 0..2 {
            let amounts = tokens(index, n);
            let meter = provider.meter("com.anthropic.claude_code");
            let counter = meter
                .f64_counter("claude_code.token.usage")
                .with_unit("tokens")
                .build();
            for (kind, value) in ["input", "output", "cacheRead", "cacheCreation"]
                .into_iter()
                .zip(amounts)
            {
                let mut attributes: Vec<KeyValue> = named
                    .on_items()
                    .into_iter()
                    .map(|(key, value)| KeyValue::new(key, value))
                    .collect();
                attributes.extend([
                    KeyValue::new("session.id", format!("s-{index}")),
                    KeyValue::new("model", "claude-sonnet-4-5-20250929"),
                    KeyValue::new("type", kind),
                ]);
                counter.add(value as f64, &attributes);
            }
            let flushed = provider.clone();
            tokio::task::spawn_blocking(move || flushed.force_flush().expect("export"))
                .await
                .expect("flush");
            // One event per export and person: the counters' growth.
            made.push((index, app.clock.now(), amounts));
        }
    }
    // The exporter's four counters of one export may be one event or
    // several (one per token type): compare the tokens, not the events.
    check_held_then_linked(&app, &made, false).await;
}

/// Claude Code's `api_request` log events through the SDK's log exporter
/// (JSON), spread over the last week at hours that fall on different days
/// in UTC and in New York.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_s_log_events_of_three_people_through_one_collector_land_on_each() {
    let (app, base, headers) = team(ClaudeCodeSignal::Logs).await;
    let midnight = Timestamp::now()
        .to_zoned(TimeZone::UTC)
        .start_of_day()
        .expect("midnight")
        .timestamp();
    let mut made = Vec::new();
    for (index, (named, _)) in PEOPLE.iter().enumerate() {
        let provider = logger_provider(&base, &headers, *named);
        let logger = provider.logger("com.anthropic.claude_code.events");
        for n in 0..6 {
            // 02:00 and 22:00 UTC on alternate days: the first is the
            // previous day in New York.
            let hour = if n % 2 == 0 { 2 } else { 22 };
            let ts = midnight - jiff::SignedDuration::from_hours(24 * (n as i64 + 1))
                + jiff::SignedDuration::from_hours(hour)
                + jiff::SignedDuration::from_secs(index as i64);
            let amounts = tokens(index, n);
            let mut record = logger.create_log_record();
            record.set_event_name("claude_code.api_request");
            let when = SystemTime::UNIX_EPOCH
                + Duration::from_millis(u64::try_from(ts.as_millisecond()).expect("after 1970"));
            record.set_timestamp(when);
            record.add_attributes(named.on_items());
            record.add_attributes([
                ("event.name", "api_request".to_owned()),
                ("event.timestamp", ts.to_string()),
                ("prompt.id", format!("p-{index}-{n}")),
                ("session.id", format!("s-{index}")),
                ("model", "claude-haiku-4-5".to_owned()),
                ("input_tokens", amounts[0].to_string()),
                ("output_tokens", amounts[1].to_string()),
                ("cache_read_tokens", amounts[2].to_string()),
                ("cache_creation_tokens", amounts[3].to_string()),
                ("cost_usd", "0.0125".to_owned()),
            ]);
            logger.emit(record);
            made.push((index, ts, amounts));
        }
        tokio::task::spawn_blocking(move || provider.force_flush().expect("export"))
            .await
            .expect("flush");
    }
    check_held_then_linked(&app, &made, true).await;
}
