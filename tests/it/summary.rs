//! `GET /api/v1/summary`: today, this week and this month in the reader's
//! zone (their own, else the instance's) equal plain sums of the ingested
//! events whose local date falls in them.

use crate::common::TestApp;
use axum::http::StatusCode;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

/// Wednesday 2026-06-17, 23:30 in Berlin, 17:30 in New York.
const NOW: &str = "2026-06-17T21:30:00Z";

/// Instants around every edge of the periods in both zones.
const TIMES: [&str; 10] = [
    "2026-06-17T21:29:00Z",
    "2026-06-17T04:00:00Z",
    "2026-06-16T22:00:00Z",
    "2026-06-16T21:59:00Z",
    "2026-06-15T03:59:00Z",
    "2026-06-14T22:00:00Z",
    "2026-06-14T21:59:00Z",
    "2026-06-01T04:00:00Z",
    "2026-05-31T22:00:00Z",
    "2026-05-31T21:59:00Z",
];

fn events(prefix: &str, scale: i64) -> Value {
    let list: Vec<Value> = TIMES
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            let i = i as i64 + 1;
            json!({"id": format!("{prefix}-{i}"), "timestamp": ts, "model": "m",
                   "input_tokens": 1000 * i * scale, "output_tokens": 10 * i,
                   "cache_read_tokens": i, "cost": format!("0.{:06}", i * scale)})
        })
        .collect();
    Value::Array(list)
}

/// (cost micros, tokens, events) per period of `zone`, summed plainly.
fn expected(sent: &[(&Value, i64)], zone: &str) -> [(i64, i64, i64); 3] {
    let zone = TimeZone::get(zone).expect("zone");
    let now = NOW
        .parse::<Timestamp>()
        .expect("now")
        .to_zoned(zone.clone());
    let today = now.date();
    let monday = today
        .checked_sub(jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))
        .expect("monday");
    let mut sums = [(0, 0, 0); 3];
    for (list, _) in sent {
        for event in list.as_array().expect("array") {
            let at = event["timestamp"]
                .as_str()
                .expect("timestamp")
                .parse::<Timestamp>()
                .expect("time")
                .to_zoned(zone.clone())
                .date();
            let cost: f64 = event["cost"].as_str().expect("cost").parse().expect("f64");
            let tokens = ["input_tokens", "output_tokens", "cache_read_tokens"]
                .iter()
                .map(|k| event[k].as_i64().expect("count"))
                .sum::<i64>();
            let within = [
                at == today,
                at >= monday && at <= today,
                at.year() == today.year() && at.month() == today.month(),
            ];
            for (sum, inside) in sums.iter_mut().zip(within) {
                if inside {
                    sum.0 += (cost * 1e6).round() as i64;
                    sum.1 += tokens;
                    sum.2 += 1;
                }
            }
        }
    }
    sums
}

fn answered(body: &Value) -> [(i64, i64, i64); 3] {
    ["today", "week", "month"].map(|p| {
        let period = &body[p];
        let cost: f64 = period["cost"].as_str().expect("cost").parse().expect("f64");
        (
            (cost * 1e6).round() as i64,
            period["tokens"].as_i64().expect("tokens"),
            period["events"].as_i64().expect("events"),
        )
    })
}

#[tokio::test]
async fn the_summary_is_the_plain_sum_of_each_period_in_the_reader_s_zone() {
    let app = TestApp::with_options(|o| o.time_zone = Some("America/New_York".to_owned())).await;
    app.clock.set(NOW.parse().expect("now"));
    app.create_user("root", Role::Admin).await;
    let a = app.create_user("a", Role::Member).await;
    app.create_user("b", Role::Member).await;
    app.state
        .db
        .write(move |conn| {
            conn.execute(
                "UPDATE users SET time_zone = 'Europe/Berlin' WHERE id = ?1",
                [a.0],
            )?;
            Ok::<_, tokentally::db::DbError>(())
        })
        .await
        .expect("zone set");
    let (events_a, events_b) = (events("a", 1), events("b", 7));
    for (user, list) in [("a", &events_a), ("b", &events_b)] {
        let token = app.create_token(user, TokenScope::Ingest).await;
        let response = app
            .post_bytes(
                "/api/v1/events",
                Some(&token),
                &[("content-type", "application/json")],
                list.to_string().into_bytes(),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }

    // A member: their own usage, in their own zone.
    let read_a = app.create_token("a", TokenScope::Read).await;
    let own = app
        .client_at(crate::common::DEFAULT_PEER)
        .header("authorization", &format!("Bearer {read_a}"))
        .get("/api/v1/summary", None)
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    let own = own.json();
    assert_eq!(own["time_zone"], "Europe/Berlin");
    assert_eq!(own["as_of"], NOW);
    assert_eq!(own["today"]["from"], "2026-06-16T22:00:00Z");
    assert_eq!(answered(&own), expected(&[(&events_a, 1)], "Europe/Berlin"));

    let audited = app.audit_entries("usage.read").await;
    assert!(
        audited
            .iter()
            .any(|e| e.details.contains("\"summary\":true")),
        "the summary read is audited"
    );

    // An admin without a zone of their own: everyone's, in the instance's.
    let read_root = app.create_token("root", TokenScope::Read).await;
    let all = app
        .client_at(crate::common::DEFAULT_PEER)
        .header("authorization", &format!("Bearer {read_root}"))
        .get("/api/v1/summary", None)
        .await
        .json();
    assert_eq!(all["time_zone"], "America/New_York");
    assert_eq!(
        answered(&all),
        expected(&[(&events_a, 1), (&events_b, 7)], "America/New_York")
    );
    // Every period differs from the next: the edges were all exercised.
    let sums = answered(&all);
    assert!(sums[0].2 < sums[1].2 && sums[1].2 < sums[2].2, "{sums:?}");
}
