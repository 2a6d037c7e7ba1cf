//! Identities in the store (`usage::identities`): an unknown identity's
//! usage is held on its own account, counted from the first event; an
//! identity whose email is a person's links itself; linking moves the past
//! exactly, unlinking moves it back. Checked against an oracle over the
//! events the test made (per user and local day, in two zones) and against
//! a plain GROUP BY over the raw events (`verify`) after every step.

use std::collections::BTreeMap;

use crate::common::store::Store;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokentally::model::{IdentityKey, IdentityKind};
use tokentally::usage::buckets::BucketSize;
use tokentally::usage::identities::{self, IdentityError};
use tokentally::usage::query::{self, Filters, SeriesQuery};
use tokentally::usage::rollup::{self, Dim};
use tokentally::usage::store::NewEvent;
use tokentally::usage::{Scope, Totals};

const DAY_MS: i64 = 86_400_000;
/// 2026-06-01T00:00:00Z.
const START_MS: i64 = 1_780_272_000_000;
const DAYS: i64 = 12;

fn ada_email() -> IdentityKey {
    // Sent with capitals: emails fold to lower case.
    IdentityKey::new(IdentityKind::Email, "Ada@Example.COM")
}

pub fn carol() -> IdentityKey {
    IdentityKey::new(IdentityKind::Email, "carol@example.com")
}

fn laptop() -> IdentityKey {
    IdentityKey::new(IdentityKind::EndUser, "bob-laptop")
}

/// Whose the test says an event is, before any link: a person, or an
/// identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Sender {
    Person(usize),
    Identity(IdentityKey),
}

/// Deterministic events at odd instants, from five senders in turn; the
/// last one repeats, as carol's identity, the source and id of one of
/// bob's own events (the same call, reported twice).
fn events(store: &Store) -> Vec<(Sender, NewEvent)> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: i64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as i64
    };
    let senders = [
        Sender::Identity(ada_email()),
        Sender::Identity(carol()),
        Sender::Identity(laptop()),
        Sender::Person(1),
        Sender::Person(0),
    ];
    let mut made: Vec<(Sender, NewEvent)> = (0..400)
        .map(|i| {
            let sender = senders[i % senders.len()].clone();
            let (user, identity) = match &sender {
                Sender::Person(n) => (store.users[*n], None),
                // The token's owner; the identity decides.
                Sender::Identity(key) => (store.users[0], Some(key.clone())),
            };
            let event = NewEvent {
                extras: Default::default(),
                ts_ms: START_MS + next(DAYS * DAY_MS),
                user,
                source: "otlp".into(),
                external_id: format!("call-{i}"),
                model: "llama-local".into(),
                provider: None,
                activity: Some("chat".into()),
                project: None,
                tokens: [1 + next(5_000), next(2_000), next(9_000), next(700)],
                reported_cost_micros: Some(next(40_000)),
                identity,
                session: None,
                machine: None,
            };
            (sender, event)
        })
        .collect();
    let (_, bobs) = made
        .iter()
        .find(|(sender, _)| *sender == Sender::Person(1))
        .cloned()
        .expect("one of bob's own");
    let twin = NewEvent {
        extras: Default::default(),
        user: store.users[0],
        identity: Some(carol()),
        ..bobs
    };
    made.push((Sender::Identity(carol()), twin));
    made
}

/// The account name each sender's usage is under, given the links.
fn owner_names(store: &Store, links: &BTreeMap<IdentityKey, &str>) -> BTreeMap<Sender, String> {
    let people = ["ada", "bob"];
    let mut names = BTreeMap::new();
    for (n, name) in people.iter().enumerate() {
        names.insert(Sender::Person(n), (*name).to_owned());
    }
    for key in [ada_email(), carol(), laptop()] {
        let owner = match links.get(&key) {
            Some(person) => (*person).to_owned(),
            None => holder_name(store, &key),
        };
        names.insert(Sender::Identity(key), owner);
    }
    names
}

fn holder_name(store: &Store, key: &IdentityKey) -> String {
    let key = key.clone();
    store.read(move |conn| {
        let identity = identities::find(conn, &key)?.expect("seen");
        Ok(conn.query_row(
            "SELECT username FROM users WHERE id = ?1",
            [identity.holder.0],
            |row| row.get::<_, String>(0),
        )?)
    })
}

type Table = BTreeMap<(String, String), Totals>;

/// What the oracle says: per account and local day, from the events alone.
/// An event whose twin (same source and id) is its owner's own counts once.
fn expected(
    made: &[(Sender, NewEvent)],
    owners: &BTreeMap<Sender, String>,
    zone: &TimeZone,
) -> Table {
    let mut table = Table::new();
    let mut seen = std::collections::BTreeSet::new();
    for (sender, event) in made {
        let owner = owners[sender].clone();
        if !seen.insert((
            owner.clone(),
            event.source.clone(),
            event.external_id.clone(),
        )) {
            continue;
        }
        let day = Timestamp::from_millisecond(event.ts_ms)
            .expect("instant")
            .to_zoned(zone.clone())
            .date()
            .to_string();
        let cell = table.entry((owner, day)).or_default();
        cell.calls += 1;
        cell.input_tokens += event.tokens[0];
        cell.output_tokens += event.tokens[1];
        cell.cache_read_tokens += event.tokens[2];
        cell.cache_write_tokens += event.tokens[3];
        cell.cost_micros += event.reported_cost_micros.expect("reported");
        cell.reported_cost_micros += event.reported_cost_micros.expect("reported");
    }
    table
}

/// What the query layer (rollups and planner) answers.
fn answered(store: &Store, zone: &TimeZone) -> Table {
    let query = SeriesQuery {
        from: Timestamp::from_millisecond(START_MS - DAY_MS).expect("from"),
        to: Timestamp::from_millisecond(START_MS + (DAYS + 1) * DAY_MS).expect("to"),
        zone: zone.clone(),
        bucket: BucketSize::Day,
        group_by: Some(Dim::User.into()),
        filters: Filters::default(),
    };
    let series = store.read(move |conn| query::series(conn, Scope::Everyone, &query));
    let mut table = Table::new();
    for (bucket, cells) in series.buckets.iter().zip(&series.cells) {
        for (group, cell) in series.groups.iter().zip(cells) {
            if cell.calls > 0 {
                let name = group.clone().expect("a user");
                table.insert((name, bucket.label.clone()), cell.clone());
            }
        }
    }
    table
}

fn assert_exact(
    store: &Store,
    made: &[(Sender, NewEvent)],
    links: &BTreeMap<IdentityKey, &str>,
    step: &str,
) {
    let mismatch = store.read(|conn| Ok(rollup::verify(conn)?));
    assert_eq!(mismatch, None, "{step}: rollups against the raw events");
    let owners = owner_names(store, links);
    for zone in ["UTC", "America/New_York"] {
        let zone = TimeZone::get(zone).expect("zone");
        assert_eq!(
            answered(store, &zone),
            expected(made, &owners, &zone),
            "{step}: {zone:?}"
        );
    }
}

#[test]
fn unknown_identities_are_held_then_linked_and_their_past_moves_exactly() {
    let store = Store::new(&["ada", "bob"]);
    store.write(|conn| {
        conn.execute(
            "UPDATE users SET email = 'ada@example.com' WHERE username = 'ada'",
            [],
        )?;
        Ok(())
    });
    let made = events(&store);
    let outcome = store.insert(made.iter().map(|(_, e)| e.clone()).collect(), 7);
    assert_eq!(outcome.accepted, made.len(), "every event is new");

    // Ada's email linked itself; carol and the laptop are held.
    let mut links = BTreeMap::from([(ada_email(), "ada")]);
    assert_exact(&store, &made, &links, "after ingest");
    let listed = store.read(|conn| Ok(identities::list(conn)?));
    let unassigned: Vec<String> = listed
        .iter()
        .filter(|row| row.identity.linked.is_none())
        .map(|row| row.identity.key.to_string())
        .collect();
    assert_eq!(unassigned.len(), 2, "{unassigned:?}");
    let carols = listed
        .iter()
        .find(|row| row.identity.key == carol())
        .expect("carol listed");
    assert_eq!(carols.events, 81, "80 in turn and the twin");
    let people = store.read(|conn| Ok(tokentally::auth::users::list(conn)?));
    assert_eq!(people.len(), 2, "holders are not listed as people");

    // Carol turns out to be bob's other address: her past moves to him;
    // the twin of one of bob's own calls is kept once.
    let moved = store.write(|conn| identities::link(conn, &carol(), "bob").map_err(into_db));
    assert_eq!((moved.events, moved.merged), (80, 1));
    links.insert(carol(), "bob");
    assert_exact(&store, &made, &links, "after linking carol to bob");
    let again = store.write(|conn| identities::link(conn, &carol(), "bob").map_err(into_db));
    assert_eq!((again.events, again.merged), (0, 0), "a link is idempotent");

    // The laptop goes to ada, then back to unassigned.
    store.write(|conn| identities::link(conn, &laptop(), "ada").map_err(into_db));
    links.insert(laptop(), "ada");
    assert_exact(&store, &made, &links, "after linking the laptop to ada");
    let back = store.write(|conn| identities::unlink(conn, &laptop()).map_err(into_db));
    assert_eq!(back.events, 80);
    links.remove(&laptop());
    assert_exact(&store, &made, &links, "after unlinking the laptop");

    // Later events of a linked identity go to the person directly.
    let later = NewEvent {
        extras: Default::default(),
        ts_ms: START_MS + 3 * DAY_MS + 1,
        external_id: "later-1".into(),
        ..made[1].1.clone()
    };
    store.insert(vec![later.clone()], 1);
    let mut made = made;
    made.push((Sender::Identity(carol()), later));
    assert_exact(&store, &made, &links, "after a later event of carol's");
}

#[test]
fn linking_refuses_unknown_identities_and_people() {
    let store = Store::new(&["ada", "bob"]);
    let refused =
        store.runtime.block_on(store.db.write(|conn| {
            Ok::<_, tokentally::db::DbError>(identities::link(conn, &carol(), "ada"))
        }));
    assert!(matches!(refused, Ok(Err(IdentityError::NotFound(_)))));
    let event = NewEvent {
        extras: Default::default(),
        identity: Some(carol()),
        ..events(&store)[1].1.clone()
    };
    store.insert(vec![event], 1);
    let refused = store.runtime.block_on(store.db.write(|conn| {
        Ok::<_, tokentally::db::DbError>(identities::link(conn, &carol(), "nobody"))
    }));
    assert!(matches!(refused, Ok(Err(IdentityError::NoSuchUser(_)))));
    // A holder is not a person to link to.
    let holder = holder_name(&store, &carol());
    let refused = store.runtime.block_on(store.db.write(move |conn| {
        Ok::<_, tokentally::db::DbError>(identities::link(conn, &carol(), &holder))
    }));
    assert!(matches!(refused, Ok(Err(IdentityError::NoSuchUser(_)))));
}

fn into_db(e: IdentityError) -> tokentally::db::DbError {
    match e {
        IdentityError::Db(e) => e,
        other => panic!("{other}"),
    }
}

/// Through the real binary: `tokentally identity list|link|unlink`, each
/// change with its audit entry, `verify` passing after it.
#[test]
fn the_identity_commands_list_link_and_unlink_with_an_audit_entry() {
    use crate::common::server::run_cli;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let cli = |args: &[&str]| {
        let mut full = vec!["--data-dir", data.as_str()];
        full.extend_from_slice(args);
        run_cli(&full, &[], None)
    };
    add_bob(&data);
    seed_carol(&dir.path().join("tokentally.db"), 3);

    let (ok, out, err) = cli(&["identity", "list", "--json"]);
    assert!(ok, "{err}");
    let listed: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(listed["kind"], "email");
    assert_eq!(listed["value"], "carol@example.com");
    assert_eq!(listed["user"], serde_json::Value::Null);
    assert_eq!(listed["events"], 3);

    let (ok, out, err) = cli(&[
        "identity",
        "link",
        "email",
        "carol@example.com",
        "--user",
        "bob",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("3 events moved"), "{out}");
    let (_, out, _) = cli(&["identity", "list", "--json"]);
    assert!(out.contains(r#""user":"bob""#), "{out}");
    let (ok, out, err) = cli(&["verify"]);
    assert!(ok, "{out}{err}");

    let (ok, _, err) = cli(&[
        "identity",
        "link",
        "email",
        "nobody@example.com",
        "--user",
        "bob",
    ]);
    assert!(
        !ok && err.contains("no identity email:nobody@example.com"),
        "{err}"
    );
    let (ok, _, err) = cli(&[
        "identity",
        "link",
        "email",
        "carol@example.com",
        "--user",
        "nobody",
    ]);
    assert!(!ok && err.contains("no person named \"nobody\""), "{err}");
    let (ok, _, err) = cli(&["identity", "link", "phone", "123", "--user", "bob"]);
    assert!(!ok && err.contains("unknown identity kind"), "{err}");

    let (ok, out, err) = cli(&["identity", "unlink", "email", "carol@example.com"]);
    assert!(ok, "{err}");
    assert!(out.contains("3 events are unassigned again"), "{out}");
    let (ok, out, err) = cli(&["verify"]);
    assert!(ok, "{out}{err}");

    let conn = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let entries: Vec<(String, String, String)> = conn
        .prepare("SELECT action, target, details FROM audit_log WHERE action LIKE 'identity.%' ORDER BY seq")
        .expect("prepare")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let actions: Vec<&str> = entries.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(actions, ["identity.link", "identity.unlink"]);
    assert_eq!(entries[0].1, "identity:email:carol@example.com");
    assert!(
        entries[0].2.contains(r#""events_moved":3"#),
        "{}",
        entries[0].2
    );
    assert!(entries[0].2.contains(r#""user":"bob""#), "{}", entries[0].2);
}

/// `count` events of the identity email:carol@example.com, written through
/// the store as a collector's would be.
pub fn seed_carol(db_path: &std::path::Path, count: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let db =
            tokentally::db::Db::open(db_path, &tokentally::db::DbOptions::default()).expect("open");
        db.write(move |conn| {
            let owner: i64 =
                conn.query_row("SELECT id FROM users WHERE username = 'bob'", [], |r| {
                    r.get(0)
                })?;
            let events = carol_events(tokentally::model::UserId(owner), count, 1_000);
            tokentally::usage::store::Inserter::new(conn)?.insert(conn, &events)
        })
        .await
        .expect("seed");
        db.shutdown().await;
    });
}

/// `tokentally identity link` killed with SIGKILL at growing delays while
/// it moves 100,000 events: after every kill `verify` passes, and the link
/// either happened whole or not at all. Then it runs to the end.
#[test]
fn a_link_killed_midway_is_whole_or_absent() {
    use crate::common::server::{BINARY, run_cli};
    const EVENTS: usize = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    add_bob(&data);
    let db_path = dir.path().join("tokentally.db");
    seed_carol(&db_path, 1);
    copy_carols_first_event(&db_path, EVENTS - 1);
    let (ok, out, err) = run_cli(&["--data-dir", &data, "verify"], &[], None);
    assert!(ok, "the seeded database verifies: {out}{err}");
    let link = [
        "--data-dir",
        &data,
        "identity",
        "link",
        "email",
        "carol@example.com",
        "--user",
        "bob",
    ];
    let mut outcomes = Vec::new();
    for delay_ms in [0, 300, 1_200] {
        let mut child = std::process::Command::new(BINARY)
            .args(link)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        // Killed only once it says it is linking: the database is open and
        // the move is about to begin (or under way), not before.
        let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        // Kept open until the child is gone: a closed pipe would fail its
        // next write to standard error, not our kill.
        let mut lines = std::io::BufRead::lines(stderr);
        let said = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|line| line.contains("linking email:carol@example.com"));
        assert!(said.is_some(), "the link never started");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let killed = child.try_wait().expect("try_wait").is_none();
        let _ = child.kill();
        let _ = child.wait();
        drop(lines);
        let (ok, out, err) = run_cli(&["--data-dir", &data, "verify"], &[], None);
        assert!(ok, "after a kill at {delay_ms} ms: {out}{err}");
        let state = link_state(&db_path, EVENTS);
        outcomes.push((delay_ms, killed, state));
        if state == "whole" {
            // Undo it, so the next kill meets a link to make again.
            let (ok, _, err) = run_cli(
                &[
                    "--data-dir",
                    &data,
                    "identity",
                    "unlink",
                    "email",
                    "carol@example.com",
                ],
                &[],
                None,
            );
            assert!(ok, "{err}");
        }
    }
    eprintln!("kills (delay ms, still running when killed, state): {outcomes:?}");
    let (ok, out, err) = run_cli(&link, &[], None);
    assert!(ok && out.contains("100000 events moved"), "{out}{err}");
    assert_eq!(link_state(&db_path, EVENTS), "whole");
}

/// `copies` more events of carol's identity, like her first one an hour
/// apart, written by SQL (a debug build inserts 100,000 events through the
/// store slowly); the rollups are then rebuilt from the raw events with
/// the store's own rebuild (what `verify --repair` runs).
fn copy_carols_first_event(db_path: &std::path::Path, copies: usize) {
    let conn = rusqlite::Connection::open(db_path).expect("open");
    let mut sql = format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {copies})
         INSERT INTO events (ts_ms, user_id, source_id, external_id, model_id, provider_id,
                             activity_id, project_id, input_tokens, output_tokens,
                             cache_read_tokens, cache_write_tokens, cost_micros, cost_origin,
                             identity_id)
         SELECT e.ts_ms + n.i * 3600000, e.user_id, e.source_id, 'copy-' || n.i, e.model_id,
                e.provider_id, e.activity_id, e.project_id, e.input_tokens + n.i % 97,
                e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, e.cost_micros,
                e.cost_origin, e.identity_id
         FROM n, (SELECT * FROM events WHERE identity_id IS NOT NULL LIMIT 1) e;\n"
    );
    for level in tokentally::usage::rollup::Level::ALL {
        sql.push_str(&format!("DELETE FROM {};\n", level.table()));
        sql.push_str(&tokentally::usage::rollup::rebuild_sql(level));
    }
    // The rebuild holds every event.
    sql.push_str("UPDATE rollup_watermark SET event_id = (SELECT MAX(id) FROM events);\n");
    sql.push_str("COMMIT;");
    conn.execute_batch(&sql).expect("copies");
}

/// Where carol's events are: all on bob and the identity linked
/// ("whole"), all on her holder and unlinked ("absent"); anything else
/// fails the test.
fn link_state(db_path: &std::path::Path, events: usize) -> &'static str {
    let conn = rusqlite::Connection::open(db_path).expect("open");
    let (on_bob, on_holder, linked): (i64, i64, Option<i64>) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM events e JOIN users u ON u.id = e.user_id
                     WHERE e.identity_id = i.id AND u.username = 'bob'),
                    (SELECT COUNT(*) FROM events e WHERE e.identity_id = i.id
                     AND e.user_id = i.holder_id),
                    i.user_id
             FROM identities i WHERE i.kind = 'email' AND i.value = 'carol@example.com'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("state");
    match (on_bob as usize, on_holder as usize, linked) {
        (n, 0, Some(_)) if n == events => "whole",
        (0, n, None) if n == events => "absent",
        other => panic!("a half-made link: {other:?}"),
    }
}

/// Through the real binary: the member bob, in the data directory `data`.
pub fn add_bob(data: &str) {
    let (ok, _, err) = crate::common::server::run_cli(
        &[
            "--data-dir",
            data,
            "user",
            "add",
            "bob",
            "--role",
            "member",
            "--password-stdin",
        ],
        &[],
        Some("a long enough password\n"),
    );
    assert!(ok, "{err}");
}

/// `count` hourly events of the identity email:carol@example.com from
/// 2026-06-01, sent with `owner`'s token (a collector's: the identity
/// decides whose they are), each `cost_micros` as reported.
pub fn carol_events(
    owner: tokentally::model::UserId,
    count: usize,
    cost_micros: i64,
) -> Vec<NewEvent> {
    (0..count)
        .map(|i| NewEvent {
            extras: Default::default(),
            ts_ms: START_MS + i as i64 * 3_600_000,
            user: owner,
            source: "otlp".into(),
            external_id: format!("carol-{i}"),
            model: "llama-local".into(),
            provider: None,
            activity: None,
            project: None,
            tokens: [100, 10, 0, 0],
            reported_cost_micros: Some(cost_micros),
            identity: Some(carol()),
            session: None,
            machine: None,
        })
        .collect()
}
