//! Unusual usage (`budgets::unusual`) through the real ingest API with
//! the injected clock: a quiet fortnight, then a runaway loop alerts once;
//! a normal hour and usage below the floor alert nobody.

use crate::common::TestApp;
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::budgets::UnusualRule;
use tokentally::model::UserId;
use tokentally::usage::store::{Inserter, NewEvent};

const HOUR_MS: i64 = 3_600_000;
/// The clock of `TestApp`: 2026-06-15T12:00:00Z.
const NOW_MS: i64 = 1_781_524_800_000;

async fn app() -> TestApp {
    TestApp::with_options(|options| {
        options.unusual = UnusualRule {
            factor: 5.0,
            floor_tokens: 300_000,
            floor_cost_micros: 1_000_000,
            channels: vec!["ops".to_owned()],
        };
    })
    .await
}

/// `user`'s fortnight: two calls of `tokens` each (and 1 cent) in every
/// hour from 08:00 to 18:00 UTC, for the 14 days before today.
async fn quiet_fortnight(app: &TestApp, user: UserId, tokens: i64) {
    app.state
        .db
        .write(move |conn| {
            let mut events = Vec::new();
            for day in 1..=14 {
                for hour in 8..18 {
                    for call in 0..2 {
                        let ts_ms = NOW_MS - 12 * HOUR_MS - day * 86_400_000
                            + hour * HOUR_MS
                            + call * 600_000;
                        events.push(NewEvent {
                            ts_ms,
                            user,
                            source: "api".to_owned(),
                            external_id: format!("past-{}-{day}-{hour}-{call}", user.0),
                            model: "m".to_owned(),
                            provider: None,
                            activity: None,
                            project: None,
                            tokens: [tokens, 0, 0, 0],
                            extras: Default::default(),
                            reported_cost_micros: Some(10_000),
                            session: None,
                            machine: None,
                            identity: None,
                        });
                    }
                }
            }
            Inserter::new(conn)?.insert(conn, &events)
        })
        .await
        .expect("history stored");
}

/// Sends `calls` calls of `tokens` each in the last `minutes` minutes.
async fn send(app: &TestApp, token: &str, prefix: &str, calls: i64, tokens: i64, minutes: i64) {
    let now = app.state.clock.now().as_millisecond();
    let events: Vec<_> = (0..calls)
        .map(|i| {
            let ts = now - minutes * 60_000 + i * minutes * 60_000 / calls.max(1);
            json!({"id": format!("{prefix}-{i}"),
                   "timestamp": Timestamp::from_millisecond(ts).expect("time").to_string(),
                   "model": "m", "input_tokens": tokens, "output_tokens": 0, "cost": "0.010000"})
        })
        .collect();
    let response = app
        .post_bytes(
            "/api/v1/events",
            Some(token),
            &[("content-type", "application/json")],
            json!(events).to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
}

/// (kind, user, key, deliveries) of every alert.
async fn alerts(app: &TestApp) -> Vec<(String, i64, String, Vec<String>)> {
    app.state
        .db
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT kind, user_id, idempotency_key,
                        (SELECT group_concat(COALESCE(email, 'channel:' || channel_id), ',')
                         FROM alert_deliveries d WHERE d.alert_id = a.id)
                 FROM alerts a ORDER BY id",
            )?;
            let rows = stmt.query_map([], |row| {
                let deliveries: Option<String> = row.get(3)?;
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    deliveries
                        .map(|d| d.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                ))
            })?;
            Ok::<_, tokentally::db::DbError>(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .expect("alerts")
}

#[tokio::test]
async fn a_runaway_loop_after_a_quiet_fortnight_alerts_once() {
    let app = app().await;
    let a = app.create_user("a", Role::Member).await;
    app.state
        .db
        .write(move |conn| {
            conn.execute(
                "UPDATE users SET email = 'a@example.com' WHERE id = ?1",
                [a.0],
            )?;
            conn.execute(
                "INSERT INTO channels (name, kind, target, created_ms) VALUES ('ops', 'email', 'ops@example.com', 0)",
                [],
            )?;
            Ok::<_, tokentally::db::DbError>(())
        })
        .await
        .expect("email and channel");
    let token = app.create_token("a", TokenScope::Ingest).await;
    // 100k tokens an hour at most; the loop sends 20 times that.
    quiet_fortnight(&app, a, 50_000).await;
    send(&app, &token, "loop-1", 40, 50_000, 60).await;
    let found = alerts(&app).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let (kind, user, key, deliveries) = &found[0];
    assert_eq!((kind.as_str(), *user), ("unusual", a.0));
    assert_eq!(key, &format!("unusual:u{}:{NOW_MS}", a.0));
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert!(deliveries.contains(&"a@example.com".to_owned()));
    let details: serde_json::Value = app
        .state
        .db
        .read(|conn| {
            Ok::<_, tokentally::db::DbError>(conn.query_row(
                "SELECT details FROM alerts",
                [],
                |row| row.get::<_, String>(0),
            )?)
        })
        .await
        .map(|text| serde_json::from_str(&text).expect("JSON"))
        .expect("details");
    assert_eq!(details["sources"][0]["tokens"], 2_000_000);
    assert_eq!(details["baseline_p95"], 100_000);
    // The loop goes on for another hour: the same episode, no new alert.
    for step in 1..=4 {
        app.clock.advance(SignedDuration::from_mins(15));
        send(&app, &token, &format!("loop-2-{step}"), 10, 50_000, 15).await;
    }
    assert_eq!(alerts(&app).await.len(), 1);
}

#[tokio::test]
async fn a_normal_hour_alerts_nobody() {
    let app = app().await;
    let a = app.create_user("a", Role::Member).await;
    let token = app.create_token("a", TokenScope::Ingest).await;
    quiet_fortnight(&app, a, 200_000).await;
    // 400k tokens: past the floor, but the hour this user always has.
    send(&app, &token, "normal", 2, 200_000, 60).await;
    assert!(alerts(&app).await.is_empty());
}

#[tokio::test]
async fn usage_below_the_floor_never_alerts() {
    let app = app().await;
    let a = app.create_user("a", Role::Member).await;
    let token = app.create_token("a", TokenScope::Ingest).await;
    // 2k tokens an hour; 50 times that is still below the 300k floor.
    quiet_fortnight(&app, a, 1_000).await;
    send(&app, &token, "small", 100, 1_000, 60).await;
    assert!(alerts(&app).await.is_empty());
}

#[tokio::test]
async fn without_a_baseline_nobody_alerts() {
    let app = app().await;
    app.create_user("a", Role::Member).await;
    let token = app.create_token("a", TokenScope::Ingest).await;
    send(&app, &token, "first-day", 40, 50_000, 60).await;
    assert!(alerts(&app).await.is_empty());
}

#[test]
fn p95_is_the_nearest_rank() {
    use tokentally::budgets::unusual::p95;
    assert_eq!(p95(Vec::new()), 0);
    assert_eq!(p95((1..=100).collect()), 95);
    assert_eq!(p95((1..=20).collect()), 19);
    assert_eq!(p95(vec![7]), 7);
}

#[tokio::test]
async fn batches_within_a_minute_of_a_check_are_judged_by_the_next_check_or_the_watcher() {
    let app = app().await;
    let a = app.create_user("a", Role::Member).await;
    let token = app.create_token("a", TokenScope::Ingest).await;
    quiet_fortnight(&app, a, 50_000).await;
    // A normal batch: the rule runs after it and finds nothing.
    send(&app, &token, "warm-up", 1, 50_000, 1).await;
    assert!(alerts(&app).await.is_empty());
    // The loop's batch comes within the minute: not judged yet.
    send(&app, &token, "loop", 40, 50_000, 60).await;
    assert!(alerts(&app).await.is_empty());
    // The budget watcher's pass (every 30 s in a server) judges it.
    let (now, unusual) = (app.state.clock.now(), app.state.unusual.clone());
    let recorded = app
        .state
        .db
        .write(move |conn| tokentally::budgets::watch::all(conn, now, &unusual))
        .await
        .expect("watch");
    assert_eq!(recorded, 1);
    let found = alerts(&app).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].2, format!("unusual:u{}:{NOW_MS}", a.0));
}

#[tokio::test]
async fn a_batch_a_minute_after_the_last_check_is_judged_with_everything_before_it() {
    let app = app().await;
    let a = app.create_user("a", Role::Member).await;
    let token = app.create_token("a", TokenScope::Ingest).await;
    quiet_fortnight(&app, a, 50_000).await;
    send(&app, &token, "warm-up", 1, 50_000, 1).await;
    send(&app, &token, "loop", 40, 50_000, 59).await;
    assert!(alerts(&app).await.is_empty());
    app.clock.advance(SignedDuration::from_secs(60));
    send(&app, &token, "loop-more", 1, 50_000, 1).await;
    let found = alerts(&app).await;
    assert_eq!(found.len(), 1, "{found:?}");
}
