//! The audit trail: one entry per audited action, with who, what and the
//! filters of a read; append-only on the real file; a broken chain found by
//! `tokentally verify`; the retention purge keeps the rest verifiable; the
//! admin's audit page and export.

use crate::common::server::run_cli;
use crate::common::{Browser, PASSWORD, TestApp, TestResponse};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tokentally::audit::chain;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

/// Entries per action code, after the queue is flushed.
async fn count(app: &TestApp, action: &str) -> usize {
    app.audit_entries(action).await.len()
}

struct Fixture {
    app: TestApp,
    root: Browser,
    ingest: String,
    read: String,
}

async fn fixture() -> Fixture {
    let app = TestApp::new().await;
    app.create_user("root", Role::Admin).await;
    app.create_user("ada", Role::Member).await;
    let ingest = app.create_token("ada", TokenScope::Ingest).await;
    let read = app.create_token("ada", TokenScope::Read).await;
    let root = app.login_browser("root", PASSWORD).await;
    Fixture {
        app,
        root,
        ingest,
        read,
    }
}

async fn bearer_get(app: &TestApp, path: &str, token: &str) -> TestResponse {
    app.request(
        Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await
}

/// Performs the action named by `action` once.
async fn perform(f: &Fixture, action: &str) {
    let app = &f.app;
    match action {
        "login.success" => {
            app.try_login("ada", PASSWORD).await;
        }
        "login.failure" => {
            app.try_login("ada", "wrong password!!").await;
        }
        "logout" => {
            let ada = app.login_browser("ada", PASSWORD).await;
            app.submit("/logout", &ada, &[]).await;
        }
        "page.view" => {
            app.get("/", Some(&f.root.cookie)).await;
        }
        "usage.read" => {
            bearer_get(app, "/api/v1/usage?group_by=model", &f.read).await;
        }
        "events.read" => {
            app.get("/api/v1/usage/events", Some(&f.root.cookie)).await;
        }
        "events.export" => {
            app.get("/api/v1/usage/events.csv", Some(&f.root.cookie))
                .await;
        }
        "audit.read" => {
            app.get("/admin/audit", Some(&f.root.cookie)).await;
        }
        "audit.export" => {
            app.get("/admin/audit.csv", Some(&f.root.cookie)).await;
        }
        "ingest.request" => {
            let body = br#"[{"id":"x1","timestamp":"2026-06-10T10:00:00Z","model":"m","input_tokens":5,"output_tokens":1}]"#;
            app.post_bytes(
                "/api/v1/events",
                Some(&f.ingest),
                &[("content-type", "application/json")],
                body.to_vec(),
            )
            .await;
        }
        "access.denied" => {
            let ada = app.login("ada", PASSWORD).await;
            app.get("/admin/users", Some(&ada)).await;
        }
        "profile.update" => {
            app.submit(
                "/profile",
                &f.root,
                &[("display_name", "Root"), ("email", ""), ("time_zone", "")],
            )
            .await;
        }
        "password.change" => {
            let ada = app.login_browser("ada", PASSWORD).await;
            app.submit(
                "/profile/password",
                &ada,
                &[
                    ("current_password", PASSWORD),
                    ("new_password", PASSWORD),
                    ("new_password_confirm", PASSWORD),
                ],
            )
            .await;
        }
        "sessions.revoke" => {
            app.submit("/admin/users/ada/sessions", &f.root, &[]).await;
        }
        "user.create" => {
            app.submit(
                "/admin/users",
                &f.root,
                &[("username", "newbie"), ("role", "member")],
            )
            .await;
        }
        "user.disable" => {
            app.submit("/admin/users/ada/disable", &f.root, &[]).await;
            app.submit("/admin/users/ada/enable", &f.root, &[]).await;
        }
        "user.role" => {
            app.submit("/admin/users/ada/promote", &f.root, &[]).await;
        }
        "user.password_reset" => {
            app.submit("/admin/users/ada/password", &f.root, &[]).await;
        }
        "token.create" => {
            app.submit("/tokens", &f.root, &[("name", "ci"), ("scope", "read")])
                .await;
        }
        "token.revoke" => {
            app.submit("/tokens/1/revoke", &f.root, &[]).await;
        }
        other => panic!("no way to perform {other}"),
    }
}

#[tokio::test]
async fn each_audited_action_writes_exactly_one_entry() {
    let f = fixture().await;
    let actions = [
        "login.success",
        "login.failure",
        "logout",
        "page.view",
        "usage.read",
        "events.read",
        "events.export",
        "audit.read",
        "audit.export",
        "ingest.request",
        "access.denied",
        "profile.update",
        "password.change",
        "sessions.revoke",
        "user.create",
        "user.disable",
        "user.role",
        "user.password_reset",
        "token.create",
        "token.revoke",
    ];
    for action in actions {
        let before = count(&f.app, action).await;
        perform(&f, action).await;
        let after = count(&f.app, action).await;
        assert_eq!(after, before + 1, "{action}");
    }
    // user.disable's helper also enabled the user again: one of those too.
    assert_eq!(count(&f.app, "user.enable").await, 1);
    let report = f.app.state.db.read(chain::verify).await.expect("verify");
    assert_eq!(report.broken, None);
    assert!(report.entries > actions.len() as u64);
}

#[tokio::test]
async fn entries_say_who_what_from_where_and_with_which_filters() {
    let f = fixture().await;
    let request = Request::get(
        "/api/v1/usage?view=ada&group_by=model&model=claude-x&from=2026-06-01&to=2026-06-08",
    )
    .header("cookie", &f.root.cookie)
    .header("user-agent", "audit-test/1.0")
    .body(Body::empty())
    .expect("request");
    assert_eq!(f.app.request(request).await.status, StatusCode::OK);
    let read = f.app.audit_entries("usage.read").await;
    let entry = read.last().expect("one read");
    assert_eq!(entry.actor_kind, "user");
    assert_eq!(entry.actor_name.as_deref(), Some("root"));
    assert_eq!(
        entry.target.as_deref(),
        Some("user:ada"),
        "viewing a member is explicit"
    );
    assert_eq!(entry.route.as_deref(), Some("GET /api/v1/usage"));
    assert_eq!(entry.user_agent.as_deref(), Some("audit-test/1.0"));
    assert_eq!(entry.outcome, "success");
    let details: Value = serde_json::from_str(&entry.details).expect("json");
    assert_eq!(details["group_by"], "model");
    assert_eq!(details["filters"]["model"][0], "claude-x");
    assert_eq!(details["from"], "2026-06-01T00:00:00Z");

    // A token's read names the token; its ingest records counts only.
    bearer_get(&f.app, "/api/v1/usage", &f.read).await;
    let by_token = f.app.audit_entries("usage.read").await;
    let token_entry = by_token.last().expect("token read");
    assert_eq!(token_entry.actor_kind, "token");
    assert!(
        token_entry
            .actor_name
            .as_deref()
            .is_some_and(|n| n.starts_with("ada (token "))
    );
    let body = br#"[{"id":"x1","timestamp":"2026-06-10T10:00:00Z","model":"secret-model","input_tokens":5,"output_tokens":1}]"#;
    f.app
        .post_bytes(
            "/api/v1/events",
            Some(&f.ingest),
            &[("content-type", "application/json")],
            body.to_vec(),
        )
        .await;
    let ingest = f.app.audit_entries("ingest.request").await;
    let ingest = ingest.last().expect("ingest entry");
    let details: Value = serde_json::from_str(&ingest.details).expect("json");
    assert_eq!(
        (details["accepted"].clone(), details["duplicates"].clone()),
        (1.into(), 0.into())
    );
    assert!(
        !ingest.details.contains("secret-model"),
        "contents are not audited"
    );

    // A failed login names whom it tried, and the setup token in a query
    // string never reaches the log.
    f.app.try_login("ada", "wrong password!!").await;
    let failure = f.app.audit_entries("login.failure").await;
    assert_eq!(failure[0].target.as_deref(), Some("user:ada"));
    assert_eq!(failure[0].actor_kind, "anonymous");
    assert_eq!(failure[0].outcome, "failure");
    f.app
        .get("/admin/users?secret=s3cr3t", Some(&f.root.cookie))
        .await;
    let views = f.app.audit_entries("page.view").await;
    assert!(
        views
            .iter()
            .all(|e| !e.route.as_deref().unwrap_or("").contains("s3cr3t"))
    );
}

#[tokio::test]
async fn the_table_refuses_updates_and_deletes_on_the_real_file() {
    let f = fixture().await;
    perform(&f, "page.view").await;
    f.app.state.audit.flush().await;
    for statement in [
        "UPDATE audit_log SET outcome = 'success'",
        "UPDATE audit_log SET details = '{}' WHERE seq = 1",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
    ] {
        let outcome = f
            .app
            .state
            .db
            .write(move |conn| {
                conn.execute(statement, [])
                    .map_err(tokentally::db::DbError::from)
            })
            .await;
        let error = outcome.expect_err(statement).to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
}

#[tokio::test]
async fn the_admin_page_filters_and_exports_the_same_selection() {
    let f = fixture().await;
    f.app.try_login("ada", "wrong password!!").await;
    f.app.try_login("ada", "wrong password!!").await;
    f.app.get("/", Some(&f.root.cookie)).await;
    f.app.state.audit.flush().await;
    let page = f
        .app
        .get("/admin/audit?action=login.failure", Some(&f.root.cookie))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<code>login.failure</code>").count(), 2);
    assert!(!page.body.contains("<code>page.view</code>"));
    let csv = f
        .app
        .get(
            "/admin/audit.csv?action=login.failure",
            Some(&f.root.cookie),
        )
        .await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv.body.lines().count(), 1 + 2, "{}", csv.body);
    let by_actor = f
        .app
        .get("/admin/audit.csv?actor=root", Some(&f.root.cookie))
        .await;
    assert!(
        by_actor.body.lines().skip(1).all(|l| l.contains(",root,")),
        "{}",
        by_actor.body
    );
    let bad = f
        .app
        .get("/admin/audit?action=made.up", Some(&f.root.cookie))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let future = f
        .app
        .get("/admin/audit?from=2030-01-01", Some(&f.root.cookie))
        .await;
    assert!(future.body.contains("No entries match."));
}

#[tokio::test]
async fn retention_purges_old_entries_and_the_chain_still_verifies() {
    let f = fixture().await;
    for _ in 0..5 {
        perform(&f, "page.view").await;
    }
    f.app.state.audit.flush().await;
    f.app
        .clock
        .advance(jiff::SignedDuration::from_hours(24 * 40));
    f.app.try_login("ada", PASSWORD).await;
    f.app.state.audit.flush().await;
    let purged = purge_older_than_30_days(&f.app).await;
    assert!(purged >= 5, "{purged}");
    let report = f.app.state.db.read(chain::verify).await.expect("verify");
    assert_eq!(report.broken, None);
    assert_eq!(count(&f.app, "audit.purge").await, 1);
    assert_eq!(count(&f.app, "page.view").await, 0, "the old views went");
    assert_eq!(
        count(&f.app, "login.success").await,
        1,
        "the recent sign-in stayed"
    );
}

#[test]
fn verify_finds_a_row_altered_out_of_band() {
    let dir = shell_chain(&["ada", "grace", "alan"]);
    let data = dir.path().to_str().expect("utf-8");
    let (ok, out, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(ok, "{err}");
    // The three sign-ups, after the first start's load of the price
    // catalogue (`price.sync`, entry 1).
    assert!(out.contains("audit chain of 4 entries is intact"), "{out}");

    // Someone with the file drops the guard and rewrites history.
    let db = dir.path().join("tokentally.db");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET target = 'user:mallory' WHERE seq = 2;",
    )
    .expect("tamper");
    drop(conn);
    let (ok, _, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(!ok, "verify must fail");
    assert!(err.contains("audit entry 2"), "{err}");
    assert!(err.contains("altered"), "{err}");

    // Removing a row instead breaks the next link.
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_delete;
         UPDATE audit_log SET target = 'user:grace' WHERE seq = 2;
         DELETE FROM audit_log WHERE seq = 2;",
    )
    .expect("tamper");
    drop(conn);
    let (ok, _, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(!ok);
    assert!(err.contains("audit entry 3"), "{err}");
}

#[test]
fn price_and_token_changes_from_the_shell_are_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["--data-dir", data];
        all.extend_from_slice(args);
        let (ok, out, err) = run_cli(&all, &[], stdin);
        assert!(ok, "{args:?}: {err}");
        out
    };
    run(
        &["user", "add", "ada", "--role", "admin", "--password-stdin"],
        Some("a long enough password\n"),
    );
    run(
        &["token", "create", "--user", "ada", "--scope", "ingest"],
        None,
    );
    run(&["token", "revoke", "1"], None);
    run(
        &["price", "set", "my-model", "--input", "1", "--output", "2"],
        None,
    );
    run(&["price", "remove", "my-model"], None);
    run(&["user", "role", "ada", "--role", "admin"], None);
    let conn = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let actions: Vec<String> = conn
        .prepare("SELECT action || ' ' || COALESCE(target, '') || ' ' || actor_name FROM audit_log ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        actions,
        [
            // The first command on a new database loads the price catalogue.
            "price.sync catalogue start",
            "user.create user:ada cli",
            "token.create user:ada cli",
            "token.revoke user:ada cli",
            "price.set model:my-model cli",
            "price.remove model:my-model cli",
            "user.role user:ada cli",
        ]
    );
}

// ---------------------------------------------------------------------------
// The keyed chain: forgery, truncation and emptying are found by verify.

/// A data directory whose audit trail holds one entry per user added from
/// the shell (each command also checkpoints the chain's head).
fn shell_chain(users: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    for name in users {
        let (ok, _, err) = run_cli(
            &[
                "--data-dir",
                data,
                "user",
                "add",
                name,
                "--role",
                "member",
                "--password-stdin",
            ],
            &[],
            Some("a long enough password\n"),
        );
        assert!(ok, "{err}");
    }
    dir
}

/// `tokentally verify`: whether it passed, and everything it printed.
fn verify_dir(dir: &tempfile::TempDir) -> (bool, String) {
    let data = dir.path().to_str().expect("utf-8");
    let (ok, out, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    (ok, format!("{out}{err}"))
}

/// A connection as an intruder has it: the file, not the key.
fn intruder(dir: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open")
}

#[test]
fn a_forged_purge_unlocks_nothing_and_is_found() {
    let dir = shell_chain(&["ada", "grace", "alan", "mary"]);
    assert!(verify_dir(&dir).0);
    let conn = intruder(&dir);
    let (head_seq, head_hash): (i64, String) = conn
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("head");
    // A purge entry anchoring entry 3, with a hash anyone can compute.
    let mut forged = chain::StoredEntry {
        seq: head_seq + 1,
        at_ms: 1,
        actor_kind: "system".into(),
        actor_id: None,
        actor_name: Some("retention".into()),
        action: "audit.purge".into(),
        target: None,
        client_addr: None,
        user_agent: None,
        route: None,
        outcome: "success".into(),
        details: serde_json::json!({"first_kept_seq": 3, "purged": 2, "cutoff_ms": 1,
            "first_kept_prev_hash": "x"})
        .to_string(),
        prev_hash: head_hash,
        hash: String::new(),
    };
    forged.hash = forged.unkeyed_hash();
    conn.execute(
        "INSERT INTO audit_log (seq, at_ms, actor_kind, actor_id, actor_name, action, target,
             client_addr, user_agent, route, outcome, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, NULL, ?4, ?5, NULL, NULL, NULL, NULL, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            forged.seq,
            forged.at_ms,
            forged.actor_kind,
            forged.actor_name,
            forged.action,
            forged.outcome,
            forged.details,
            forged.prev_hash,
            forged.hash
        ],
    )
    .expect("an intruder can insert");
    // Without tokentally's key function the trigger lets no delete through.
    let delete = conn.execute("DELETE FROM audit_log WHERE seq < 3", []);
    assert!(delete.is_err(), "the forged purge unlocked a delete");
    // An intruder who fakes the function gets the rows out…
    conn.create_scalar_function(
        "tt_audit_mac",
        13,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8,
        move |_| Ok(forged.hash.clone()),
    )
    .expect("function");
    conn.execute("DELETE FROM audit_log WHERE seq < 3", [])
        .expect("delete");
    drop(conn);
    // …and verify names the forged entry.
    let (ok, out) = verify_dir(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("audit entry {}", head_seq + 1)),
        "{out}"
    );
    assert!(out.contains("without the audit key"), "{out}");
}

#[test]
fn a_cut_tail_an_emptied_log_and_a_removed_oldest_part_are_found() {
    let cases: [(&str, &str); 3] = [
        (
            "DELETE FROM audit_log WHERE seq > 2",
            "the newest entries were removed",
        ),
        ("DELETE FROM audit_log", "the audit log is empty"),
        (
            "DELETE FROM audit_log WHERE seq < 3",
            "entries before it were removed",
        ),
    ];
    for (delete, finding) in cases {
        let dir = shell_chain(&["ada", "grace", "alan", "mary"]);
        let (ok, out) = verify_dir(&dir);
        assert!(ok, "{out}");
        let conn = intruder(&dir);
        conn.execute_batch(&format!("DROP TRIGGER audit_log_no_delete; {delete};"))
            .expect("tamper");
        drop(conn);
        let (ok, out) = verify_dir(&dir);
        assert!(!ok, "{delete}: verify passed: {out}");
        assert!(out.contains(finding), "{delete}: {finding:?} not in {out}");
    }
}

#[tokio::test]
async fn a_real_purge_by_retention_still_verifies_with_its_checkpoints() {
    let f = fixture().await;
    for _ in 0..5 {
        perform(&f, "page.view").await;
    }
    f.app.state.audit.flush().await;
    let db_path = f.app.dir.path().join("tokentally.db");
    let now = || tokentally::clock::Clock::now(f.app.clock.as_ref()).as_millisecond();
    let first = tokentally::audit::head::checkpoint_file(&db_path, now()).expect("checkpoint");
    assert!(first.is_some(), "a head was checkpointed");
    f.app
        .clock
        .advance(jiff::SignedDuration::from_hours(24 * 40));
    f.app.try_login("ada", PASSWORD).await;
    f.app.state.audit.flush().await;
    purge_older_than_30_days(&f.app).await;
    // The checkpointed entry is gone with the purge: that is allowed.
    let data = f.app.dir.path().to_str().expect("utf-8");
    let (ok, out, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(ok, "{out}{err}");
    tokentally::audit::head::checkpoint_file(&db_path, now()).expect("checkpoint");
    let (ok, out, err) = run_cli(&["--data-dir", data, "verify"], &[], None);
    assert!(ok, "{out}{err}");
}

#[test]
fn a_chain_from_before_the_key_is_adopted_and_stays_verifiable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("tokentally.db");
    tokentally::db::create_at_version(&db, 10).expect("an older schema");
    // Three entries as the previous release wrote them: plain SHA-256.
    let conn = rusqlite::Connection::open(&db).expect("open");
    let mut prev = chain::GENESIS.to_owned();
    for seq in 1..=3 {
        let mut entry = chain::StoredEntry {
            seq,
            at_ms: seq * 1000,
            actor_kind: "system".into(),
            actor_id: None,
            actor_name: Some("cli".into()),
            action: "user.create".into(),
            target: Some(format!("user:{seq}")),
            client_addr: None,
            user_agent: None,
            route: None,
            outcome: "success".into(),
            details: "{}".into(),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        entry.hash = entry.unkeyed_hash();
        conn.execute(
            "INSERT INTO audit_log (seq, at_ms, actor_kind, actor_name, action, target, outcome,
                 details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                entry.seq,
                entry.at_ms,
                entry.actor_kind,
                entry.actor_name,
                entry.action,
                entry.target,
                entry.outcome,
                entry.details,
                entry.prev_hash,
                entry.hash
            ],
        )
        .expect("insert");
        prev = entry.hash;
    }
    drop(conn);
    // The upgrade keys it: a key is made, `audit.keyed` vouches for 1..=3.
    let (ok, out) = verify_dir(&dir);
    assert!(ok, "{out}");
    assert!(dir.path().join("audit.key").exists());
    let conn = intruder(&dir);
    let keyed: String = conn
        .query_row(
            "SELECT details FROM audit_log WHERE action = 'audit.keyed'",
            [],
            |r| r.get(0),
        )
        .expect("the marker");
    assert!(keyed.contains("\"unkeyed_through_seq\":3"), "{keyed}");
    // An old entry changed, or a new unkeyed one appended, is found.
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update;
         UPDATE audit_log SET target = 'user:mallory' WHERE seq = 2;",
    )
    .expect("tamper");
    drop(conn);
    let (ok, out) = verify_dir(&dir);
    assert!(!ok && out.contains("audit entry 2"), "{out}");
    // Without its key, a keyed chain is refused rather than re-keyed.
    std::fs::remove_file(dir.path().join("audit.key")).expect("remove the key");
    let (ok, out) = verify_dir(&dir);
    assert!(!ok && out.contains("restore audit.key"), "{out}");
    assert!(
        !dir.path().join("audit.key").exists(),
        "no wrong key left behind"
    );
}

/// An ingest request with a wrong token, from `client`.
async fn refused_from(app: &TestApp, client: &str) -> TestResponse {
    let mut request = Request::post("/api/v1/events")
        .header("authorization", "Bearer tt_not_a_real_token")
        .header("content-type", "application/json")
        .body(Body::from("[]"))
        .expect("request");
    let peer: std::net::SocketAddr = format!("{client}:40000").parse().expect("address");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    app.request(request).await
}

/// The anonymous `access.denied` rows of `client`, with their counts.
async fn denied_counts(app: &TestApp, client: &str) -> Vec<u64> {
    app.audit_entries("access.denied")
        .await
        .iter()
        .filter(|e| e.actor_kind == "anonymous" && e.client_addr.as_deref() == Some(client))
        .map(|e| {
            let details: Value = serde_json::from_str(&e.details).expect("json");
            assert_eq!(details["sampled"], true, "{details}");
            details["count"].as_u64().expect("count")
        })
        .collect()
}

#[tokio::test]
async fn refused_anonymous_requests_are_counted_not_each_written() {
    let f = fixture().await;
    let rows_before = f
        .app
        .state
        .db
        .read(chain::verify)
        .await
        .expect("verify")
        .entries;
    // 300 refusals from one address inside a minute: each a clear 401…
    for _ in 0..300 {
        let refused = refused_from(&f.app, "203.0.113.7").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.json()["error"].is_string());
    }
    // …and one row, written at once; another address has its own.
    assert_eq!(denied_counts(&f.app, "203.0.113.7").await, [1]);
    refused_from(&f.app, "198.51.100.2").await;
    assert_eq!(denied_counts(&f.app, "198.51.100.2").await, [1]);
    // The next minute's first refusal carries the count of the last.
    f.app.clock.advance(jiff::SignedDuration::from_secs(61));
    // (Had the 10 s sweep run between the clock's jump and that request,
    // it would have written the 299 in a row of their own.)
    refused_from(&f.app, "203.0.113.7").await;
    let counts = denied_counts(&f.app, "203.0.113.7").await;
    assert!(counts == [1, 300] || counts == [1, 299, 1], "{counts:?}");
    // Counts still open when the server stops are written by the drain.
    for _ in 0..5 {
        refused_from(&f.app, "203.0.113.7").await;
    }
    f.app.state.audit.drain().await;
    let after_drain = denied_counts(&f.app, "203.0.113.7").await;
    assert_eq!(after_drain[..counts.len()], counts[..]);
    assert_eq!(after_drain[counts.len()..], [5]);
    assert_eq!(
        after_drain.iter().sum::<u64>(),
        306,
        "every refusal is counted"
    );
    assert_eq!(f.app.state.audit.refusals().tracked(), 0);

    // Signed-in users, token holders and guesses at a real account keep
    // one row each.
    let ada = f.app.login("ada", PASSWORD).await;
    let denied_before = count(&f.app, "access.denied").await;
    for _ in 0..3 {
        assert_eq!(
            f.app.get("/admin/users", Some(&ada)).await.status,
            StatusCode::FORBIDDEN
        );
        let wrong_scope = f
            .app
            .post_bytes(
                "/api/v1/events",
                Some(&f.read),
                &[("content-type", "application/json")],
                b"[]".to_vec(),
            )
            .await;
        assert_eq!(wrong_scope.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(count(&f.app, "access.denied").await, denied_before + 6);
    let failures_before = count(&f.app, "login.failure").await;
    for _ in 0..3 {
        let failed = f.app.try_login("ada", "wrong password!!").await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(count(&f.app, "login.failure").await, failures_before + 3);
    // Guesses at names that do not exist are sampled like the rest.
    for _ in 0..3 {
        let failed = f.app.try_login("nobody", "wrong password!!").await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    }
    let nobody: Vec<_> = f
        .app
        .audit_entries("login.failure")
        .await
        .into_iter()
        .filter(|e| e.target.as_deref() == Some("user:nobody"))
        .collect();
    assert_eq!(nobody.len(), 1);

    // Nothing was stored, and the chain verifies.
    assert!(f.app.stored_by_user().await.is_empty());
    let report = f.app.state.db.read(chain::verify).await.expect("verify");
    assert_eq!(report.broken, None);
    assert!(report.entries < rows_before + 30, "{} rows", report.entries);
}

/// The retention purge of entries older than 30 days, as the housekeeping
/// runs it; how many went.
async fn purge_older_than_30_days(app: &TestApp) -> u64 {
    let now_ms = tokentally::clock::Clock::now(app.clock.as_ref()).as_millisecond();
    let cutoff = now_ms - 30 * 86_400_000;
    app.state
        .db
        .write(move |conn| {
            chain::purge_before(
                conn,
                cutoff,
                tokentally::audit::Actor::System("retention".into()),
                now_ms,
            )
        })
        .await
        .expect("purge")
}
