//! Budgets through the real router over a real temporary database, with
//! the injected clock: thresholds recorded once each, in order, in the
//! transaction that stores the usage; a jump over several records each; a
//! budget set mid-period stays quiet about what was already passed; the
//! period resets at local midnight of its zone (Berlin across the October
//! DST change, Kolkata, UTC) while earlier alerts wait for delivery; the
//! forecast equals an oracle computed here from the raw events.

use jiff::Timestamp;
use jiff::civil::Weekday;
use serde_json::{Value, json};
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;
use tokentally::budgets::store::{self, Measure, NewBudget};
use tokentally::budgets::{forecast, standings};
use tokentally::clock::Clock;

use crate::common::{PASSWORD, TestApp};

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

/// (key, threshold, quiet, deliveries) of every threshold alert, in the
/// order recorded.
async fn alerts(app: &TestApp) -> Vec<(String, i64, bool, i64)> {
    all_alerts(app)
        .await
        .into_iter()
        .filter(|a| a.0.starts_with("threshold:"))
        .collect()
}

/// The same for every alert (projections too).
async fn all_alerts(app: &TestApp) -> Vec<(String, i64, bool, i64)> {
    app.state
        .db
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT idempotency_key, threshold, quiet,
                        (SELECT COUNT(*) FROM alert_deliveries d WHERE d.alert_id = a.id)
                 FROM alerts a ORDER BY id",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, tokentally::db::DbError>(rows)
        })
        .await
        .expect("alerts")
}

/// Sends `tokens` input tokens of an unpriced model as one event at `at`.
async fn spend(app: &TestApp, token: &str, id: &str, at: &str, tokens: i64) {
    let body = json!([{"id": id, "timestamp": at, "model": "local-model",
                       "input_tokens": tokens, "output_tokens": 0}]);
    let response = app
        .post_bytes(
            "/api/v1/events",
            Some(token),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status.as_u16(), 200, "{}", response.body);
}

async fn channel(app: &TestApp, name: &str) {
    let name = name.to_owned();
    app.state
        .db
        .write(move |conn| {
            conn.execute(
                "INSERT INTO channels (name, kind, format, target, created_ms)
                 VALUES (?1, 'webhook', 'json', 'http://127.0.0.1:9/hook', 0)",
                [name],
            )
            .map_err(tokentally::db::DbError::from)
        })
        .await
        .expect("channel");
}

/// An admin sets a token budget through the Budgets page's form.
async fn set_budget(app: &TestApp, fields: &[(&str, &str)]) -> String {
    let admin = app.login_browser("root", PASSWORD).await;
    let mut all = vec![
        ("measure", "tokens"),
        ("week_start", "monday"),
        ("thresholds", "50,80,100"),
    ];
    all.extend_from_slice(fields);
    let response = app.submit("/budgets", &admin, &all).await;
    assert_eq!(response.status.as_u16(), 303, "{}", response.body);
    let page = app.get("/budgets", Some(&admin.cookie)).await;
    assert_eq!(page.status.as_u16(), 200);
    page.body
}

async fn setup() -> (TestApp, String) {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    (app, token)
}

#[tokio::test]
async fn each_threshold_alerts_once_in_order_even_when_jumped_over() {
    let (app, token) = setup().await;
    channel(&app, "ops").await;
    app.clock.set(ts("2026-06-15T12:00:00Z"));
    let page = set_budget(
        &app,
        &[
            ("name", "june"),
            ("scope", "everyone"),
            ("period", "month"),
            ("amount", "1000"),
            ("time_zone", "UTC"),
            ("channel", "ops"),
        ],
    )
    .await;
    assert!(page.contains("june"), "{page}");
    // 40 %: nothing. 60 %: 50. Again 60 → 70 %: nothing new.
    spend(&app, &token, "a", "2026-06-15T10:00:00Z", 400).await;
    assert_eq!(alerts(&app).await, vec![]);
    spend(&app, &token, "b", "2026-06-15T10:01:00Z", 200).await;
    spend(&app, &token, "b", "2026-06-15T10:01:00Z", 200).await; // a repeat
    spend(&app, &token, "c", "2026-06-15T10:02:00Z", 100).await;
    let start = ts("2026-06-01T00:00:00Z").as_millisecond();
    let key = |t: i64| format!("threshold:1:r1:u0:{start}:{t}");
    assert_eq!(alerts(&app).await, vec![(key(50), 50, false, 1)]);
    // 700 by mid-month with no earlier history: on pace for about 1,450,
    // past the budget: projected to exceed, once.
    let projected = format!("projected:1:r1:u0:{start}");
    let count = |all: &[(String, i64, bool, i64)]| all.iter().filter(|a| a.0 == projected).count();
    assert_eq!(count(&all_alerts(&app).await), 1);
    // 70 % → 130 %: 80 and 100 at once, each once, in order.
    spend(&app, &token, "d", "2026-06-15T10:03:00Z", 600).await;
    let recorded = alerts(&app).await;
    assert_eq!(
        recorded,
        vec![
            (key(50), 50, false, 1),
            (key(80), 80, false, 1),
            (key(100), 100, false, 1)
        ]
    );
    // Usage from another month does not count for June.
    spend(&app, &token, "e", "2026-05-31T23:59:59Z", 5_000).await;
    assert_eq!(alerts(&app).await, recorded);
    assert_eq!(count(&all_alerts(&app).await), 1);
    app.assert_rollups_exact().await;
    // The page says where it stands and when it resets.
    let admin = app.login_browser("root", PASSWORD).await;
    let page = app.get("/budgets", Some(&admin.cookie)).await.body;
    assert!(page.contains("1,300 tokens"), "{page}");
    assert!(
        page.contains("resets in 15 days, on Jul 1 00:00 UTC"),
        "{page}"
    );
    let overview = app.get("/", Some(&admin.cookie)).await.body;
    assert!(overview.contains("Budget june reached 100 %"), "{overview}");
}

#[tokio::test]
async fn a_budget_set_mid_period_is_quiet_about_the_past_unless_asked() {
    let (app, token) = setup().await;
    app.clock.set(ts("2026-06-15T12:00:00Z"));
    spend(&app, &token, "a", "2026-06-10T10:00:00Z", 900).await;
    set_budget(
        &app,
        &[
            ("name", "quiet"),
            ("scope", "user:ada"),
            ("period", "month"),
            ("amount", "1000"),
            ("time_zone", "UTC"),
        ],
    )
    .await;
    let recorded = alerts(&app).await;
    // 50 and 80 % were passed before: recorded quietly, no delivery.
    assert_eq!(
        recorded.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(),
        vec![(50, true), (80, true)]
    );
    spend(&app, &token, "b", "2026-06-15T11:00:00Z", 100).await;
    let last = alerts(&app).await.pop().expect("an alert");
    assert_eq!((last.1, last.2), (100, false));
    // Asked to: a second budget alerts for what is already passed.
    set_budget(
        &app,
        &[
            ("name", "loud"),
            ("scope", "everyone"),
            ("period", "month"),
            ("amount", "1000"),
            ("time_zone", "UTC"),
            ("alert_past", "1"),
        ],
    )
    .await;
    let loud: Vec<_> = alerts(&app)
        .await
        .into_iter()
        .filter(|r| r.0.starts_with("threshold:2:"))
        .map(|r| (r.1, r.2))
        .collect();
    assert_eq!(loud, vec![(50, false), (80, false), (100, false)]);
}

#[tokio::test]
async fn a_berlin_month_resets_at_local_midnight_across_dst_while_alerts_wait() {
    let (app, token) = setup().await;
    channel(&app, "ops").await;
    // 2026-10-31 23:30 CET (22:30 UTC): October in Berlin.
    app.clock.set(ts("2026-10-31T22:30:00Z"));
    set_budget(
        &app,
        &[
            ("name", "berlin"),
            ("scope", "everyone"),
            ("period", "month"),
            ("amount", "1000"),
            ("time_zone", "Europe/Berlin"),
            ("channel", "ops"),
        ],
    )
    .await;
    // 22:59:59 UTC is still October 31 in Berlin.
    spend(&app, &token, "oct", "2026-10-31T22:59:59Z", 600).await;
    let october = ts("2026-09-30T22:00:00Z").as_millisecond();
    assert_eq!(
        alerts(&app).await,
        vec![(format!("threshold:1:r1:u0:{october}:50"), 50, false, 1)]
    );
    // 23:00 UTC is November 1 00:00 CET: a new period, counted afresh (its
    // first minutes on pace far past the budget: projected, too); the
    // October alert is still waiting for delivery.
    app.clock.set(ts("2026-10-31T23:00:30Z"));
    spend(&app, &token, "nov", "2026-10-31T23:00:00Z", 500).await;
    let november = ts("2026-10-31T23:00:00Z").as_millisecond();
    let recorded = alerts(&app).await;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(recorded[1].0, format!("threshold:1:r1:u0:{november}:50"));
    let waiting: i64 = app
        .state
        .db
        .read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
                 WHERE d.delivered_ms IS NULL AND a.period_start_ms = ?1",
                [october],
                |r| r.get(0),
            )
            .map_err(tokentally::db::DbError::from)
        })
        .await
        .expect("deliveries");
    assert_eq!(waiting, 1);
}

/// The standing of a budget created directly in the store.
async fn standing_of(app: &TestApp, new: NewBudget) -> Vec<tokentally::budgets::Standing> {
    let now = app.clock.now();
    app.state
        .db
        .write(move |conn| {
            let budget = store::create(conn, &new, 0)?;
            standings(conn, &budget, now)
                .map_err(|e| tokentally::budgets::BudgetError::Db(tokentally::db::DbError::from(e)))
        })
        .await
        .expect("standing")
}

fn budget(name: &str, period: &str, zone: &str, scope: &str) -> NewBudget {
    NewBudget {
        name: name.into(),
        period: period.into(),
        week_start: Weekday::Monday,
        zone: zone.into(),
        measure: Measure::Tokens,
        amount: 1_000_000,
        scope: scope.into(),
        thresholds: vec![50, 80, 100],
        channels: Vec::new(),
        created_by: None,
    }
}

/// The forecast rule, computed here from what was sent: per local day of
/// the 14 before today, working days and weekends apart, leading empty
/// days dropped; each remaining day's rate × its share still to come,
/// rounded half up per day.
fn oracle(sent: &[(Timestamp, i64)], now: Timestamp, zone: &str, end: Timestamp) -> i64 {
    use jiff::ToSpan;
    let tz = jiff::tz::TimeZone::get(zone).expect("zone");
    let today = now.to_zoned(tz.clone()).date();
    let day_of = |t: &Timestamp| t.to_zoned(tz.clone()).date();
    let mut days: Vec<(jiff::civil::Date, i64)> = (1..=14)
        .rev()
        .map(|back| {
            let day = today.checked_sub(back.days()).expect("day");
            let used = sent
                .iter()
                .filter(|(t, _)| day_of(t) == day)
                .map(|(_, n)| n)
                .sum();
            (day, used)
        })
        .collect();
    while days.first().is_some_and(|(_, used)| *used == 0) {
        days.remove(0);
    }
    let weekend =
        |d: &jiff::civil::Date| matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
    let kind = |w: bool| -> (i128, i128) {
        let picked: Vec<i64> = days
            .iter()
            .filter(|(d, _)| weekend(d) == w)
            .map(|(_, n)| *n)
            .collect();
        (
            picked.iter().map(|n| i128::from(*n)).sum(),
            picked.len() as i128,
        )
    };
    let (mut used, mut rest) = (0i128, 0i128);
    for (t, n) in sent {
        if t.to_zoned(tz.clone()).date().first_of_month() == today.first_of_month() && *t < now {
            used += i128::from(*n);
        }
    }
    let mut day = today;
    let mut from = now;
    while from < end {
        let start = day.to_zoned(tz.clone()).expect("midnight").timestamp();
        let next_day = day.checked_add(1.day()).expect("day");
        let next = next_day
            .to_zoned(tz.clone())
            .expect("midnight")
            .timestamp()
            .min(end);
        let length = i128::from(next.as_millisecond() - start.as_millisecond());
        let to_come = i128::from(next.as_millisecond() - from.as_millisecond());
        let (mut sum, mut count) = kind(weekend(&day));
        if count == 0 {
            (sum, count) = kind(!weekend(&day));
        }
        rest += (2 * sum * to_come + count * length) / (2 * count * length);
        day = next_day;
        from = next;
    }
    i64::try_from(used + rest).expect("fits")
}

#[tokio::test]
async fn the_forecast_equals_the_rule_computed_from_the_raw_events() {
    let (app, token) = setup().await;
    // Tuesday 2026-11-17 15:45 in Kolkata; usage over the previous weeks,
    // heavier on working days, none before Nov 5.
    let now = ts("2026-11-17T10:15:00Z");
    app.clock.set(now);
    let mut sent = Vec::new();
    let mut events: Vec<Value> = Vec::new();
    for day in 5..=17 {
        for hour in [3, 9, 20] {
            let at = ts(&format!("2026-11-{day:02}T{hour:02}:07:00Z"));
            if at >= now {
                continue;
            }
            let weekday = at.to_zoned(jiff::tz::TimeZone::UTC).weekday();
            let tokens = match weekday {
                Weekday::Saturday | Weekday::Sunday => 1_000 + day * 7,
                _ => 10_000 + day * 131 + hour * 17,
            };
            sent.push((at, tokens));
            events.push(
                json!({"id": format!("f-{day}-{hour}"), "timestamp": at.to_string(),
                "model": "local-model", "input_tokens": tokens, "output_tokens": 0}),
            );
        }
    }
    let response = app
        .post_bytes(
            "/api/v1/events",
            Some(&token),
            &[("content-type", "application/json")],
            Value::Array(events).to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status.as_u16(), 200, "{}", response.body);
    for (i, zone) in ["Asia/Kolkata", "UTC", "Europe/Berlin"]
        .into_iter()
        .enumerate()
    {
        let standing = standing_of(&app, budget(&format!("f{i}"), "month", zone, "user:ada"))
            .await
            .pop()
            .expect("a standing");
        let forecast = standing.forecast.expect("a forecast");
        assert_eq!(
            forecast.projected,
            oracle(&sent, now, zone, standing.window.end),
            "{zone}"
        );
        assert!(
            forecast.weekday_rate > forecast.weekend_rate,
            "{zone}: {forecast:?}"
        );
        assert!(forecast.history_days <= forecast::HISTORY_DAYS as usize);
    }
}
