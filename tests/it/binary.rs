//! The real binary: start, serve, sign in, stop on SIGTERM; the CLI.

use crate::common;
use crate::common::server::{Server, agent, run_cli, session_cookie};

fn body(response: ureq::http::Response<ureq::Body>) -> String {
    response.into_body().read_to_string().unwrap_or_default()
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", common::form_encode(k), common::form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Opens the form's page (for its session and CSRF token), then posts
/// `fields` to `url`, as a browser does.
fn post_form(
    page_url: &str,
    url: &str,
    fields: &[(&str, &str)],
) -> ureq::http::Response<ureq::Body> {
    let page = agent().get(page_url).call().expect("form page");
    let cookie = session_cookie(&page).expect("the form page starts a session");
    let csrf = common::csrf_token(&body(page)).expect("the form has a CSRF token");
    let mut fields = fields.to_vec();
    fields.push(("csrf_token", &csrf));
    agent()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .send(form(&fields))
        .expect("request")
}

#[test]
fn first_run_serves_setup_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    server.wait_ready();
    let client = agent();

    let health = client.get(&server.url("/healthz")).call().expect("healthz");
    assert_eq!(health.status(), 200);
    let root = client.get(&server.url("/")).call().expect("root");
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/login");
    let login = client
        .get(&server.url("/login"))
        .call()
        .expect("login page");
    assert_eq!(login.status(), 200);
    assert!(body(login).contains("Sign in"));

    let setup_line = server
        .banner
        .iter()
        .find(|line| line.contains("/setup?token="))
        .expect("the setup link is printed");
    let setup_url = setup_line
        .split_whitespace()
        .last()
        .expect("url")
        .to_owned();
    let token = setup_url.split("token=").nth(1).expect("token").to_owned();
    assert!(setup_url.starts_with(&server.base_url));
    let password = "the first admin's password";
    let created = post_form(
        &setup_url,
        &server.url("/setup"),
        &[
            ("token", &token),
            ("username", "root"),
            ("password", password),
            ("password_confirm", password),
        ],
    );
    assert_eq!(created.status(), 303);
    let cookie = session_cookie(&created).expect("signed in after setup");
    let dashboard = client
        .get(&server.url("/"))
        .header("cookie", &cookie)
        .call()
        .expect("dashboard");
    assert_eq!(dashboard.status(), 200);

    let (status, stderr) = server.terminate();
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        stderr.contains("route=/setup"),
        "requests are logged by route"
    );
    assert!(
        !stderr.contains(&token),
        "the setup token never reaches the log"
    );
    assert!(
        !stderr.contains(password),
        "a password never reaches the log"
    );
    let wal = dir.path().join("tokentally.db-wal");
    assert_eq!(std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0), 0);
}

#[test]
fn demo_mode_prints_accounts_that_reach_a_filled_dashboard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--demo"]);
    let admin_line = server
        .banner
        .iter()
        .find(|line| line.trim_start().starts_with("admin"))
        .expect("the demo admin is printed");
    let fields: Vec<&str> = admin_line.split_whitespace().collect();
    let (username, password) = (fields[1], fields[3]);
    server.wait_ready();

    let login = post_form(
        &server.url("/login"),
        &server.url("/login"),
        &[("username", username), ("password", password)],
    );
    assert_eq!(login.status(), 303);
    let cookie = session_cookie(&login).expect("session");
    let page = agent()
        .get(&server.url("/"))
        .header("cookie", &cookie)
        .call()
        .expect("dashboard");
    assert_eq!(page.status(), 200);
    let html = body(page);
    assert!(html.contains("By model"), "the demo has usage to show");
    assert!(html.contains("claude-sonnet-4-5"));
    assert!(dir.path().join("demo.db").exists());
    assert!(
        !dir.path().join("tokentally.db").exists(),
        "the demo keeps apart"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

const GOOD_PASSWORD: &str = "a long enough password";

/// `tokentally --data-dir DATA user add NAME --role ROLE --password-stdin`
fn add_user(data: &str, name: &str, role: &str, password: &str) -> (bool, String, String) {
    let args = [
        "--data-dir",
        data,
        "user",
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
    ];
    run_cli(&args, &[], Some(&format!("{password}\n")))
}

#[test]
fn user_commands_manage_accounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    let (ok, out, err) = add_user(data, "ada", "admin", GOOD_PASSWORD);
    assert!(ok, "{err}");
    assert!(out.contains("created admin ada"));

    let (ok, _, err) = add_user(data, "bob", "member", "short");
    assert!(!ok);
    assert!(err.contains("at least 12 characters"), "{err}");

    let (ok, _, err) = add_user(data, "ADA", "member", GOOD_PASSWORD);
    assert!(!ok, "usernames are case-insensitive");
    assert!(err.contains("already exists"), "{err}");

    let (ok, _, err) = add_user(data, "no spaces", "member", GOOD_PASSWORD);
    assert!(!ok);
    assert!(err.contains("a username is"), "{err}");

    let (ok, _, err) = run_cli(&["--data-dir", data, "user", "disable", "ada"], &[], None);
    assert!(!ok);
    assert!(err.contains("last enabled admin"), "{err}");

    let (ok, _, err) = add_user(data, "grace", "member", GOOD_PASSWORD);
    assert!(ok, "{err}");
    let (ok, _, err) = run_cli(&["--data-dir", data, "user", "disable", "grace"], &[], None);
    assert!(ok, "{err}");
    let passwd = |name: &str| {
        let args = [
            "--data-dir",
            data,
            "user",
            "passwd",
            name,
            "--password-stdin",
        ];
        run_cli(&args, &[], Some("another long password\n"))
    };
    let (ok, _, err) = passwd("grace");
    assert!(ok, "{err}");
    let (ok, _, err) = passwd("nobody");
    assert!(!ok);
    assert!(err.contains("no user named"), "{err}");

    let (ok, out, _) = run_cli(&["--data-dir", data, "user", "list"], &[], None);
    assert!(ok);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].starts_with("ada") && rows[0].contains("admin") && rows[0].contains("active"));
    assert!(rows[1].starts_with("grace") && rows[1].contains("disabled"));

    let interactive = ["--data-dir", data, "user", "add", "eve", "--role", "member"];
    let (ok, _, err) = run_cli(&interactive, &[], None);
    assert!(!ok, "no terminal and no --password-stdin");
    assert!(err.contains("--password-stdin"), "{err}");
}

#[test]
fn options_come_from_flags_over_env_over_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let in_dir = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let config = in_dir("tokentally.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", in_dir("from-file"))).expect("config");
    let env_dir = in_dir("from-env");
    let flag_dir = in_dir("from-flag");
    // `user list` opens (and so creates) the database in the data dir.
    // (flags, environment, the data dir that must be used)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&[], &[("TOKENTALLY_CONFIG", &config)], "from-file"),
        (
            &[],
            &[
                ("TOKENTALLY_CONFIG", &config),
                ("TOKENTALLY_DATA_DIR", &env_dir),
            ],
            "from-env",
        ),
        (
            &["--data-dir", &flag_dir],
            &[
                ("TOKENTALLY_CONFIG", &config),
                ("TOKENTALLY_DATA_DIR", &env_dir),
            ],
            "from-flag",
        ),
    ];
    for (flags, envs, expected) in cases {
        let args: Vec<&str> = ["user", "list"]
            .iter()
            .chain(flags.iter())
            .copied()
            .collect();
        let (ok, _, err) = run_cli(&args, envs, None);
        assert!(ok, "{err}");
        let db = dir.path().join(expected).join("tokentally.db");
        assert!(db.exists(), "{expected}: flags {flags:?}, env {envs:?}");
    }

    std::fs::write(dir.path().join("bad.toml"), "\nlisten = 8080\n").expect("bad config");
    let bad = in_dir("bad.toml");
    let (ok, _, err) = run_cli(&["--config", &bad, "user", "list"], &[], None);
    assert!(!ok);
    assert!(err.contains("bad.toml") && err.contains("line 2"), "{err}");
}

#[test]
fn backup_while_the_server_runs_gives_a_usable_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_str = data.to_str().expect("utf-8");
    let (ok, _, err) = add_user(data_str, "ada", "admin", GOOD_PASSWORD);
    assert!(ok, "{err}");
    let server = Server::start(&data, &[]);
    server.wait_ready();
    let copy = dir.path().join("copy.db");
    let copy_str = copy.to_str().expect("utf-8");
    let (ok, out, err) = run_cli(&["--data-dir", data_str, "backup", copy_str], &[], None);
    assert!(ok, "{err}");
    assert!(out.contains("backup written"));
    let (ok, _, err) = run_cli(&["--data-dir", data_str, "backup", copy_str], &[], None);
    assert!(!ok, "an existing file is never overwritten");
    assert!(err.contains("exists already"), "{err}");
    let (status, _) = server.terminate();
    assert!(status.success());

    // The copy is a complete database: serve it and sign in.
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).expect("dir");
    std::fs::copy(&copy, restored.join("tokentally.db")).expect("restore");
    // Without its audit key the copy is refused, naming the fix…
    let restored_str = restored.to_str().expect("utf-8");
    let (ok, _, err) = run_cli(&["--data-dir", restored_str, "user", "list"], &[], None);
    assert!(!ok && err.contains("restore audit.key"), "{err}");
    // …and with it (written beside the copy) it is whole.
    std::fs::copy(
        dir.path().join("copy.db.audit-key"),
        restored.join("audit.key"),
    )
    .expect("restore the key");
    let server = Server::start(&restored, &[]);
    server.wait_ready();
    let login = post_form(
        &server.url("/login"),
        &server.url("/login"),
        &[("username", "ada"), ("password", GOOD_PASSWORD)],
    );
    assert_eq!(login.status(), 303);
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn the_binary_refuses_a_database_from_a_newer_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let (ok, _, err) = run_cli(&["--data-dir", data, "user", "list"], &[], None);
    assert!(ok, "{err}");
    let db = dir.path().join("tokentally.db");
    let conn = rusqlite::Connection::open(&db).expect("raw");
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
         VALUES (9999, 'future', '2030-01-01T00:00:00Z', '0')",
        [],
    )
    .expect("future version");
    drop(conn);
    let (ok, _, err) = run_cli(&["--data-dir", data, "user", "list"], &[], None);
    assert!(!ok);
    assert!(
        err.contains("newer tokentally") && err.contains("9999"),
        "{err}"
    );
}

#[test]
fn version_and_systemd_unit() {
    let (ok, out, _) = run_cli(&["version"], &[], None);
    assert!(ok);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
    assert!(out.contains("schema version"));
    // Added to, not changed: the commit and the target it was built for.
    let commit = tokentally::build_info::COMMIT;
    let target = tokentally::build_info::TARGET;
    assert!(out.contains(&format!("\ncommit {commit}\n")), "{out}");
    assert!(out.contains(&format!("\ntarget {target}\n")), "{out}");
    let (ok, long, _) = run_cli(&["--version"], &[], None);
    assert!(ok);
    assert_eq!(
        long.trim(),
        format!(
            "tokentally {} (commit {commit}, {target})",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{commit}"
    );
    let (ok, unit, _) = run_cli(&["systemd-unit"], &[], None);
    assert!(ok);
    for line in [
        "ExecStart=/usr/local/bin/tokentally serve --data-dir /var/lib/tokentally",
        "User=tokentally",
        "StateDirectory=tokentally",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.contains(line), "{line} missing from\n{unit}");
    }
    let (ok, dynamic, _) = run_cli(&["systemd-unit", "--dynamic-user"], &[], None);
    assert!(ok);
    assert!(dynamic.contains("DynamicUser=yes") && !dynamic.contains("User=tokentally"));
    let (ok, help, _) = run_cli(&["serve", "--help"], &[], None);
    assert!(ok);
    for option in [
        "--listen",
        "--data-dir",
        "--demo",
        "--log-format",
        "TOKENTALLY_LISTEN",
    ] {
        assert!(help.contains(option), "{option} in serve --help");
    }
}

// ---------------------------------------------------------------------
// Session cookies: never readable by scripts, not sent on cross-site
// subrequests, for the whole site, and Secure whenever the server is
// told it is reached over https.
// ---------------------------------------------------------------------

/// The attributes of the session cookie a real server sets on the login
/// page, lower-cased (`httponly`, `samesite=lax`, `path=/`, …).
fn session_cookie_attributes(server: &Server) -> Vec<String> {
    let page = agent().get(&server.url("/login")).call().expect("login");
    assert_eq!(page.status(), 200);
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("tokentally_session="))
        .map(str::to_owned)
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    cookies[0]
        .split(';')
        .skip(1)
        .map(|attribute| attribute.trim().to_ascii_lowercase())
        .collect()
}

#[test]
fn session_cookies_are_http_only_same_site_for_the_whole_site_and_secure_when_https() {
    for (flags, secure) in [
        (&[][..], false),
        (&["--secure-cookies"][..], true),
        (&["--public-url", "https://tokens.example.com"][..], true),
        (&["--public-url", "http://tokens.example.com"][..], false),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start(dir.path(), flags);
        server.wait_ready();
        let attributes = session_cookie_attributes(&server);
        for wanted in ["httponly", "samesite=lax", "path=/"] {
            assert!(
                attributes.iter().any(|a| a == wanted),
                "{flags:?}: {wanted} missing from {attributes:?}"
            );
        }
        assert_eq!(
            attributes.iter().any(|a| a == "secure"),
            secure,
            "{flags:?}: {attributes:?}"
        );
        assert!(
            !attributes.iter().any(|a| a.starts_with("domain=")),
            "{flags:?}: the cookie stays with this host: {attributes:?}"
        );
        let (status, stderr) = server.terminate();
        assert!(status.success(), "{flags:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------
// --trusted-proxies reaches the server: behind it, each client named in
// X-Forwarded-For has its own sign-in count; without it, the header is
// nobody's word.
// ---------------------------------------------------------------------

/// One failed sign-in (a fresh session, a wrong password) from a client
/// that sends `forwarded` as X-Forwarded-For; returns the status.
fn failed_sign_in(server: &Server, forwarded: &str, username: &str) -> u16 {
    failed_sign_in_waiting(server, forwarded, username).0
}

/// [`failed_sign_in`], with the seconds a 429 asks to wait.
fn failed_sign_in_waiting(server: &Server, forwarded: &str, username: &str) -> (u16, u64) {
    let page = agent()
        .get(&server.url("/login"))
        .header("x-forwarded-for", forwarded)
        .call()
        .expect("login page");
    let cookie = session_cookie(&page).expect("the login page starts a session");
    let csrf = common::csrf_token(&body(page)).expect("csrf");
    let response = agent()
        .post(&server.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .header("x-forwarded-for", forwarded)
        .send(form(&[
            ("username", username),
            ("password", "a guessed password"),
            ("csrf_token", &csrf),
        ]))
        .expect("request");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (response.status().as_u16(), retry_after)
}

#[test]
fn trusted_proxies_from_the_command_line_decide_whose_sign_ins_are_counted() {
    // Failures one address may make before it waits (src/auth/throttle.rs).
    const FREE_PER_ADDRESS: usize = 20;
    for (flags, separate) in [
        (&["--trusted-proxies", "192.0.2.1,127.0.0.1"][..], true),
        (&[][..], false),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start(dir.path(), flags);
        server.wait_ready();
        for i in 0..FREE_PER_ADDRESS {
            let status = failed_sign_in(&server, "203.0.113.5", &format!("guess{i}"));
            assert_eq!(status, 401, "{flags:?}: guess {i}");
        }
        // Three more failures, each after the wait the server names, put
        // the address's wait at 8 s: long enough for the next two
        // attempts on a slow machine (a 1 s wait could pass between them).
        let mut failures = FREE_PER_ADDRESS;
        loop {
            match failed_sign_in_waiting(&server, "203.0.113.5", "one-more") {
                (401, _) => failures += 1,
                (429, _) if failures >= FREE_PER_ADDRESS + 3 => break,
                (429, wait) => std::thread::sleep(std::time::Duration::from_secs(wait)),
                other => panic!("{flags:?}: {other:?}"),
            }
            assert!(
                failures <= FREE_PER_ADDRESS + 3,
                "{flags:?}: never held back"
            );
        }
        // Another client through the same proxy (the test's loopback) is
        // only held back when the proxy is not trusted: then both are the
        // proxy's address.
        let other = failed_sign_in(&server, "203.0.113.6", "one-more");
        assert_eq!(other, if separate { 401 } else { 429 }, "{flags:?}");
        let (status, stderr) = server.terminate();
        assert!(status.success(), "{flags:?}: {stderr}");
    }
}
