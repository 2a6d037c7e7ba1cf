//! `/metrics` usage series: the exposition parses, the values are the
//! ingested sums of the current UTC month, and the cap holds with more
//! users and models than it keeps.

use std::collections::BTreeMap;

use crate::common::TestApp;
use axum::http::StatusCode;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::metrics::usage::{OTHER, TOP};
use tokentally::model::UserId;
use tokentally::usage::store::{Inserter, NewEvent};

const USERS: i64 = 25;
const MODELS: i64 = 24;
/// 2026-06-01T00:00:00Z: the month of `TestApp`'s clock.
const JUNE_MS: i64 = 1_780_272_000_000;

/// One parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the text format strictly enough to fail on a malformed line.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "name in {line:?}"
        );
        let mut parsed = BTreeMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once("=\"").expect("label");
            parsed.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
        }
        samples.push((name.to_owned(), parsed, value));
    }
    samples
}

#[tokio::test]
async fn usage_series_are_the_month_s_sums_capped_at_the_largest_users_and_models() {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    let admin_read = app.create_token("root", TokenScope::Read).await;
    // User i, model j: one call of 1000·i + j tokens and (i·j) cents, in
    // June; and one in May that the month leaves out.
    app.state
        .db
        .write(|conn| {
            let mut events = Vec::new();
            for i in 1..=USERS {
                conn.execute(
                    "INSERT INTO users (username, role, created_at, updated_at) VALUES (?1, 'member', 0, 0)",
                    [format!("u{i:02}")],
                )?;
                let user = UserId(conn.last_insert_rowid());
                for j in 1..=MODELS {
                    for (k, ts_ms) in [(0, JUNE_MS + 3_600_000), (1, JUNE_MS - 3_600_000)] {
                        events.push(NewEvent {
                            ts_ms: ts_ms + i * 1000 + j,
                            user,
                            source: "api".to_owned(),
                            external_id: format!("e-{i}-{j}-{k}"),
                            model: format!("m{j:02}"),
                            provider: None,
                            activity: None,
                            project: None,
                            tokens: [1000 * i + j, 0, 0, 0],
                            extras: Default::default(),
                            reported_cost_micros: Some(i * j * 10_000),
                            session: None,
                            machine: None,
                            identity: None,
                        });
                    }
                }
            }
            Inserter::new(conn)?.insert(conn, &events)?;
            conn.execute(
                "INSERT INTO budgets (name, period, time_zone, measure, amount, scope, thresholds, created_ms, updated_ms)
                 VALUES ('all', 'month', 'UTC', 'tokens', 10000000, 'everyone', '100', 0, 0),
                        ('each', 'month', 'UTC', 'tokens', 1000000, 'each_member', '100', 0, 0)",
                [],
            )?;
            Ok::<_, tokentally::db::DbError>(())
        })
        .await
        .expect("usage stored");

    let scraped = app
        .client_at(crate::common::DEFAULT_PEER)
        .header("authorization", &format!("Bearer {admin_read}"))
        .get("/metrics", None)
        .await;
    assert_eq!(scraped.status, StatusCode::OK);
    let samples = parse(&scraped.body);
    let of = |name: &str| -> Vec<&Sample> { samples.iter().filter(|s| s.0 == name).collect() };

    let tokens = of("tokentally_usage_tokens");
    assert!(tokens.len() <= (TOP + 1) * (TOP + 1), "{}", tokens.len());
    let users: std::collections::BTreeSet<&str> =
        tokens.iter().map(|s| s.1["user"].as_str()).collect();
    let models: std::collections::BTreeSet<&str> =
        tokens.iter().map(|s| s.1["model"].as_str()).collect();
    assert_eq!(users.len(), TOP + 1, "{users:?}");
    assert_eq!(models.len(), TOP + 1, "{models:?}");
    assert!(users.contains(OTHER) && models.contains(OTHER));
    // The largest by cost are kept: u25 and m24; the smallest are not.
    assert!(users.contains("u25") && !users.contains("u01"));
    assert!(models.contains("m24") && !models.contains("m01"));

    // Every series sums to the month's total; kept cells are exact.
    let total_tokens: i64 = (1..=USERS)
        .flat_map(|i| (1..=MODELS).map(move |j| 1000 * i + j))
        .sum();
    let summed: f64 = tokens.iter().map(|s| s.2).sum();
    assert_eq!(summed as i64, total_tokens);
    let cell = |name: &str, user: &str, model: &str| {
        of(name)
            .into_iter()
            .find(|s| s.1["user"] == user && s.1["model"] == model)
            .map(|s| s.2)
            .unwrap_or_else(|| panic!("no {name} {user} {model}"))
    };
    assert_eq!(cell("tokentally_usage_tokens", "u25", "m24"), 25_024.0);
    assert_eq!(cell("tokentally_usage_cost_usd", "u25", "m24"), 6.0);
    assert_eq!(cell("tokentally_usage_events", "u25", "m24"), 1.0);
    // The others: users u01…u05, model m24.
    let others: i64 = (1..=5).map(|i| 1000 * i + 24).sum();
    assert_eq!(cell("tokentally_usage_tokens", OTHER, "m24"), others as f64);
    let total_cost: f64 = of("tokentally_usage_cost_usd").iter().map(|s| s.2).sum();
    let expected_cost: i64 = (1..=USERS)
        .flat_map(|i| (1..=MODELS).map(move |j| i * j * 10_000))
        .sum();
    assert!((total_cost - expected_cost as f64 / 1e6).abs() < 1e-3);

    // Budgets: the pooled one's ratio; each member's capped.
    let ratios = of("tokentally_budget_used_ratio");
    let pooled = ratios
        .iter()
        .find(|s| s.1["budget"] == "all")
        .expect("pooled budget");
    assert!((pooled.2 - total_tokens as f64 / 10_000_000.0).abs() < 1e-9);
    let each: Vec<_> = ratios.iter().filter(|s| s.1["budget"] == "each").collect();
    assert_eq!(each.len(), TOP);
    let u25: i64 = (1..=MODELS).map(|j| 25_000 + j).sum();
    let top = each
        .iter()
        .find(|s| s.1["member"] == "u25")
        .expect("largest member kept");
    assert!((top.2 - u25 as f64 / 1_000_000.0).abs() < 1e-9);
    assert!(!each.iter().any(|s| s.1["member"] == "u01"));
    let members = of("tokentally_budget_members");
    assert!(
        members
            .iter()
            .any(|s| s.1["budget"] == "each" && s.2 == USERS as f64)
    );
}
