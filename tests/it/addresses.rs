//! Client addresses through the real router: the address the audit trail
//! records and the sign-in throttle counts is the TCP peer, unless that
//! peer is a trusted proxy, whose `X-Forwarded-For` then names the client
//! (the last address in it that is not itself a trusted proxy). Nobody
//! else's `X-Forwarded-For` is believed, so it can neither forge the
//! recorded address nor escape the throttle.

use std::net::{IpAddr, SocketAddr};

use crate::common::{self, DEFAULT_PEER, PASSWORD, Peer, TestApp};
use axum::http::StatusCode;
use jiff::SignedDuration;
use tokentally::auth::Role;

/// Failures one address may make, across accounts, before it must wait
/// (`FREE_PER_ADDRESS` in `src/auth/throttle.rs`).
const FREE_PER_ADDRESS: usize = 20;

fn peer(address: &str) -> SocketAddr {
    SocketAddr::new(address.parse().expect("an IP address"), 41000)
}

fn ips(addresses: &[&str]) -> Vec<IpAddr> {
    addresses
        .iter()
        .map(|a| a.parse().expect("an IP address"))
        .collect()
}

/// The app trusting `proxies`.
async fn behind(proxies: &[&str]) -> TestApp {
    let proxies = ips(proxies);
    TestApp::with_options(move |options| options.trusted_proxies = proxies).await
}

/// Signs `username` in (a fresh user) from `client`; returns the client
/// address the audit trail recorded for that sign-in.
async fn recorded(app: &TestApp, username: &str, client: Peer<'_>) -> Option<String> {
    app.create_user(username, Role::Member).await;
    client.login(username, PASSWORD).await;
    let entries = app.audit_entries("login.success").await;
    let target = format!("user:{username}");
    let mut mine = entries
        .into_iter()
        .filter(|e| e.target.as_deref() == Some(target.as_str()));
    let entry = mine.next().expect("the sign-in is audited");
    assert!(mine.next().is_none(), "one sign-in, one entry");
    entry.client_addr
}

#[tokio::test]
async fn without_trusted_proxies_the_peer_is_the_client_whatever_it_claims() {
    let app = TestApp::new().await;
    assert_eq!(
        recorded(&app, "plain", app.client_at(peer("198.51.100.7"))).await,
        Some("198.51.100.7".to_owned())
    );
    assert_eq!(
        recorded(&app, "v6", app.client_at(peer("2001:db8::42"))).await,
        Some("2001:db8::42".to_owned())
    );
    // Requests that choose no peer come from the default one.
    assert_eq!(
        recorded(&app, "default", app.client_at(DEFAULT_PEER)).await,
        Some(DEFAULT_PEER.ip().to_string())
    );
    // A client naming someone else in X-Forwarded-For is recorded as
    // itself: with no proxy trusted, nobody's header is believed.
    let spoofing = app
        .client_at(peer("198.51.100.8"))
        .forwarded_for("203.0.113.9");
    assert_eq!(
        recorded(&app, "spoofer", spoofing).await,
        Some("198.51.100.8".to_owned())
    );
}

#[tokio::test]
async fn only_a_trusted_proxys_x_forwarded_for_names_the_client() {
    let app = behind(&["10.0.0.1", "10.0.0.2", "fd00::1"]).await;
    let cases: [(&str, &str, &[&str], &str); 11] = [
        // A stranger's header is ignored even when proxies are configured.
        ("stranger", "198.51.100.9", &["203.0.113.9"], "198.51.100.9"),
        // The proxy names the client it serves.
        ("proxied", "10.0.0.1", &["203.0.113.5"], "203.0.113.5"),
        ("proxied6", "fd00::1", &["2001:db8::5"], "2001:db8::5"),
        // Two proxies in a row: the last address that is not a trusted
        // proxy is the client; what the client itself put in front (here
        // a forged address) is not believed.
        (
            "hops",
            "10.0.0.1",
            &["198.51.100.99, 203.0.113.5, 10.0.0.2"],
            "203.0.113.5",
        ),
        // The same hops in separate header lines.
        (
            "lines",
            "10.0.0.1",
            &["198.51.100.99", "203.0.113.6", "10.0.0.2"],
            "203.0.113.6",
        ),
        // Junk the client sent in front is skipped, not mistaken for it.
        (
            "junk",
            "10.0.0.1",
            &["not-an-address, 999.1.1.1,, 203.0.113.7 , 10.0.0.2"],
            "203.0.113.7",
        ),
        // A proxy that writes the client with its port.
        (
            "ported",
            "10.0.0.1",
            &["198.51.100.99, 203.0.113.8:4711"],
            "203.0.113.8",
        ),
        // An entry our proxy wrote that is no address stops the walk: what
        // stands to its left is the client's own word, never believed.
        (
            "unreadable",
            "10.0.0.1",
            &["198.51.100.99, for=203.0.113.9"],
            "10.0.0.1",
        ),
        // A proxy forwarding without the header, or with nothing usable
        // or only proxies in it, is itself the client.
        ("bare", "10.0.0.2", &[], "10.0.0.2"),
        ("nothing", "10.0.0.2", &["unknown"], "10.0.0.2"),
        ("only-proxies", "10.0.0.1", &["10.0.0.2"], "10.0.0.1"),
    ];
    for (username, from, forwarded, client) in cases {
        let mut sender = app.client_at(peer(from));
        for value in forwarded {
            sender = sender.forwarded_for(value);
        }
        assert_eq!(
            recorded(&app, username, sender).await.as_deref(),
            Some(client),
            "{username}: from {from} with X-Forwarded-For {forwarded:?}"
        );
    }
}

/// `FREE_PER_ADDRESS` failed sign-ins from `client`, each for a different
/// account (so no account is held back), all refused as wrong.
async fn fail_across_accounts(client: &Peer<'_>, prefix: &str) {
    for i in 0..FREE_PER_ADDRESS {
        let failed = client
            .try_login(&format!("{prefix}{i}"), "a guessed password")
            .await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
}

/// Asserts that `client` is held back for its address, for `seconds`.
async fn assert_address_held(client: &Peer<'_>, username: &str, seconds: u32) {
    let held = client.try_login(username, PASSWORD).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "{}", held.body);
    assert_eq!(held.headers["retry-after"], seconds.to_string().as_str());
    assert!(
        held.body
            .contains("Too many failed sign-ins for your network address"),
        "{}",
        held.body
    );
}

#[tokio::test]
async fn failed_sign_ins_from_one_address_hold_it_back_across_accounts_only() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let attacker = app.client_at(peer("198.51.100.7"));
    let neighbour = app.client_at(peer("198.51.100.8"));
    fail_across_accounts(&attacker, "guess").await;
    // Even a right password of an account never guessed waits now.
    assert_address_held(&attacker, "ada", 1).await;
    // Another address is not held back by it, for the same accounts.
    assert_eq!(
        neighbour
            .try_login("guess0", "a guessed password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        neighbour.try_login("ada", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // A forged X-Forwarded-For does not make the attacker someone else.
    assert_address_held(&attacker.clone().forwarded_for("198.51.100.8"), "ada", 1).await;
    // Once the wait is over the right password gets in, but a success
    // does not clear the address: each further failure doubles its wait,
    // and the wait is honoured to the second.
    app.clock.advance(SignedDuration::from_secs(1));
    assert_eq!(
        attacker.try_login("ada", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // The wait doubles up to the lock's 15 minutes, never beyond (a longer
    // wait would outlast the hour after which a quiet address is
    // forgotten, and the lock after 50 failures could never be reached).
    let mut wait = 1;
    for i in 0..29 {
        let failed = attacker
            .try_login(&format!("more{i}"), "a guessed password")
            .await;
        assert_eq!(failed.status, StatusCode::UNAUTHORIZED, "{}", failed.body);
        wait = (wait * 2).min(900);
        assert_address_held(&attacker, "ada", wait).await;
        app.clock
            .advance(SignedDuration::from_secs(i64::from(wait) - 1));
        assert_address_held(&attacker, "ada", 1).await;
        app.clock.advance(SignedDuration::from_secs(1));
    }
    let failed = attacker.try_login("last", "a guessed password").await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let locked = attacker.try_login("ada", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked.body.contains("Try again in 15 minutes"),
        "{}",
        locked.body
    );
    assert_eq!(
        neighbour.try_login("ada", PASSWORD).await.status,
        StatusCode::SEE_OTHER,
        "the neighbour is still free"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_count_and_cannot_shed_it() {
    let app = behind(&["10.0.0.1"]).await;
    app.create_user("ada", Role::Member).await;
    let proxy = peer("10.0.0.1");
    let client = app.client_at(proxy).forwarded_for("203.0.113.5");
    let other = app.client_at(proxy).forwarded_for("203.0.113.6");
    fail_across_accounts(&client, "guess").await;
    assert_address_held(&client, "ada", 1).await;
    // Another client of the same proxy is not held back: the count is the
    // client's, not the proxy's.
    assert_eq!(
        other.try_login("guess0", "a guessed password").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        other.try_login("ada", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // The client cannot shed its count: not by putting another address in
    // front of what the proxy appends,
    let forged_through_proxy = app
        .client_at(proxy)
        .forwarded_for("203.0.113.6, 203.0.113.5");
    assert_address_held(&forged_through_proxy, "ada", 1).await;
    // nor by going round the proxy with a forged header of its own.
    let round_the_proxy = app
        .client_at(peer("203.0.113.5"))
        .forwarded_for("203.0.113.6");
    assert_address_held(&round_the_proxy, "ada", 1).await;
}

#[tokio::test]
async fn guesses_sent_in_parallel_are_counted_as_they_start() {
    let app = TestApp::new().await;
    app.create_user("ada", Role::Member).await;
    let router = tokentally::app::router(app.state.clone());
    let from = axum::extract::ConnectInfo(peer("198.51.100.20"));
    // The login page from the same router (its session layer reads the
    // cookie it set), for a session and its CSRF token.
    let page = tower::ServiceExt::oneshot(
        router.clone(),
        axum::http::Request::get("/login")
            .extension(from)
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .expect("infallible");
    let cookie = common::session_cookie_in(page.headers()).expect("a session");
    let body = http_body_util::BodyExt::collect(page.into_body())
        .await
        .expect("body")
        .to_bytes();
    let csrf = common::csrf_token(&String::from_utf8_lossy(&body)).expect("a CSRF token");
    let form = format!("username=ada&password=wrong-guess-123&csrf_token={csrf}");
    // Thirty wrong passwords at once: the account's five free attempts are
    // checked against the password; the rest wait their turn (429).
    let attempts: Vec<_> = (0..30)
        .map(|_| {
            let request = axum::http::Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie.clone())
                .extension(from)
                .body(axum::body::Body::from(form.clone()))
                .expect("request");
            tokio::spawn(tower::ServiceExt::oneshot(router.clone(), request))
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        let response = attempt.await.expect("task").expect("infallible");
        statuses.push(response.status().as_u16());
    }
    let tried = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(tried, 5, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
}
