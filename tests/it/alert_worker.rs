//! The delivery worker on the injectable clock: a failing delivery backs
//! off exponentially, a later alert to the same destination waits for the
//! earlier one, and after the 48-hour window a delivery is given up (and
//! never tried again). Alerts go into the outbox with `alerts::record`,
//! as the budget watch puts them there.

use std::time::{Duration, Instant};

use jiff::SignedDuration;
use serde_json::json;
use tokentally::alerts::channels::{self, NewChannel};
use tokentally::alerts::deliver::Sender;
use tokentally::alerts::formats::Context;
use tokentally::alerts::worker::{RETRY_BASE_MS, Worker, WorkerSettings};
use tokentally::alerts::{self, AlertKind, Destination, NewAlert};
use tokentally::db::DbError;

use crate::common::TestApp;
use crate::common::webhook::free_port;

fn alert(threshold: i64, now_ms: i64) -> NewAlert {
    NewAlert {
        kind: AlertKind::Threshold,
        budget_id: None,
        user: None,
        period_start_ms: now_ms - 1_000,
        period_end_ms: now_ms + 86_400_000,
        threshold,
        measure: "cost",
        used: 8_000_000,
        amount: Some(10_000_000),
        projected: None,
        details: json!({"budget": "b", "scope": "everyone", "period": "day", "time_zone": "UTC"}),
        idempotency_key: format!("threshold:test:{threshold}"),
        quiet: false,
    }
}

/// (attempts, next_attempt_ms, given_up) per delivery, in alert order.
async fn deliveries(app: &TestApp) -> Vec<(i64, i64, bool)> {
    app.state
        .db
        .read(|conn| {
            let mut statement = conn.prepare(
                "SELECT attempts, next_attempt_ms, given_up_ms IS NOT NULL
                 FROM alert_deliveries ORDER BY alert_id",
            )?;
            let rows = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, DbError>(rows)
        })
        .await
        .expect("read")
}

async fn wait_until(app: &TestApp, what: &str, done: impl Fn(&[(i64, i64, bool)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = deliveries(app).await;
        if done(&rows) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_keep_their_order_and_are_given_up_after_the_window() {
    let app = TestApp::new().await;
    let now_ms = tokentally::clock::Clock::now(&*app.clock).as_millisecond();
    let url = format!("http://127.0.0.1:{}/down", free_port());
    app.state
        .db
        .write(move |conn| {
            let new = NewChannel {
                name: "down".into(),
                webhook: Some(url),
                format: None,
                secret: None,
                email: None,
            };
            let channel =
                channels::add(conn, &new, now_ms).map_err(|e| DbError::Check(e.to_string()))?;
            for threshold in [50, 80] {
                alerts::record(
                    conn,
                    &alert(threshold, now_ms),
                    &[Destination::Channel(channel.id)],
                    now_ms,
                )?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .expect("recorded");
    let settings = WorkerSettings {
        retry_base_ms: RETRY_BASE_MS,
        poll: Duration::from_millis(20),
    };
    let sender = Sender::new(Context::default(), None, Duration::from_secs(2));
    let worker = Worker::spawn(
        app.state.db.clone(),
        app.state.clock.clone(),
        sender,
        settings,
        std::sync::Arc::default(),
    );

    // The first alert is tried and backs off 5 s; the second waits for it.
    wait_until(&app, "a first attempt", |rows| rows[0].0 == 1).await;
    let rows = deliveries(&app).await;
    assert_eq!(rows[0].1, now_ms + RETRY_BASE_MS);
    assert_eq!(rows[1].0, 0, "the later alert went first: {rows:?}");
    // The clock stands still: nothing more happens.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(deliveries(&app).await[0].0, 1);

    // 5 s later: the second attempt, then 10 s.
    app.clock
        .advance(SignedDuration::from_millis(RETRY_BASE_MS));
    wait_until(&app, "a second attempt", |rows| rows[0].0 == 2).await;
    assert_eq!(deliveries(&app).await[0].1, now_ms + RETRY_BASE_MS * 3);

    // Past the window: the next attempt is the last, for both in turn.
    app.clock.advance(SignedDuration::from_hours(49));
    wait_until(&app, "given up", |rows| rows.iter().all(|r| r.2)).await;
    let given_up = deliveries(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.clock.advance(SignedDuration::from_hours(2));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(deliveries(&app).await, given_up, "tried after giving up");
    worker.stop().await;
    // The alerts page tells an admin.
    app.create_user("root", tokentally::auth::Role::Admin).await;
    let cookie = app.login("root", crate::common::PASSWORD).await;
    let page = app.get("/alerts", Some(&cookie)).await.body;
    assert_eq!(
        page.matches("1 given up after 48 hours").count(),
        2,
        "{page}"
    );
}
