//! Through the real binary: `tokentally identity create-user` makes a
//! member without a password from an unassigned identity, moves its past
//! events to them and prints their one-time setup link (from the config
//! file's `public_url`, a flag, or as a path); `identity ignore` and
//! `unignore` mark an identity. Each change has its audit entry, and
//! `verify` passes after them.

use crate::common::server::run_cli;
use crate::identity_store::{add_bob, seed_carol};

#[test]
fn the_cli_creates_a_member_with_a_setup_link_and_marks_identities() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "public_url = \"https://tokens.example.com/\"\n").expect("config");
    let config = config.to_str().expect("utf-8").to_owned();
    let cli = |args: &[&str]| {
        let mut full = vec!["--data-dir", data.as_str()];
        full.extend_from_slice(args);
        run_cli(&full, &[], None)
    };
    add_bob(&data);
    seed_carol(&dir.path().join("tokentally.db"), 3);

    // The name is proposed from the email; the base from the config file.
    let (ok, out, err) = cli(&[
        "--config",
        &config,
        "identity",
        "create-user",
        "email",
        "carol@example.com",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("created the member carol from email:carol@example.com: 3 events moved"),
        "{out}"
    );
    let link = out
        .lines()
        .find_map(|line| line.strip_prefix("setup link: "))
        .unwrap_or_else(|| panic!("a setup link: {out}"));
    let token = link
        .strip_prefix("https://tokens.example.com/invite/")
        .unwrap_or_else(|| panic!("{link}"));
    assert_eq!(token.len(), 64);
    assert!(err.contains("expires in 7 days"), "{err}");

    // Again: the identity is carol's now.
    let (ok, _, err) = cli(&["identity", "create-user", "email", "carol@example.com"]);
    assert!(
        !ok && err.contains("is linked to carol; unlink it first"),
        "{err}"
    );
    let (ok, out, err) = cli(&["identity", "list", "--json"]);
    assert!(ok, "{err}");
    assert!(out.contains(r#""user":"carol""#), "{out}");
    let (ok, out, err) = cli(&["verify"]);
    assert!(ok, "{out}{err}");

    let conn = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let (hash, mail): (Option<String>, Option<String>) = conn
        .query_row(
            "SELECT password_hash, email FROM users WHERE username = 'carol'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("carol");
    assert_eq!(hash, None, "no password until the link is used");
    assert_eq!(mail.as_deref(), Some("carol@example.com"));
    let stored: String = conn
        .query_row("SELECT token_hash FROM invites", [], |r| r.get(0))
        .expect("one invite");
    assert_eq!(stored, tokentally::secret::digest(token));
    drop(conn);

    // Unlinked again, it can be made a member under another name, with the
    // link printed as a path when no public URL is known.
    let (ok, _, err) = cli(&["identity", "unlink", "email", "carol@example.com"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&[
        "identity",
        "create-user",
        "email",
        "carol@example.com",
        "--name",
        "bad name",
    ]);
    assert!(
        !ok && err.contains("a username is 1 to 64 characters"),
        "{err}"
    );
    let (ok, out, err) = cli(&[
        "identity",
        "create-user",
        "email",
        "carol@example.com",
        "--name",
        "carol.h",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("setup link (a path: put this server's address in front of it): /invite/"),
        "{out}"
    );
    let (ok, out, err) = cli(&[
        "identity",
        "create-user",
        "enduser",
        "nobody",
        "--public-url",
        "https://x.example",
    ]);
    assert!(
        !ok && err.contains("no identity enduser:nobody"),
        "{out}{err}"
    );

    // Ignore and unignore: refused for a linked identity.
    let (ok, _, err) = cli(&["identity", "ignore", "email", "carol@example.com"]);
    assert!(!ok && err.contains("is linked to carol.h"), "{err}");
    cli(&["identity", "unlink", "email", "carol@example.com"]);
    let (ok, out, err) = cli(&["identity", "ignore", "email", "carol@example.com"]);
    assert!(ok, "{err}");
    assert!(out.contains("is ignored"), "{out}");
    let (_, out, _) = cli(&["identity", "list", "--json"]);
    assert!(out.contains(r#""ignored":true"#), "{out}");
    let (ok, _, err) = cli(&["identity", "unignore", "email", "carol@example.com"]);
    assert!(ok, "{err}");
    let (_, out, _) = cli(&["identity", "list", "--json"]);
    assert!(out.contains(r#""ignored":false"#), "{out}");
    let (ok, out, err) = cli(&["verify"]);
    assert!(ok, "{out}{err}");

    let conn = rusqlite::Connection::open(dir.path().join("tokentally.db")).expect("open");
    let actions: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT action, target, details FROM audit_log
             WHERE action IN ('identity.create_user', 'identity.ignore', 'identity.unignore')
             ORDER BY seq",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let codes: Vec<&str> = actions.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        codes,
        [
            "identity.create_user",
            "identity.create_user",
            "identity.ignore",
            "identity.unignore"
        ]
    );
    assert!(
        actions[0].2.contains(r#""events_moved":3"#),
        "{}",
        actions[0].2
    );
    assert!(
        actions[0].2.contains(r#""user":"carol""#),
        "{}",
        actions[0].2
    );
    for (_, target, details) in &actions {
        assert_eq!(target, "identity:email:carol@example.com");
        assert!(!details.contains(token), "the token is not audited");
    }
}
